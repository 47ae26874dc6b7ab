package onnxmodel

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/models"
)

// The PyTorch LeNet fixture's subset loss (testdata/lenet-fmnist/README.md).
const lenetFixtureLoss = 0.7142452905187945

// lenetSpectra returns the mean loss and, for each target, the top 3
// eigenvalues and a Hutchinson trace of a classifier on the fixture's
// subset, in float64.
func lenetSpectra(t *testing.T, c *hessian.Classifier, d hessian.Data, targets []string) (float64, [][]float64, []float64) {
	t.Helper()
	ts, err := c.Targets(targets...)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hessian.NewModelHessian(backendT(t), c, d, ts, hessian.ModelHessianOptions{VectorsPerPass: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	reqs := make([]hessian.Request, len(ts))
	for i := range reqs {
		reqs[i] = hessian.Request{
			TopK:  &hessian.TopKOptions{K: 3, Tol: 1e-10, Seed: 1},
			Trace: &hessian.TraceOptions{Probes: 4, Seed: 2},
		}
	}
	res, err := hessian.Run(context.Background(), h, reqs, hessian.RunOptions{MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	loss, err := h.Loss(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var tops [][]float64
	var traces []float64
	for _, r := range res {
		tops = append(tops, r.TopK.Values)
		traces = append(traces, r.Trace.Estimate)
	}
	return loss, tops, traces
}

// TestLeNetMatchesNative checks the PyTorch LeNet fixture exported to ONNX
// (testdata/onnx/lenet.onnx) against the native LeNet with the same
// weights, on the fixture's 100-image subset in float64: the same mean
// loss (the fixture's), and for the full network and each of the 5 layers
// the same top 3 eigenvalues and Hutchinson traces, to 1e-9 relative.
func TestLeNetMatchesNative(t *testing.T) {
	if testing.Short() {
		t.Skip("spectra of 6 Hessians of two networks: skipped with -short")
	}
	m := open(t, "lenet.onnx")
	want := []string{"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"}
	if !slices.Equal(m.Layers(), want) {
		t.Fatalf("layers %v, want %v", m.Layers(), want)
	}
	if notes := m.Notes(); len(notes) > 0 {
		t.Errorf("notes %q, want none: the export kept every name", notes)
	}
	w, err := m.Weights(dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	native, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := native.ReadWeights("../../testdata/lenet-fmnist/weights.npz", dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	d := data(t, readNPZ(t, "../../testdata/lenet-fmnist/subset.npz"))
	targets := append([]string{hessian.FullTarget}, want...)
	loss, tops, traces := lenetSpectra(t, w.Classifier(false), d, targets)
	nLoss, nTops, nTraces := lenetSpectra(t, hessian.ModelClassifier(nw, false), d, targets)
	const tol = 1e-9
	if e := math.Abs(loss-lenetFixtureLoss) / lenetFixtureLoss; !(e <= 1e-12) {
		t.Errorf("loss %.17g, fixture %.17g", loss, lenetFixtureLoss)
	}
	if e := math.Abs(loss-nLoss) / nLoss; !(e <= 1e-12) {
		t.Errorf("loss %.17g, native %.17g", loss, nLoss)
	}
	for i, target := range targets {
		for k := range tops[i] {
			if e := math.Abs(tops[i][k]-nTops[i][k]) / math.Abs(nTops[i][k]); !(e <= tol) {
				t.Errorf("%s: eigenvalue %d: %.12g, native %.12g (relative error %.3g)", target, k+1, tops[i][k], nTops[i][k], e)
			}
		}
		if e := math.Abs(traces[i]-nTraces[i]) / math.Abs(nTraces[i]); !(e <= tol) {
			t.Errorf("%s: trace %.12g, native %.12g (relative error %.3g)", target, traces[i], nTraces[i], e)
		}
		t.Logf("%-13s top-3 %.8g, trace %.8g", target, tops[i], traces[i])
	}
}
