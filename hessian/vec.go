package hessian

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/floats"
)

// Vector kernels for the Lanczos recurrences.
//
// Reductions are summed over fixed chunks of chunkLen elements, in chunk
// order, whatever the number of goroutines that computed the chunks: results
// are bit-identical on every machine and for every GOMAXPROCS. Vectors of
// at least parallelLen elements are processed by several goroutines (the
// 11M-parameter ResNet18 Hessian makes one Lanczos step memory-bound).

const (
	chunkLen    = 1 << 14
	parallelLen = 1 << 17
)

// chunks calls f(lo, hi) for every chunk of [0, n), in parallel when n is
// large, and returns when all calls have returned. f(c) for chunk index
// c = lo/chunkLen must only write state owned by chunk c.
func chunks(n int, f func(lo, hi int)) {
	nc := (n + chunkLen - 1) / chunkLen
	workers := runtime.GOMAXPROCS(0)
	if n < parallelLen || workers < 2 || nc < 2 {
		for lo := 0; lo < n; lo += chunkLen {
			f(lo, min(lo+chunkLen, n))
		}
		return
	}
	workers = min(workers, nc)
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := range workers {
		go func() {
			defer wg.Done()
			for c := w; c < nc; c += workers {
				lo := c * chunkLen
				f(lo, min(lo+chunkLen, n))
			}
		}()
	}
	wg.Wait()
}

// dot returns ⟨a, b⟩ summed chunk by chunk in a fixed order.
func dot(a, b []float64) float64 {
	n := len(a)
	if n <= chunkLen {
		return floats.Dot(a, b[:n])
	}
	part := make([]float64, (n+chunkLen-1)/chunkLen)
	chunks(n, func(lo, hi int) { part[lo/chunkLen] = floats.Dot(a[lo:hi], b[lo:hi]) })
	s := 0.0
	for _, p := range part {
		s += p
	}
	return s
}

// axpy sets y ← y + alpha·x.
func axpy(y []float64, alpha float64, x []float64) {
	chunks(len(y), func(lo, hi int) { floats.AddScaled(y[lo:hi], alpha, x[lo:hi]) })
}

// axpyDot sets y ← y + alpha·x and returns ⟨y, z⟩ of the updated y, in one
// pass: each chunk of y is updated and then read again while in cache. z may
// be y. The result equals axpy followed by dot, bit for bit.
func axpyDot(y []float64, alpha float64, x, z []float64) float64 {
	n := len(y)
	part := make([]float64, (n+chunkLen-1)/chunkLen)
	chunks(n, func(lo, hi int) {
		floats.AddScaled(y[lo:hi], alpha, x[lo:hi])
		part[lo/chunkLen] = floats.Dot(y[lo:hi], z[lo:hi])
	})
	s := 0.0
	for _, p := range part {
		s += p
	}
	return s
}

// scaleTo sets dst ← alpha·x.
func scaleTo(dst []float64, alpha float64, x []float64) {
	chunks(len(dst), func(lo, hi int) { floats.ScaleTo(dst[lo:hi], alpha, x[lo:hi]) })
}

// orthogonalize removes from w its components along the orthonormal vectors
// of basis by classical Gram–Schmidt: h = Vᵀw, then w ← w − V h. It makes one
// pass over w per call for all of basis at once, chunk by chunk, so that a
// chunk of w stays in cache while every basis vector is visited.
func orthogonalize(w []float64, basis [][]float64) {
	m := len(basis)
	if m == 0 {
		return
	}
	n := len(w)
	nc := (n + chunkLen - 1) / chunkLen
	part := make([]float64, nc*m)
	chunks(n, func(lo, hi int) {
		p := part[(lo/chunkLen)*m:][:m]
		for i, v := range basis {
			p[i] = floats.Dot(v[lo:hi], w[lo:hi])
		}
	})
	h := make([]float64, m)
	for c := range nc {
		for i := range m {
			h[i] += part[c*m+i]
		}
	}
	chunks(n, func(lo, hi int) {
		for i, v := range basis {
			floats.AddScaled(w[lo:hi], -h[i], v[lo:hi])
		}
	})
}
