package models

import (
	"math"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/npz"
)

// testBackend is backend.ForTests: $GOMLX_BACKEND, else the default.
var testBackend = sync.OnceValues(func() (backends.Backend, error) {
	return backend.Open(backend.ForTests())
})

func backendT(t testing.TB) backends.Backend {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	return b
}

const fixtureDir = "../testdata/lenet-fmnist/"

// Facts from testdata/lenet-fmnist/README.md (PyTorch 1.13).
const fixtureLoss = 0.7142452905187945

var fixtureLogits0 = []float64{7.56994, -1.14847, 2.22400, 3.35917, -1.61839, -3.72444, 5.38806, -7.28967, -1.44055, -5.17120}

// TestLeNetFixture evaluates the PyTorch-trained LeNet on its 100-image subset
// and compares loss, accuracy and logits with PyTorch's.
func TestLeNetFixture(t *testing.T) {
	m, err := New(LeNet, 1, 10)
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
	y := tensors.FromFlatDataAndDimensions(labels, len(labels))
	ev, err := NewEvaluator(backendT(t), m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dtype             dtypes.DType
		lossTol, logitTol float64
	}{
		{dtypes.Float64, 1e-9, 1e-5}, // logits in the README have 6 significant digits
		{dtypes.Float32, 1e-5, 1e-4},
	} {
		t.Run(c.dtype.String(), func(t *testing.T) {
			w, err := m.ReadWeights(fixtureDir+"weights.npz", c.dtype)
			if err != nil {
				t.Fatal(err)
			}
			x, err := InputTensor(xa.Float64s(), c.dtype, xa.Shape...)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ev.Evaluate(w, x, y)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(r.Loss - fixtureLoss); !(d <= c.lossTol) {
				t.Errorf("loss %.16g, PyTorch %.16g (|diff| %.2g > %.0g)", r.Loss, fixtureLoss, d, c.lossTol)
			}
			t.Logf("loss %.16g, |diff| from PyTorch %.2g", r.Loss, math.Abs(r.Loss-fixtureLoss))
			if r.Correct != 76 {
				t.Errorf("correct %d of 100, PyTorch 76", r.Correct)
			}
			logits, err := values(r.Logits)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, want := range fixtureLogits0 {
				worst = math.Max(worst, math.Abs(logits[i]-want))
			}
			if !(worst <= c.logitTol) {
				t.Errorf("first logits %v, PyTorch %v (max |diff| %.2g)", logits[:10], fixtureLogits0, worst)
			}
		})
	}
}
