package records_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoGoMLX keeps the readers of artifacts light: the tables and figures,
// and the packages defining the formats they read, build without GoMLX.
func TestNoGoMLX(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	pkgs := []string{"analysis/...", "stages/plot", "stages/aggregate",
		"stages/train/trainmeta", "stages/snapshot/snapmeta", "stages/lanczos/summary"}
	args := []string{"list", "-deps", "-f", "{{.ImportPath}}"}
	for _, p := range pkgs {
		args = append(args, "github.com/hessian-spectra/runner/"+p)
	}
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "gomlx") {
			t.Errorf("%s imports %s (through its dependencies)", strings.Join(pkgs, ", "), dep)
		}
	}
}
