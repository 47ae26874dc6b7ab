package lanczos

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/lanczos/summary"
)

// The PyTorch-made LeNet fixture and a fact from its README.
const (
	fixtureDir  = "../../testdata/lenet-fmnist/"
	fixtureLoss = 0.7142452905187945
)

// params converts given params as the runner does (stage.Kind.Resolve).
func params(t *testing.T, given map[string]any) stage.Params {
	t.Helper()
	p, err := Kind.Resolve(given)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// artifacts writes a snapshot artifact of the fixture's weights (with the
// given meta.json) and a fetch artifact of its subset, once per test.
func artifacts(t *testing.T, meta string) (weights, data stage.Artifact) {
	t.Helper()
	wd := t.TempDir()
	b, err := os.ReadFile(fixtureDir + "weights.npz")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wd, "weights.npz"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wd, "meta.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := datasets.Lookup("FashionMNIST")
	if err != nil {
		t.Fatal(err)
	}
	set, err := datasets.ReadNPZ(info, fixtureDir+"subset.npz", false)
	if err != nil {
		t.Fatal(err)
	}
	dd := t.TempDir()
	if err := set.Write(dd); err != nil {
		t.Fatal(err)
	}
	return stage.Artifact{Dir: wd, Stage: "snap"}, stage.Artifact{Dir: dd, Stage: "data"}
}

const lenetMeta = `{"model": "LeNet", "in_channels": 1, "classes": 10, "epoch": null, "source": "weights.npz"}`

type recorder struct {
	starts []string
	totals []int
	steps  int
}

func (r *recorder) Start(what string, total int) {
	r.starts, r.totals = append(r.starts, what), append(r.totals, total)
}
func (r *recorder) Advance(n int) { r.steps += n }
func (r *recorder) Finish()       {}

// runKind runs the kind on the fixture and returns its output directory and
// log.
func runKind(ctx context.Context, t *testing.T, meta string, given map[string]any) (string, string, *recorder, error) {
	t.Helper()
	w, d := artifacts(t, meta)
	out := t.TempDir()
	var log bytes.Buffer
	rec := &recorder{}
	e := &stage.Env{ID: "spectrum", Params: params(t, given), OutDir: out, Log: &log, Progress: rec,
		Inputs: map[string][]stage.Artifact{"weights": {w}, "data": {d}}, Backend: "go"}
	err := Kind.Call(ctx, e)
	if err == nil && e.RunInfo["backend"] != "go" {
		t.Errorf("run info: %v, want backend go", e.RunInfo)
	}
	return out, log.String(), rec, err
}

// TestFixtureLayer runs the kind on the fixture's fc3 weights with small
// constants and checks every documented key and array.
func TestFixtureLayer(t *testing.T) {
	given := map[string]any{"layer": "fc3.weight", "dtype": "float64", "steps": 40, "bound_steps": 6, "grid": 256,
		"probes": 2, "top_k": 2, "trace_probes": 3, "seed": 5}
	out, log, rec, err := runKind(context.Background(), t, lenetMeta, given)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"layer", "dim", "model", "dataset", "epoch", "loss", "hvps", "lb", "ub", "probes",
		"steps", "top_eigenvalues", "top_k_steps", "top_k_converged", "trace", "trace_stderr", "dtype", "bn_mode", "subset", "stream_seed"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("summary.json lacks %q", k)
		}
	}
	// Wall time and backend describe the run, not the result: run/run.json.
	for _, k := range []string{"seconds", "backend"} {
		if _, ok := keys[k]; ok {
			t.Errorf("summary.json has %q", k)
		}
	}
	var s summary.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Layer != "fc3.weight" || s.Dim != 840 || s.Model != "LeNet" || s.Dataset != "FashionMNIST" || s.Epoch != nil ||
		s.Probes != 2 || s.Steps != 40 || s.DType != "float64" || s.BNMode != "eval" ||
		s.Subset != (summary.Subset{PerClass: 10, Seed: 0, N: 100}) {
		t.Errorf("summary.json: %s", raw)
	}
	t.Logf("summary: %s", raw)
	if !(math.Abs(s.Loss-fixtureLoss) <= 1e-12) {
		t.Errorf("loss %.17g, PyTorch %.17g", s.Loss, fixtureLoss)
	}
	// 6 range steps, 2 × 40 probe steps, 3 trace probes, and the top-k run.
	if s.HVPs < 6+80+3+2 || s.HVPs > 6+80+3+840 {
		t.Errorf("hvps %d: want 89 plus the top-k run's steps", s.HVPs)
	}
	// A top-k search takes an open-ended number of products: the progress
	// total is unknown (0), and the count matches the products.
	if rec.steps != s.HVPs || !slices.Equal(rec.starts, []string{"lanczos fc3.weight"}) || rec.totals[0] != 0 {
		t.Errorf("progress: starts %q totals %v, %d steps; want one start of unknown total and %d steps", rec.starts, rec.totals, rec.steps, s.HVPs)
	}
	if len(s.TopEigenvalues) != 2 || !(s.TopEigenvalues[0] >= s.TopEigenvalues[1]) || !(s.TopEigenvalues[0] <= s.UB*(1+1e-9)) || !(s.LB <= s.UB) {
		t.Errorf("top eigenvalues %v with bounds [%g, %g]", s.TopEigenvalues, s.LB, s.UB)
	}
	var stderr float64
	if err := json.Unmarshal(s.TraceStdErr, &stderr); err != nil || !(stderr > 0) || s.Trace == nil || !(*s.Trace > 0) {
		t.Errorf("trace %v ± %s", s.Trace, s.TraceStdErr)
	}

	ar, err := npz.ReadFile(filepath.Join(out, "spectrum.npz"))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{"eigval": {256}, "eigval_density": {256}, "density_std": {256}, "ritz_values": {2, 40},
		"ritz_weights": {2, 40}, "top_eigenvalues": {2}, "top_residuals": {2}, "bounds_alpha": {6}, "bounds_beta": {6},
		"lanczos_alpha": {2, 40}, "lanczos_beta": {2, 40}, "trace_samples": {3}}
	for name, shape := range shapes {
		a, err := ar.Get(name)
		if err != nil {
			t.Errorf("spectrum.npz: %v", err)
			continue
		}
		if _, ok := a.Data.([]float64); !ok || !slices.Equal(a.Shape, shape) {
			t.Errorf("%s: %T %v, want float64 %v", name, a.Data, a.Shape, shape)
		}
	}
	if len(ar.Arrays) != len(shapes) {
		t.Errorf("spectrum.npz has %d arrays, want %d", len(ar.Arrays), len(shapes))
	}
	grid, _ := ar.Get("eigval")
	dens, _ := ar.Get("eigval_density")
	x, y := grid.Float64s(), dens.Float64s()
	integral := 0.0
	for i := 1; i < len(x); i++ {
		integral += (x[i] - x[i-1]) * (y[i] + y[i-1]) / 2
	}
	if !(math.Abs(integral-1) <= 0.05) {
		t.Errorf("density integrates to %g", integral)
	}
	if !(x[0] <= s.LB) || !(x[len(x)-1] >= s.UB) {
		t.Errorf("grid [%g, %g] does not cover [lb, ub] = [%g, %g]", x[0], x[len(x)-1], s.LB, s.UB)
	}
	wts, _ := ar.Get("ritz_weights")
	for p := range 2 {
		sum := 0.0
		for _, v := range wts.Float64s()[p*40 : (p+1)*40] {
			sum += v
		}
		if !(math.Abs(sum-1) <= 1e-12) {
			t.Errorf("probe %d: Ritz weights sum to %.15g", p, sum)
		}
	}
	if top, _ := ar.Get("top_eigenvalues"); !slices.Equal(top.Float64s(), s.TopEigenvalues) {
		t.Errorf("top_eigenvalues %v in spectrum.npz, %v in summary.json", top.Float64s(), s.TopEigenvalues)
	}
	if !strings.Contains(log, "0.71424529051879") {
		t.Errorf("log does not give the loss:\n%s", log)
	}
	numpyCheck(t, out)
}

// numpyCheck loads the artifact in numpy, where researchers read it. The
// test skips where Debian's python3 with numpy is not installed (fails in
// CI).
func numpyCheck(t *testing.T, dir string) {
	py := testenv.RequirePython(t, "numpy")
	script := `
import json, sys
import numpy as np
d = sys.argv[1]
z = np.load(d + "/spectrum.npz")
assert sorted(z.files) == sorted(["eigval", "eigval_density", "density_std", "ritz_values", "ritz_weights", "top_eigenvalues",
    "top_residuals", "bounds_alpha", "bounds_beta", "lanczos_alpha", "lanczos_beta", "trace_samples"]), z.files
assert z["eigval"].dtype == np.float64 and z["eigval"].shape == (256,)
assert z["ritz_values"].shape == (2, 40)
assert abs(np.trapz(z["eigval_density"], z["eigval"]) - 1) < 0.05 if hasattr(np, "trapz") else True
s = json.load(open(d + "/summary.json"))
assert s["top_eigenvalues"] == list(z["top_eigenvalues"]), (s["top_eigenvalues"], z["top_eigenvalues"])
assert s["epoch"] is None and s["subset"]["n"] == 100
assert z["lanczos_alpha"].shape == (2, 40) and abs(z["trace_samples"].mean() - s["trace"]) < 1e-9 * abs(s["trace"])
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy check failed: %v\n%s", err, out)
	}
}

// TestOneProbeAndNoExtras checks the optional keys: one trace probe gives a
// null trace_stderr; no top_k and no trace leave their keys and arrays out.
func TestOneProbeAndNoExtras(t *testing.T) {
	small := map[string]any{"layer": "fc3.weight", "steps": 4, "bound_steps": 2, "grid": 16}
	one := map[string]any{"trace_probes": 1}
	for k, v := range small {
		one[k] = v
	}
	out, log, _, err := runKind(context.Background(), t, lenetMeta, one)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	if v, ok := keys["trace_stderr"]; !ok || v != nil {
		t.Errorf("one probe: trace_stderr %v (present %v), want null", v, ok)
	}
	if _, ok := keys["top_eigenvalues"]; ok {
		t.Error("top_eigenvalues present with top_k 0")
	}
	if keys["dtype"] != "float32" || !(math.Abs(keys["loss"].(float64)-fixtureLoss) <= 1e-6) {
		t.Errorf("float32 run: dtype %v, loss %v", keys["dtype"], keys["loss"])
	}

	out, log, _, err = runKind(context.Background(), t, lenetMeta, small)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	raw, _ = os.ReadFile(filepath.Join(out, "summary.json"))
	keys = nil
	_ = json.Unmarshal(raw, &keys)
	for _, k := range []string{"trace", "trace_stderr", "top_eigenvalues"} {
		if _, ok := keys[k]; ok {
			t.Errorf("%s present without trace_probes and top_k", k)
		}
	}
	ar, err := npz.ReadFile(filepath.Join(out, "spectrum.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ar.Arrays["top_eigenvalues"]; ok {
		t.Error("top_eigenvalues array without top_k")
	}
}

// TestErrors checks that bad inputs fail with errors that name the problem.
func TestErrors(t *testing.T) {
	small := func(extra map[string]any) map[string]any {
		m := map[string]any{"layer": "fc3.weight", "steps": 4, "bound_steps": 2, "grid": 16}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name  string
		ctx   context.Context
		meta  string
		given map[string]any
		want  []string
	}{
		{"unknown layer", context.Background(), lenetMeta, small(map[string]any{"layer": "fc4.weight"}), []string{"fc4.weight", "conv1.weight", "fc3.weight"}},
		{"too few per class", context.Background(), lenetMeta, small(map[string]any{"subset": map[string]any{"per_class": 11}}), []string{"class 0", "per_class 11"}},
		{"channels", context.Background(), `{"model": "LeNet", "in_channels": 3, "classes": 10, "epoch": 2}`, small(nil), []string{"weights.npz"}},
		{"labels", context.Background(), `{"model": "LeNet", "in_channels": 1, "classes": 5, "epoch": 2}`, small(nil), []string{"weights.npz"}},
		{"model", context.Background(), `{"model": "AlexNet", "in_channels": 1, "classes": 10}`, small(nil), []string{"AlexNet"}},
		{"top_k", context.Background(), lenetMeta, small(map[string]any{"layer": "fc3.bias", "top_k": 11}), []string{"top_k 11", "dimension 10"}},
		{"cancelled", cancelled, lenetMeta, small(nil), []string{"context canceled"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, log, _, err := runKind(c.ctx, t, c.meta, c.given)
			if err == nil {
				t.Fatalf("no error; log:\n%s", log)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestPadding checks the layout of the Ritz arrays when a probe's run
// stopped early: NaN values of weight 0 after its own.
func TestPadding(t *testing.T) {
	r := hessian.Result{Density: &hessian.Density{
		Grid: []float64{0, 1}, Mean: []float64{1, 1}, Std: []float64{0, 0},
		Probes: []*hessian.Ritz{
			{Values: []float64{1, 2, 3}, Weights: []float64{0.2, 0.3, 0.5}},
			{Values: []float64{4}, Weights: []float64{1}},
		},
	}}
	arrays := spectrumArrays(r, 3)
	byName := map[string]*npz.Array{}
	for _, a := range arrays {
		byName[a.Name] = a.Array
	}
	v, w := byName["ritz_values"], byName["ritz_weights"]
	if !slices.Equal(v.Shape, []int{2, 3}) || !slices.Equal(w.Shape, []int{2, 3}) {
		t.Fatalf("shapes %v %v", v.Shape, w.Shape)
	}
	vals := v.Float64s()
	if !slices.Equal(vals[:4], []float64{1, 2, 3, 4}) || !math.IsNaN(vals[4]) || !math.IsNaN(vals[5]) {
		t.Errorf("ritz_values %v", vals)
	}
	if !slices.Equal(w.Float64s(), []float64{0.2, 0.3, 0.5, 1, 0, 0}) {
		t.Errorf("ritz_weights %v", w.Float64s())
	}
	if _, ok := byName["top_eigenvalues"]; ok {
		t.Error("top_eigenvalues without a top-k result")
	}
}
