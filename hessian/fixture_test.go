package hessian

import (
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/npz"
)

// testBackend is backend.ForTests ($GOMLX_BACKEND, else the default), opened
// once for all tests.
var testBackend = sync.OnceValues(func() (backends.Backend, error) { return backend.Open(backend.ForTests()) })

func backendT(t testing.TB) backends.Backend {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	return b
}

// The PyTorch-made LeNet fixture and a fact from its README.
const (
	fixtureDir  = "../testdata/lenet-fmnist/"
	fixtureLoss = 0.7142452905187945
)

// lenetFixture returns the fixture's LeNet weights in dtype and its
// 100-image subset.
func lenetFixture(t testing.TB, dtype dtypes.DType) (*models.Weights, Data) {
	t.Helper()
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.ReadWeights(fixtureDir+"weights.npz", dtype)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := npz.ReadFile(fixtureDir + "subset.npz")
	if err != nil {
		t.Fatal(err)
	}
	xa, err := sub.Get("x")
	if err != nil {
		t.Fatal(err)
	}
	ya, err := sub.Get("y")
	if err != nil {
		t.Fatal(err)
	}
	labels, err := ya.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	d := Data{Shape: []int{1, 32, 32}}
	for _, v := range xa.Float64s() {
		d.X = append(d.X, float32(v))
	}
	for _, l := range labels {
		d.Y = append(d.Y, int32(l))
	}
	return w, d
}
