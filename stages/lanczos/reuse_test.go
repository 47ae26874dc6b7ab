package lanczos

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
)

// runPrior runs the kind on the fixture with a weights artifact of the given
// digest and an optional prior; it returns the output dir and the log.
func runPrior(t *testing.T, w, d stage.Artifact, given map[string]any, prior *stage.Prior) (string, string) {
	t.Helper()
	out := t.TempDir()
	var log bytes.Buffer
	e := &stage.Env{ID: "spectrum", Params: params(t, given), OutDir: out, Log: &log,
		Inputs: map[string][]stage.Artifact{"weights": {w}, "data": {d}}, Backend: "go", Prior: prior}
	if err := Kind.Call(context.Background(), e); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return out, log.String()
}

// sameOutputs compares the files of two lanczos artifacts byte for byte.
func sameOutputs(t *testing.T, what, a, b string) {
	t.Helper()
	for _, f := range []string{"spectrum.npz", "summary.json"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", what, err1, err2)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s: %s differs from the run from nothing", what, f)
		}
	}
}

// TestReuseEqualsFromScratch: more probes and trace probes on top of a
// cached artifact give the files of a run from nothing with the new counts
// (float32, so lockstep batching must not change a product's bits), and
// fewer are derived from a larger run with no new probe computed.
func TestReuseEqualsFromScratch(t *testing.T) {
	w, d := artifacts(t, lenetMeta)
	w.Digest = "0123abcd"
	base := map[string]any{"layer": "fc3.weight", "steps": 24, "bound_steps": 10, "grid": 128, "top_k": 2, "seed": 3}
	with := func(probes, traces int) map[string]any {
		g := map[string]any{"probes": probes, "trace_probes": traces}
		for k, v := range base {
			g[k] = v
		}
		return g
	}
	small, _ := runPrior(t, w, d, with(1, 20), nil)
	large, _ := runPrior(t, w, d, with(3, 50), nil)

	prior := func(dir string, given map[string]any, how string) *stage.Prior {
		return &stage.Prior{Artifact: stage.Artifact{Dir: dir, Stage: "spectrum"}, Params: params(t, given), How: how}
	}
	plan, ok := planReuse(params(t, with(1, 20)), params(t, with(3, 50)))
	if !ok || plan.How != "extends cached run with probes 1 → 3, trace_probes 20 → 50" || plan.Cost != 2*24+30 {
		t.Errorf("plan %+v, %v", plan, ok)
	}
	extended, log := runPrior(t, w, d, with(3, 50), prior(small, with(1, 20), plan.How))
	sameOutputs(t, "probes 1 → 3 and trace_probes 20 → 50", extended, large)
	// Reused: the range run (10), probe 0 (24), the top-k run and 20 samples.
	if !strings.Contains(log, "extends cached run") || !strings.Contains(log, "reused ") {
		t.Errorf("log does not say what was reused:\n%s", log)
	}

	plan, _ = planReuse(params(t, with(3, 50)), params(t, with(1, 20)))
	if plan.Cost != 0 || !strings.HasPrefix(plan.How, "derived from cached run") {
		t.Errorf("fewer probes: plan %+v", plan)
	}
	derived, _ := runPrior(t, w, d, with(1, 20), prior(large, with(3, 50), plan.How))
	sameOutputs(t, "probes 3 → 1 and trace_probes 50 → 20", derived, small)

	// A changed top_k is recomputed, the rest reused.
	topk := with(3, 50)
	topk["top_k"] = 3
	plan, _ = planReuse(params(t, with(1, 20)), params(t, topk))
	if !strings.Contains(plan.How, "top_k 2 → 3, recomputed") {
		t.Errorf("top_k plan %+v", plan)
	}
	fresh, _ := runPrior(t, w, d, topk, nil)
	reused, _ := runPrior(t, w, d, topk, prior(small, with(1, 20), plan.How))
	sameOutputs(t, "top_k 2 → 3 with probes 1 → 3", reused, fresh)

	// A prior that cannot be read is ignored, not trusted.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "spectrum.npz"), []byte("not an npz"), 0o644); err != nil {
		t.Fatal(err)
	}
	ignored, log := runPrior(t, w, d, with(3, 50), prior(bad, with(1, 20), "extends"))
	sameOutputs(t, "an unreadable prior", ignored, large)
	if !strings.Contains(log, "not reusing") {
		t.Errorf("log does not say the prior was ignored:\n%s", log)
	}
}

// TestStreamsPerInstance: the start vectors depend on the weights artifact
// (two epochs of one layer) and the layer, not on the seed param alone,
// and the same instance draws the same ones again.
func TestStreamsPerInstance(t *testing.T) {
	w, d := artifacts(t, lenetMeta)
	given := map[string]any{"layer": "fc3.weight", "steps": 16, "bound_steps": 6, "grid": 64, "seed": 0}
	ritz := func(digest string) []float64 {
		t.Helper()
		w.Digest = digest
		out, _ := runPrior(t, w, d, given, nil)
		ar, err := npz.ReadFile(filepath.Join(out, "spectrum.npz"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := ar.Get("lanczos_alpha")
		if err != nil {
			t.Fatal(err)
		}
		return a.Float64s()
	}
	// The same weights under two digests stand for two epochs' snapshots
	// (whose weights differ too): the start vectors alone must differ.
	e1, e1again, e2 := ritz("epoch-1-digest"), ritz("epoch-1-digest"), ritz("epoch-2-digest")
	if !slices.Equal(e1, e1again) {
		t.Error("the same instance drew different start vectors")
	}
	if slices.Equal(e1, e2) {
		t.Error("two snapshots of one layer share their start vector")
	}
	if StreamSeed(0, "x", "full") == StreamSeed(0, "x", "conv1.weight") || StreamSeed(0, "x", "full") == StreamSeed(1, "x", "full") {
		t.Error("the stream seed ignores the layer or the seed param")
	}
}
