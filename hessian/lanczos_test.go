package hessian

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestEigenMatchesDenseEigenSym(t *testing.T) {
	for _, m := range []int{1, 2, 7, 64} {
		alpha := make([]float64, m)
		beta := make([]float64, m)
		for i := range m {
			alpha[i] = math.Sin(float64(3*i + 1))
			beta[i] = 0.5 + 0.4*math.Cos(float64(5*i+2))
		}
		tri := &Tridiagonal{Alpha: alpha, Beta: beta}
		r, err := tri.Eigen()
		if err != nil {
			t.Fatal(err)
		}
		dense := mat.NewSymDense(m, nil)
		for i := range m {
			dense.SetSym(i, i, alpha[i])
			if i+1 < m {
				dense.SetSym(i, i+1, beta[i])
			}
		}
		var eig mat.EigenSym
		if !eig.Factorize(dense, true) {
			t.Fatal("EigenSym failed")
		}
		want := eig.Values(nil)
		var vecs mat.Dense
		eig.VectorsTo(&vecs)
		wsum := 0.0
		for k := range m {
			if !(math.Abs(r.Values[k]-want[k]) <= 1e-13) {
				t.Errorf("m=%d θ%d = %.16g, EigenSym %.16g", m, k, r.Values[k], want[k])
			}
			// Eigenvectors agree up to sign.
			first, last := vecs.At(0, k), vecs.At(m-1, k)
			if !(math.Abs(r.Weights[k]-first*first) <= 1e-12) {
				t.Errorf("m=%d weight %d = %g, want %g", m, k, r.Weights[k], first*first)
			}
			if want := math.Abs(beta[m-1] * last); !(math.Abs(r.Residuals[k]-want) <= 1e-12) {
				t.Errorf("m=%d residual %d = %g, want %g", m, k, r.Residuals[k], want)
			}
			wsum += r.Weights[k]
		}
		if !(math.Abs(wsum-1) <= 1e-13) {
			t.Errorf("m=%d weights sum to %g", m, wsum)
		}
	}
}

// Gauss quadrature from m Lanczos steps is exact for polynomials of degree
// ≤ 2m−1: e₁ᵀ Tᵏ e₁ = Σ γ θᵏ must equal v₁ᵀ Aᵏ v₁, computed here by
// repeated products from the same start vector.
func TestLanczosMatchesMomentsOfStartVector(t *testing.T) {
	const m = 12
	lambda := uniformSpectrum(300, -1, 1)
	lambda[0], lambda[299] = -1.3, 1.6 // outliers make the moments distinct
	op := newSpectral(lambda, 3, 5)
	for _, reorth := range []Reorthogonalization{ReorthNone, ReorthFull} {
		tri, err := Lanczos(context.Background(), op, LanczosOptions{Steps: m, Reorthogonalize: reorth, Seed: 9, Stream: 4})
		if err != nil {
			t.Fatal(err)
		}
		r, err := tri.Eigen()
		if err != nil {
			t.Fatal(err)
		}
		v1 := make([]float64, op.Dim())
		gaussianUnit(v1, newRand(9, 4))
		x := slices.Clone(v1)
		ax := make([]float64, len(x))
		for k := 0; k <= 2*m; k++ {
			want := 0.0
			for i := range x {
				want += v1[i] * x[i]
			}
			got := 0.0
			for i, th := range r.Values {
				got += r.Weights[i] * math.Pow(th, float64(k))
			}
			exact := math.Abs(got-want) <= 1e-12*max(1, math.Abs(want))
			if k < 2*m && !exact {
				t.Errorf("%v: moment %d: quadrature %.15g, v₁ᵀAᵏv₁ %.15g", reorth, k, got, want)
			}
			if k == 2*m && exact { // the test must be able to tell
				t.Errorf("%v: moment 2m = %d is exact too (%.15g): the spectrum is too simple for this test", reorth, k, got)
			}
			_ = op.Apply(context.Background(), ax, x)
			x, ax = ax, x
		}
		if tri.Steps() != m || tri.Breakdown {
			t.Errorf("%v: %d steps, breakdown %v", reorth, tri.Steps(), tri.Breakdown)
		}
	}
}

func TestLanczosFullSpaceGivesAllEigenvalues(t *testing.T) {
	lambda := hessianLike(200, 3)
	op := newSpectral(lambda, 4, 1)
	tri, err := Lanczos(context.Background(), op, LanczosOptions{Steps: 200, Reorthogonalize: ReorthFull, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tri.Eigen()
	if err != nil {
		t.Fatal(err)
	}
	want := op.sortedEigen()
	if len(r.Values) != len(want) {
		t.Fatalf("%d Ritz values, want %d (breakdown %v)", len(r.Values), len(want), tri.Breakdown)
	}
	for i := range want {
		if !(math.Abs(r.Values[i]-want[i]) <= 1e-10*50) {
			t.Errorf("θ%d = %.12g, λ%d = %.12g", i, r.Values[i], i, want[i])
		}
	}
}

// A diagonal matrix with 5 distinct eigenvalues: the Krylov space is
// invariant after 5 steps. The seed divides by β = 0 there; we stop, and
// the quadrature is then exact: nodes = the distinct eigenvalues, weights =
// the start vector's mass on each eigenspace.
func TestLanczosBreakdownStopsWithExactQuadrature(t *testing.T) {
	n := 100
	values := []float64{-2, 0, 1, 3, 7}
	lambda := make([]float64, n)
	for i := range lambda {
		lambda[i] = values[i%5]
	}
	op := newSpectral(lambda, 0, 0) // Q = I: eigenvectors e_i
	for _, reorth := range []Reorthogonalization{ReorthNone, ReorthFull} {
		tri, err := Lanczos(context.Background(), op, LanczosOptions{Steps: 20, Reorthogonalize: reorth, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !tri.Breakdown || tri.Steps() != 5 {
			t.Fatalf("%v: %d steps, breakdown %v; want 5 steps and a breakdown", reorth, tri.Steps(), tri.Breakdown)
		}
		r, err := tri.Eigen()
		if err != nil {
			t.Fatal(err)
		}
		v1 := make([]float64, n)
		gaussianUnit(v1, newRand(3, 0))
		for k, val := range values {
			mass := 0.0
			for i := k; i < n; i += 5 {
				mass += v1[i] * v1[i]
			}
			if !(math.Abs(r.Values[k]-val) <= 1e-12) || !(math.Abs(r.Weights[k]-mass) <= 1e-12) {
				t.Errorf("%v: node %d = %g weight %g, want %g and %g", reorth, k, r.Values[k], r.Weights[k], val, mass)
			}
		}
	}
}

func TestLanczosZeroOperatorBreaksDownAtOnce(t *testing.T) {
	op := newSpectral(make([]float64, 50), 2, 0)
	tri, err := Lanczos(context.Background(), op, LanczosOptions{Steps: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tri.Steps() != 1 || !tri.Breakdown || tri.Alpha[0] != 0 || tri.Beta[0] != 0 {
		t.Fatalf("zero operator: α %v β %v breakdown %v; want one step of zeros and a breakdown", tri.Alpha, tri.Beta, tri.Breakdown)
	}
}

// Without reorthogonalisation the vectors lose orthogonality once a Ritz
// value converges, and copies ("ghosts") of the top eigenvalue appear; full
// reorthogonalisation keeps exactly one.
func TestReorthogonalizationRemovesGhosts(t *testing.T) {
	lambda := uniformSpectrum(1000, 0, 1)
	lambda[999] = 10
	op := newSpectral(lambda, 3, 2)
	count := map[Reorthogonalization]int{}
	for _, reorth := range []Reorthogonalization{ReorthNone, ReorthFull} {
		tri, err := Lanczos(context.Background(), op, LanczosOptions{Steps: 150, Reorthogonalize: reorth, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := tri.Eigen()
		for _, th := range r.Values {
			if math.Abs(th-10) < 1e-6 {
				count[reorth]++
			}
		}
	}
	if count[ReorthFull] != 1 || count[ReorthNone] < 2 {
		t.Fatalf("Ritz values at 10: %d without, %d with reorthogonalisation; want ≥ 2 and 1", count[ReorthNone], count[ReorthFull])
	}
}

type funcOp struct {
	n int
	f func(ctx context.Context, dst, src []float64) error
}

func (o funcOp) Dim() int                                            { return o.n }
func (o funcOp) Apply(ctx context.Context, dst, src []float64) error { return o.f(ctx, dst, src) }

func TestLanczosErrors(t *testing.T) {
	ctx := context.Background()
	nan := funcOp{10, func(_ context.Context, dst, src []float64) error {
		copy(dst, src)
		dst[3] = math.NaN()
		return nil
	}}
	boom := errors.New("device lost")
	failing := funcOp{10, func(context.Context, []float64, []float64) error { return boom }}
	panicking := funcOp{10, func(context.Context, []float64, []float64) error { panic("shape mismatch") }}
	for _, tc := range []struct {
		name string
		op   Operator
		opts LanczosOptions
		want string
	}{
		{"nan", nan, LanczosOptions{Steps: 5}, "non-finite"},
		{"error", failing, LanczosOptions{Steps: 5}, "device lost"},
		{"panic", panicking, LanczosOptions{Steps: 5}, "shape mismatch"},
		{"steps", nan, LanczosOptions{Steps: 0}, "want both ≥ 1"},
	} {
		_, err := Lanczos(ctx, tc.op, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := Lanczos(ctx, failing, LanczosOptions{Steps: 5}); !errors.Is(err, boom) {
		t.Errorf("operator error not wrapped: %v", err)
	}
}

func TestLanczosHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	inner := newSpectral(uniformSpectrum(100, 0, 1), 1, 0)
	op := funcOp{100, func(ctx context.Context, dst, src []float64) error {
		if inner.calls == 3 {
			cancel()
		}
		return inner.Apply(ctx, dst, src)
	}}
	_, err := Lanczos(ctx, op, LanczosOptions{Steps: 50})
	if !errors.Is(err, context.Canceled) || inner.calls != 4 {
		t.Fatalf("error %v after %d products; want context.Canceled after 4", err, inner.calls)
	}
}

func TestParseReorthogonalization(t *testing.T) {
	for _, r := range []Reorthogonalization{ReorthNone, ReorthFull} {
		got, err := ParseReorthogonalization(r.String())
		if err != nil || got != r {
			t.Errorf("round trip of %v: %v, %v", r, got, err)
		}
	}
	if _, err := ParseReorthogonalization("partial"); err == nil {
		t.Error("partial accepted")
	}
}

func TestDenseOperator(t *testing.T) {
	op := newSpectral(hessianLike(100, 2), 2, 2)
	d := Dense{A: op.dense(t)}
	x := make([]float64, 100)
	gaussian(x, newRand(1, 1))
	got, want := make([]float64, 100), make([]float64, 100)
	if err := d.Apply(context.Background(), got, x); err != nil {
		t.Fatal(err)
	}
	_ = op.Apply(context.Background(), want, x)
	for i := range got {
		if !(math.Abs(got[i]-want[i]) <= 1e-12) {
			t.Fatalf("component %d: %g, want %g", i, got[i], want[i])
		}
	}
	if err := d.Apply(context.Background(), got[:99], x); err == nil {
		t.Error("short dst accepted")
	}
}
