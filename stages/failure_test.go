package stages_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner"
	"github.com/hessian-spectra/runner/stages"
)

// TestFailureNamesTheStageOnce runs a real kind that fails when it runs (an
// import of a damaged state_dict) through the runner: the failure line names
// the stage once, the runner's way ("FAILED   import: …"), and the kind's
// message follows unchanged.
func TestFailureNamesTheStageOnce(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "weights.npz")
	if err := os.WriteFile(bad, []byte("not a zip archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "stages:\n  import: {kind: snapshot, with: {path: " + bad + ", model: LeNet, in_channels: 1, classes: 10}}\n"
	p, err := pipelines.Parse("spec.yaml", []byte(src), pipelines.Options{Registry: stages.Registry(), BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	store, err := artifacts.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep := runner.NewPlainReporter(&out, false)
	sum, err := runner.Run(context.Background(), []*pipelines.Pipeline{p}, runner.Options{Store: store, Jobs: 1, Reporter: rep})
	rep.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Results[0]
	if r.Outcome != runner.Failed || strings.Contains(r.Err.Error(), "import:") || !strings.Contains(r.Err.Error(), "weights.npz") {
		t.Fatalf("result %s: %v, want a failure naming the file and not the stage", r.Outcome, r.Err)
	}
	if line := "FAILED   import: " + r.Err.Error() + "\n"; !strings.Contains(out.String(), line) {
		t.Errorf("output lacks %q:\n%s", line, out.String())
	}
}
