package hessian

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// spectral is the test operator A = Q diag(λ) Qᵀ with Q = H₁⋯H_r a product
// of Householder reflections H = I − 2uuᵀ: known eigenvalues, dense
// eigenvectors, O(r·n) per product.
type spectral struct {
	lambda []float64
	u      [][]float64
	calls  int
}

// newSpectral builds A with eigenvalues lambda and r random reflections.
func newSpectral(lambda []float64, r int, seed uint64) *spectral {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &spectral{lambda: slices.Clone(lambda)}
	for range r {
		u := make([]float64, len(lambda))
		norm := 0.0
		for i := range u {
			u[i] = rng.NormFloat64()
			norm += u[i] * u[i]
		}
		for i := range u {
			u[i] /= math.Sqrt(norm)
		}
		s.u = append(s.u, u)
	}
	return s
}

func (s *spectral) Dim() int { return len(s.lambda) }

func (s *spectral) Apply(ctx context.Context, dst, src []float64) error {
	s.calls++
	copy(dst, src)
	for _, u := range s.u { // Qᵀ = H_r⋯H₁: H₁ first
		householder(dst, u)
	}
	for i, l := range s.lambda {
		dst[i] *= l
	}
	for i := len(s.u) - 1; i >= 0; i-- { // Q = H₁⋯H_r: H_r first
		householder(dst, s.u[i])
	}
	return nil
}

func householder(x, u []float64) {
	d := 0.0
	for i := range x {
		d += u[i] * x[i]
	}
	for i := range x {
		x[i] -= 2 * d * u[i]
	}
}

// dense returns A as a dense matrix (small n only), symmetrised from its
// columns A e_j.
func (s *spectral) dense(t *testing.T) *mat.SymDense {
	t.Helper()
	n := s.Dim()
	full := mat.NewDense(n, n, nil)
	col := make([]float64, n)
	e := make([]float64, n)
	for j := range n {
		e[j] = 1
		if err := s.Apply(context.Background(), col, e); err != nil {
			t.Fatal(err)
		}
		e[j] = 0
		full.SetCol(j, col)
	}
	a := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			a.SetSym(i, j, (full.At(i, j)+full.At(j, i))/2)
		}
	}
	return a
}

// sortedEigen returns the eigenvalues ascending.
func (s *spectral) sortedEigen() []float64 {
	l := slices.Clone(s.lambda)
	slices.Sort(l)
	return l
}

func (s *spectral) trace() float64 {
	t := 0.0
	for _, l := range s.lambda {
		t += l
	}
	return t
}

// Spectra used by the tests.

// uniformSpectrum: n values evenly spaced on [a, b].
func uniformSpectrum(n int, a, b float64) []float64 {
	l := make([]float64, n)
	for i := range l {
		l[i] = a + (b-a)*float64(i)/float64(n-1)
	}
	return l
}

// twoClusters: half the values evenly on [0, 1], half on [4, 5].
func twoClusters(n int) []float64 {
	h := n / 2
	return append(uniformSpectrum(h, 0, 1), uniformSpectrum(n-h, 4, 5)...)
}

// hessianLike: a bulk of near-zero values (85 %), small negative ones
// (4 %), small positive ones, and ten large outliers, like a network's
// Hessian; n ≥ 100.
func hessianLike(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 11))
	l := make([]float64, 0, n)
	for range n * 85 / 100 {
		l = append(l, 0.01*rng.NormFloat64())
	}
	for range n * 4 / 100 {
		l = append(l, -0.05-0.45*rng.Float64())
	}
	outliers := []float64{50, 31, 22, 17, 13, 10, 8, 6.5, 5.2, 4.1}
	for len(l) < n-len(outliers) {
		l = append(l, 0.05+1.95*rng.Float64())
	}
	return append(l[:n-len(outliers)], outliers...)
}

func TestSpectralOperatorHasItsSpectrum(t *testing.T) {
	lambda := hessianLike(200, 1)
	s := newSpectral(lambda, 4, 2)
	a := s.dense(t)
	for i := range 200 {
		for j := range i {
			if d := math.Abs(a.At(i, j) - a.At(j, i)); !(d <= 1e-12) {
				t.Fatalf("A not symmetric: |a%d,%d − a%d,%d| = %g", i, j, j, i, d)
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(a, false) {
		t.Fatal("EigenSym failed")
	}
	got := eig.Values(nil)
	want := s.sortedEigen()
	for i := range got {
		if !(math.Abs(got[i]-want[i]) <= 1e-10) {
			t.Fatalf("eigenvalue %d: %g, want %g", i, got[i], want[i])
		}
	}
	// Q must mix the coordinates: A far from diagonal.
	off := 0.0
	for i := range 200 {
		for j := range 200 {
			if i != j {
				off += a.At(i, j) * a.At(i, j)
			}
		}
	}
	if frob := mat.Norm(a, 2); !(off >= 0.1*frob*frob) {
		t.Fatalf("off-diagonal mass %g of ‖A‖²_F = %g: the reflections do not mix", off, frob*frob)
	}
}
