package hessian

import (
	"math"
	"runtime"
	"testing"
)

// The chunked kernels agree with plain loops, and give bit-identical results
// whatever the number of goroutines (vectors above parallelLen run in
// parallel).
func TestVectorKernels(t *testing.T) {
	for _, n := range []int{5, 1000, chunkLen, chunkLen + 3, parallelLen + 12345} {
		a, b := make([]float64, n), make([]float64, n)
		gaussian(a, newRand(1, uint64(n)))
		gaussian(b, newRand(2, uint64(n)))
		basis := make([][]float64, 3)
		for i := range basis {
			basis[i] = make([]float64, n)
			gaussianUnit(basis[i], newRand(3, uint64(i)))
		}
		// Orthonormalise the basis with plain loops.
		for i := range basis {
			for k := range i {
				d := 0.0
				for j := range n {
					d += basis[i][j] * basis[k][j]
				}
				for j := range n {
					basis[i][j] -= d * basis[k][j]
				}
			}
			s := 0.0
			for _, x := range basis[i] {
				s += x * x
			}
			for j := range n {
				basis[i][j] /= math.Sqrt(s)
			}
		}
		run := func(procs int) (float64, []float64, []float64) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			y := append([]float64(nil), b...)
			axpy(y, 0.75, a)
			w := append([]float64(nil), a...)
			orthogonalize(w, basis)
			return dot(a, b), y, w
		}
		d1, y1, w1 := run(1)
		d4, y4, w4 := run(4)
		if d1 != d4 || !equal(y1, y4) || !equal(w1, w4) {
			t.Errorf("n=%d: results depend on GOMAXPROCS", n)
		}
		want, norm := 0.0, 0.0
		for j := range n {
			want += a[j] * b[j]
			norm += a[j]*a[j] + b[j]*b[j]
			if !(math.Abs(y1[j]-(b[j]+0.75*a[j])) <= 1e-15*(1+math.Abs(b[j])+math.Abs(a[j]))) {
				t.Fatalf("n=%d: axpy[%d] = %g", n, j, y1[j])
			}
		}
		if !(math.Abs(d1-want) <= 1e-13*norm) {
			t.Errorf("n=%d: dot %.17g, plain loop %.17g", n, d1, want)
		}
		for i, v := range basis {
			d := 0.0
			for j := range n {
				d += v[j] * w1[j]
			}
			if !(math.Abs(d) <= 1e-12*math.Sqrt(float64(n))) {
				t.Errorf("n=%d: orthogonalised vector has %g along basis vector %d", n, d, i)
			}
		}
	}
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
