package onnxmodel

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/npz"
)

// The fixtures of testdata/onnx, made by testdata/onnx/make_fixtures.py.
const fixtures = "../../testdata/onnx/"

// testBackend is backend.ForTests ($GOMLX_BACKEND, else the default),
// opened once for all tests.
var testBackend = sync.OnceValues(func() (backends.Backend, error) { return backend.Open(backend.ForTests()) })

func backendT(t testing.TB) backends.Backend {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	return b
}

func open(t testing.TB, name string) *Model {
	t.Helper()
	m, err := Open(fixtures + name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readNPZ(t testing.TB, path string) *npz.Archive {
	t.Helper()
	ar, err := npz.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ar
}

func get(t testing.TB, ar *npz.Archive, name string) *npz.Array {
	t.Helper()
	a, err := ar.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// data makes hessian.Data of an archive's x and y.
func data(t testing.TB, ar *npz.Archive) hessian.Data {
	t.Helper()
	x, y := get(t, ar, "x"), get(t, ar, "y")
	d := hessian.Data{Shape: x.Shape[1:]}
	for _, v := range x.Float64s() {
		d.X = append(d.X, float32(v))
	}
	labels, err := y.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		d.Y = append(d.Y, int32(l))
	}
	return d
}

// hvp computes H·v of one target of a classifier on d.
func hvp(t testing.TB, c *hessian.Classifier, d hessian.Data, target string, v []float64) (loss float64, hv []float64) {
	t.Helper()
	tg, err := c.Target(target)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hessian.NewModelHessian(backendT(t), c, d, []hessian.Target{tg}, hessian.ModelHessianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	hv = make([]float64, len(v))
	if err := h.Operator(0).Apply(context.Background(), hv, v); err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	if loss, err = h.Loss(context.Background()); err != nil {
		t.Fatal(err)
	}
	return loss, hv
}

// relErr is ‖a − b‖ / ‖b‖ (NaN when the lengths differ).
func relErr(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	return math.Sqrt(d / n)
}
