package hessian

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestTopEigenvaluesConvergeTo1e8(t *testing.T) {
	ctx := context.Background()
	// Clustered: four values 1e-3 apart above a bulk.
	clustered := uniformSpectrum(3000, 0, 5)
	copy(clustered[2996:], []float64{10 - 3e-3, 10 - 2e-3, 10 - 1e-3, 10})
	// Largest algebraic values sit next to a far negative outlier.
	negative := uniformSpectrum(1000, -1, 1)
	negative[0] = -40
	cases := []struct {
		name   string
		lambda []float64
		k      int
	}{
		{"uniform-200", uniformSpectrum(200, -1, 3), 5},
		{"two-clusters-1000", twoClusters(1000), 3},
		{"hessian-like-5000", hessianLike(5000, 2), 10},
		{"clustered-3000", clustered, 4},
		{"negative-outlier-1000", negative, 3},
		{"uniform-5000", uniformSpectrum(5000, 0, 1), 2},
	}
	for ci, c := range cases {
		op := newSpectral(c.lambda, 4, uint64(ci)+20)
		exact := op.sortedEigen()
		slices.Reverse(exact)
		o := TopKOptions{K: c.k, Tol: 1e-8, Seed: 3}
		got, err := TopEigenvalues(ctx, op, o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !got.Converged || len(got.Values) != c.k || got.Applications != got.Steps || op.calls != got.Steps {
			t.Fatalf("%s: converged %v, %d values, %d steps, %d applications (%d counted)", c.name, got.Converged, len(got.Values), got.Steps, got.Applications, op.calls)
		}
		worst := 0.0
		for i, v := range got.Values {
			err := math.Abs(v - exact[i])
			worst = max(worst, err/max(1, math.Abs(exact[i])))
			if !(err <= 1e-8*max(1, math.Abs(exact[i]))) {
				t.Errorf("%s: θ%d = %.15g, λ%d = %.15g, error %.2g (residual %.2g)", c.name, i, v, i, exact[i], err, got.Residuals[i])
			}
			if !(got.Residuals[i] <= 1e-8*max(1, math.Abs(v))) {
				t.Errorf("%s: residual %d = %g above tolerance", c.name, i, got.Residuals[i])
			}
		}
		t.Logf("%-22s k=%2d: %4d steps, worst relative error %.1e", c.name, c.k, got.Steps, worst)
	}
}

// A top eigenvalue of multiplicity 3: single-vector Lanczos sees its
// eigenspace in one direction. What TopK promises: values never above the
// true i-th largest (interlacing), each within its residual of a true
// eigenvalue, the largest found exactly.
func TestTopEigenvaluesRepeated(t *testing.T) {
	lambda := uniformSpectrum(1500, 0, 5)
	copy(lambda[1495:], []float64{8, 9, 10, 10, 10})
	op := newSpectral(lambda, 4, 9)
	exact := op.sortedEigen()
	slices.Reverse(exact)
	got, err := TopEigenvalues(context.Background(), op, TopKOptions{K: 4, Tol: 1e-8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Converged {
		t.Fatalf("not converged after %d steps", got.Steps)
	}
	t.Logf("repeated top: %v after %d steps", got.Values, got.Steps)
	if !(math.Abs(got.Values[0]-10) <= 1e-8*10) {
		t.Errorf("largest %g, want 10", got.Values[0])
	}
	for i, v := range got.Values {
		if !(v <= exact[i]+1e-8*10) {
			t.Errorf("θ%d = %.12g above λ%d = %g: interlacing violated", i, v, i, exact[i])
		}
		near := false
		for _, l := range []float64{10, 9, 8} {
			near = near || math.Abs(v-l) <= 1e-8*l
		}
		if !near {
			t.Errorf("θ%d = %.12g is not within 1e-8 of an eigenvalue", i, v)
		}
	}
}

// When the Krylov space becomes invariant before K values are found (a
// diagonal matrix with 3 distinct values of multiplicity 20, K = 5), the
// run restarts from a fresh direction orthogonal to the space instead of
// stopping; each restart finds every distinct value once more. So it
// returns 3, 3, 2, 2, 1 after 6 steps, and the exact eigenvectors — the
// multiplicity limit documented on TopK, not the true top five (3 × 5).
func TestTopEigenvaluesRestartAfterBreakdown(t *testing.T) {
	n := 60
	lambda := make([]float64, n)
	for i := range lambda {
		lambda[i] = []float64{1, 2, 3}[i%3]
	}
	op := newSpectral(lambda, 0, 0)
	got, err := TopEigenvalues(context.Background(), op, TopKOptions{K: 5, Tol: 1e-10, Seed: 4, Vectors: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{3, 3, 2, 2, 1}
	if !got.Converged || got.Steps != 6 || len(got.Values) != 5 || len(got.Vectors) != 5 {
		t.Fatalf("converged %v after %d steps with %d values, %d vectors", got.Converged, got.Steps, len(got.Values), len(got.Vectors))
	}
	ay := make([]float64, n)
	for i, y := range got.Vectors {
		if !(math.Abs(got.Values[i]-want[i]) <= 1e-12) {
			t.Errorf("values %v, want %v", got.Values, want)
		}
		// Orthonormal eigenvectors: A y = θ y.
		_ = op.Apply(context.Background(), ay, y)
		res := 0.0
		for j := range y {
			res += (ay[j] - want[i]*y[j]) * (ay[j] - want[i]*y[j])
		}
		if !(math.Sqrt(res) <= 1e-10) {
			t.Errorf("vector %d: ‖Ay − %gy‖ = %g", i, want[i], math.Sqrt(res))
		}
		for k := range i {
			if d := dot(y, got.Vectors[k]); !(math.Abs(d) <= 1e-10) {
				t.Errorf("vectors %d and %d: ⟨y, y'⟩ = %g", i, k, d)
			}
		}
		if nn := dot(y, y); !(math.Abs(nn-1) <= 1e-12) {
			t.Errorf("vector %d: norm² %g", i, nn)
		}
	}
}

func TestTopEigenvaluesReportsNonConvergence(t *testing.T) {
	op := newSpectral(uniformSpectrum(2000, 0, 1), 3, 1)
	got, err := TopEigenvalues(context.Background(), op, TopKOptions{K: 3, Tol: 1e-12, MaxSteps: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Converged || got.Steps != 20 || len(got.Values) != 3 {
		t.Fatalf("converged %v after %d steps with %d values; want false, 20, 3", got.Converged, got.Steps, len(got.Values))
	}
}

func TestTopKOptionErrors(t *testing.T) {
	op := newSpectral(uniformSpectrum(10, 0, 1), 1, 1)
	for _, o := range []TopKOptions{{K: 0, Tol: 1e-6}, {K: 11, Tol: 1e-6}, {K: 2, Tol: 0}, {K: 4, Tol: 1e-6, MaxSteps: 3}} {
		if _, err := TopEigenvalues(context.Background(), op, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
