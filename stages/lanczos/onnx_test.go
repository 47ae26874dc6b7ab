package lanczos

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/lanczos/summary"
	"github.com/hessian-spectra/runner/stages/snapshot"
)

// onnxSnapshot imports an ONNX fixture with the snapshot kind.
func onnxSnapshot(t *testing.T, file string) stage.Artifact {
	t.Helper()
	abs, err := filepath.Abs("../../testdata/onnx/" + file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := snapshot.Kind.Resolve(map[string]any{"path": abs})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var log bytes.Buffer
	if err := snapshot.Kind.Call(context.Background(), &stage.Env{ID: "import", Params: p, OutDir: out, Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return stage.Artifact{Dir: out, Stage: "import"}
}

// runOn runs the kind on a weights artifact and the LeNet fixture's subset.
func runOn(t *testing.T, w stage.Artifact, given map[string]any) (summary.Summary, string, error) {
	t.Helper()
	_, d := artifacts(t, lenetMeta)
	return runWith(t, w, d, given)
}

// runWith runs the kind on a weights and a data artifact.
func runWith(t *testing.T, w, d stage.Artifact, given map[string]any) (summary.Summary, string, error) {
	t.Helper()
	out := t.TempDir()
	var log bytes.Buffer
	e := &stage.Env{ID: "spectrum", Params: params(t, given), OutDir: out, Log: &log,
		Inputs: map[string][]stage.Artifact{"weights": {w}, "data": {d}}, Backend: "go"}
	if err := Kind.Call(context.Background(), e); err != nil {
		return summary.Summary{}, log.String(), err
	}
	s, err := summary.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	return *s, log.String(), nil
}

// TestONNXSnapshot runs the kind on the LeNet fixture imported from ONNX:
// the same numbers as on the native LeNet with the same weights.
func TestONNXSnapshot(t *testing.T) {
	given := map[string]any{"layer": "fc3.weight", "dtype": "float64", "steps": 40, "bound_steps": 6, "grid": 256,
		"probes": 2, "top_k": 2, "trace_probes": 3, "seed": 5}
	s, log, err := runOn(t, onnxSnapshot(t, "lenet.onnx"), given)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	w, _ := artifacts(t, lenetMeta)
	native, _, err := runOn(t, w, given)
	if err != nil {
		t.Fatal(err)
	}
	if s.Model != "ONNX" || s.Dim != 840 || s.Dataset != "FashionMNIST" || s.LossFunction != "" {
		t.Errorf("summary %+v", s)
	}
	if e := math.Abs(s.Loss-fixtureLoss) / fixtureLoss; !(e <= 1e-12) {
		t.Errorf("loss %.17g, PyTorch %.17g", s.Loss, fixtureLoss)
	}
	for k, v := range native.TopEigenvalues {
		if e := math.Abs(s.TopEigenvalues[k]-v) / v; !(e <= 1e-9) {
			t.Errorf("top eigenvalue %d: %.12g, native %.12g", k+1, s.TopEigenvalues[k], v)
		}
	}
	if e := math.Abs(*s.Trace-*native.Trace) / *native.Trace; !(e <= 1e-9) || !(math.Abs(s.UB-native.UB) <= 1e-9*native.UB) {
		t.Errorf("trace %.12g, ub %.12g; native %.12g, %.12g", *s.Trace, s.UB, *native.Trace, native.UB)
	}
	if !strings.Contains(log, "ONNX model lenet.onnx: input x [batch, 1, 32, 32], output logits [batch, 10]") {
		t.Errorf("log lacks the model's description:\n%s", log)
	}

	// The MSE loss is recorded in the summary.
	given["loss"], given["top_k"], given["trace_probes"] = "mse", 0, 0
	mse, log, err := runOn(t, onnxSnapshot(t, "lenet.onnx"), given)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if mse.LossFunction != "mse" || !(mse.Loss > 0) || mse.Loss == s.Loss {
		t.Errorf("mse summary: loss function %q, loss %g", mse.LossFunction, mse.Loss)
	}
}

// TestONNXDataMismatch: a model that does not take the data fails in one
// line naming both shapes.
func TestONNXDataMismatch(t *testing.T) {
	_, _, err := runOn(t, onnxSnapshot(t, "mlp.onnx"), map[string]any{"layer": "full", "steps": 4, "bound_steps": 2})
	if err == nil || !strings.Contains(err.Error(), "the model's input x [batch, 6] does not take the data's examples of shape [1 32 32]") ||
		strings.Contains(err.Error(), "\n") {
		t.Errorf("got %v", err)
	}
	_, _, err = runOn(t, onnxSnapshot(t, "lenet.onnx"), map[string]any{"layer": "conv9.weight", "steps": 4, "bound_steps": 2})
	if err == nil || !strings.Contains(err.Error(), `layer "conv9.weight": ONNX has no such parameter (its layers: conv1.weight, conv2.weight, fc1.weight, fc2.weight, fc3.weight; or full)`) {
		t.Errorf("got %v", err)
	}
}

// TestONNXOnCustomData runs the kind on a perceptron of feature vectors
// (testdata/onnx/mlp.onnx) with data of one's own (dataset custom): the
// loss PyTorch computed.
func TestONNXOnCustomData(t *testing.T) {
	info, err := datasets.Lookup(datasets.Custom)
	if err != nil {
		t.Fatal(err)
	}
	set, err := datasets.ReadNPZ(info, "../../testdata/onnx/tabular.npz", false)
	if err != nil {
		t.Fatal(err)
	}
	dd := t.TempDir()
	if err := set.Write(dd); err != nil {
		t.Fatal(err)
	}
	s, log, err := runWith(t, onnxSnapshot(t, "mlp.onnx"), stage.Artifact{Dir: dd, Stage: "data"},
		map[string]any{"layer": "full", "dtype": "float64", "subset": map[string]any{"per_class": 20}, "steps": 8, "bound_steps": 4, "top_k": 1})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	ref, err := npz.ReadFile("../../testdata/onnx/mlp_ref.npz")
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Arrays["loss"].Float64s()[0]
	if s.Dataset != "custom" || s.Subset.N != 60 || s.Dim != 12*6+12+3*12+3 || !(math.Abs(s.Loss-want) <= 1e-12*want) {
		t.Errorf("summary %+v; PyTorch's loss %.17g", s, want)
	}
}
