package snapshot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/snapshot/snapmeta"
)

// planned is a snapshot instance without inputs as a plan-time check sees
// it.
func planned(t *testing.T, given map[string]any) *stage.Planned {
	t.Helper()
	return &stage.Planned{ID: "import", Kind: Kind, Params: params(t, given)}
}

func onnxFixture(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs("../../testdata/onnx/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestImportONNX imports the LeNet fixture's ONNX export: the graph, the
// weights under their state_dict names with the fixture's values, and
// meta.json.
func TestImportONNX(t *testing.T) {
	path := onnxFixture(t, "lenet.onnx")
	out, err := runKind(t, map[string]any{"path": path}, "")
	if err != nil {
		t.Fatal(err)
	}
	m := readMeta(t, out)
	if m.Model != "ONNX" || m.Classes != 10 || m.InChannels != 1 || m.Epoch != nil || m.Source != "lenet.onnx" ||
		!slices.Equal(m.InputShape, []int{1, 32, 32}) || m.Graph != snapmeta.GraphFile {
		t.Errorf("meta %+v", m)
	}
	src, _ := os.ReadFile(path)
	got, _ := os.ReadFile(filepath.Join(out, snapmeta.GraphFile))
	if !slices.Equal(src, got) {
		t.Errorf("%s is not the imported file", snapmeta.GraphFile)
	}
	want, err := npz.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	w, err := npz.ReadFile(filepath.Join(out, snapmeta.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Names, want.Names) {
		t.Errorf("names %v, want %v", w.Names, want.Names)
	}
	for _, n := range want.Names {
		if a := w.Arrays[n]; a == nil || !slices.Equal(a.Float32s(), want.Arrays[n].Float32s()) {
			t.Errorf("%s differs from the PyTorch fixture", n)
		}
	}
}

// TestImportONNXErrors: what cannot be imported fails in one line, when
// the spec is read (Check) and when the stage runs.
func TestImportONNXErrors(t *testing.T) {
	for _, tc := range []struct {
		given map[string]any
		want  string
	}{
		{map[string]any{"path": onnxFixture(t, "unsupported.onnx")}, "unsupported ONNX op Resize (1 node)"},
		{map[string]any{"path": onnxFixture(t, "lenet.onnx"), "model": "LeNet"}, "param model: for state_dict imports only"},
		{map[string]any{"path": onnxFixture(t, "missing.onnx")}, "no such file"},
	} {
		errs := Kind.Check(planned(t, tc.given))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || strings.Contains(errs[0].Error(), "\n") {
			t.Errorf("check %v: got %v, want one line with %q", tc.given, errs, tc.want)
		}
		if _, err := runKind(t, tc.given, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v: got %v, want %q", tc.given, err, tc.want)
		}
	}
	if errs := Kind.Check(planned(t, map[string]any{"path": fixture, "model": "LeNet", "in_channels": 1, "classes": 10})); errs != nil {
		t.Errorf("a state_dict import: %v", errs)
	}
	if errs := Kind.Check(planned(t, map[string]any{"path": onnxFixture(t, "lenet.onnx")})); errs != nil {
		t.Errorf("an ONNX import: %v", errs)
	}
}
