package gemm

import (
	"fmt"
	"github.com/hessian-spectra/runner/kernels/internal/paths"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// eachPath runs f with the assembly (where the CPU has it) and with Go.
func eachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	paths.Each(t, asmSupported, &useAsm, f)
}

// gemmCase is one product to check: op(A) m×k, op(B) k×n, with leading
// dimensions padded by pad elements beyond the row width.
type gemmCase struct {
	tA, tB      blas.Transpose
	m, n, k     int
	alpha, beta float64
	pad         int
	batch       int
	threads     int
}

func (g gemmCase) String() string {
	return fmt.Sprintf("%c%c/m%d/n%d/k%d/a%g/b%g/pad%d/batch%d/t%d", g.tA, g.tB, g.m, g.n, g.k, g.alpha, g.beta, g.pad, g.batch, g.threads)
}

// operands are the random inputs of a case in float64; the matrices of the
// batch are laid one after the other (strides = one matrix).
type operands struct {
	a, b, c                   []float64
	lda, ldb, ldc             int
	strideA, strideB, strideC int
}

func (g gemmCase) operands(r *rand.Rand) operands {
	rowsA, colsA := g.m, g.k
	if g.tA == blas.Trans {
		rowsA, colsA = g.k, g.m
	}
	rowsB, colsB := g.k, g.n
	if g.tB == blas.Trans {
		rowsB, colsB = g.n, g.k
	}
	batch := max(g.batch, 1)
	var o operands
	o.lda, o.ldb, o.ldc = max(1, colsA+g.pad), max(1, colsB+g.pad), max(1, g.n+g.pad)
	o.strideA, o.strideB, o.strideC = rowsA*o.lda, rowsB*o.ldb, g.m*o.ldc
	random := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = 2*r.Float64() - 1
		}
		return s
	}
	o.a, o.b, o.c = random(batch*o.strideA), random(batch*o.strideB), random(batch*o.strideC)
	return o
}

// reference computes C = alpha·op(A)·op(B) + beta·C in float64 with a naive
// triple loop, and the error bound of a float computation with unit
// roundoff u: (k+2)·u·(|alpha|·Σ|a||b| + |beta·c|) per entry.
func reference(g gemmCase, o operands, u float64) (c, bound []float64) {
	c = append([]float64(nil), o.c...)
	bound = make([]float64, len(c))
	for q := 0; q < max(g.batch, 1); q++ {
		for i := 0; i < g.m; i++ {
			for j := 0; j < g.n; j++ {
				var sum, abs float64
				for p := 0; p < g.k; p++ {
					ai := q*o.strideA + i*o.lda + p
					if g.tA == blas.Trans {
						ai = q*o.strideA + p*o.lda + i
					}
					bi := q*o.strideB + p*o.ldb + j
					if g.tB == blas.Trans {
						bi = q*o.strideB + j*o.ldb + p
					}
					sum += o.a[ai] * o.b[bi]
					abs += math.Abs(o.a[ai] * o.b[bi])
				}
				ci := q*o.strideC + i*o.ldc + j
				var v, bnd float64
				if g.alpha != 0 { // BLAS does not read A and B when alpha is 0
					v, bnd = g.alpha*sum, math.Abs(g.alpha)*abs
				}
				if g.beta != 0 {
					v += g.beta * c[ci]
					bnd += math.Abs(g.beta * c[ci])
				}
				c[ci] = v
				bound[ci] = float64(g.k+2)*u*bnd + 1e-300
			}
		}
	}
	return c, bound
}

// compare fails t when got differs from want by more than bound anywhere, or
// when one is NaN and the other not. Entries outside the m×n matrices (the
// padding) must be untouched: equal to orig.
func compare[T element](t *testing.T, what string, g gemmCase, o operands, got []T, want, bound []float64) {
	t.Helper()
	bad := 0
	for q := 0; q < max(g.batch, 1); q++ {
		for i := 0; i < g.m; i++ {
			for j := 0; j < o.ldc; j++ {
				ci := q*o.strideC + i*o.ldc + j
				x := float64(got[ci])
				if j >= g.n {
					if x != float64(T(o.c[ci])) {
						t.Errorf("%s: %v: padding C[%d][%d,%d] changed to %g", what, g, q, i, j, x)
						return
					}
					continue
				}
				w := want[ci]
				ok := math.Abs(x-w) <= bound[ci] || (math.IsNaN(x) && math.IsNaN(w))
				if !ok {
					if bad < 3 {
						t.Errorf("%s: %v: C[%d][%d,%d] = %g, want %g ± %g", what, g, q, i, j, x, w, bound[ci])
					}
					bad++
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %v: %d wrong entries", what, g, bad)
	}
}

func convert[T, S element](s []S) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = T(v)
	}
	return out
}

// unit roundoffs
const (
	u32 = 0x1p-24
	u64 = 0x1p-53
)

// check runs case g in both precisions on the current kernels and compares
// with the naive reference and with gonum.
func check(t *testing.T, g gemmCase, r *rand.Rand) {
	t.Helper()
	o := g.operands(r)
	check32(t, g, o)
	check64(t, g, o)
}

func check32(t *testing.T, g gemmCase, o operands) {
	t.Helper()
	a, b, c := convert[float32](o.a), convert[float32](o.b), convert[float32](o.c)
	// The reference sees the float32-rounded inputs.
	o32 := operands{convert[float64](a), convert[float64](b), convert[float64](c), o.lda, o.ldb, o.ldc, o.strideA, o.strideB, o.strideC}
	want, bound := reference(g, o32, u32)
	impl := Implementation{Threads: g.threads}
	if g.batch == 0 {
		impl.Sgemm(g.tA, g.tB, g.m, g.n, g.k, float32(g.alpha), a, o.lda, b, o.ldb, float32(g.beta), c, o.ldc)
	} else {
		impl.SgemmBatch(g.tA, g.tB, g.m, g.n, g.k, float32(g.alpha), a, o.lda, o.strideA, b, o.ldb, o.strideB, float32(g.beta), c, o.ldc, o.strideC, g.batch)
	}
	compare(t, "Sgemm vs naive", g, o32, c, want, bound)
	if g.batch == 0 && g.alpha != 0 { // gonum reads A and B when alpha is 0
		gc := convert[float32](o32.c)
		gonum.Implementation{}.Sgemm(g.tA, g.tB, g.m, g.n, g.k, float32(g.alpha), a, o.lda, b, o.ldb, float32(g.beta), gc, o.ldc)
		twice := make([]float64, len(bound))
		for i, x := range bound {
			twice[i] = 2 * x
		}
		compare(t, "Sgemm vs gonum", g, o32, c, convert[float64](gc), twice)
	}
}

func check64(t *testing.T, g gemmCase, o operands) {
	t.Helper()
	a, b, c := o.a, o.b, append([]float64(nil), o.c...)
	want, bound := reference(g, o, u64)
	impl := Implementation{Threads: g.threads}
	if g.batch == 0 {
		impl.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, o.lda, b, o.ldb, g.beta, c, o.ldc)
	} else {
		impl.DgemmBatch(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, o.lda, o.strideA, b, o.ldb, o.strideB, g.beta, c, o.ldc, o.strideC, g.batch)
	}
	compare(t, "Dgemm vs naive", g, o, c, want, bound)
	if g.batch == 0 && g.alpha != 0 {
		gc := append([]float64(nil), o.c...)
		gonum.Implementation{}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, o.lda, b, o.ldb, g.beta, gc, o.ldc)
		twice := make([]float64, len(bound))
		for i, x := range bound {
			twice[i] = 2 * x
		}
		compare(t, "Dgemm vs gonum", g, o, c, gc, twice)
	}
}

var transposes = [][2]blas.Transpose{{blas.NoTrans, blas.NoTrans}, {blas.NoTrans, blas.Trans}, {blas.Trans, blas.NoTrans}, {blas.Trans, blas.Trans}}

var alphaBetas = [][2]float64{{1, 0}, {1, 1}, {-0.5, 0}, {2.5, -1.5}, {0, 0}, {0, 0.5}, {1, 0.25}}

// TestEdgeSizes covers every m, n in 1…17 (partial tiles of every kernel),
// with all transposes, alpha/beta pairs and padded leading dimensions.
func TestEdgeSizes(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		i := 0
		for m := 1; m <= 17; m++ {
			for n := 1; n <= 17; n++ {
				for _, k := range []int{1, 4, 17} {
					tr := transposes[i%4]
					ab := alphaBetas[i%len(alphaBetas)]
					check(t, gemmCase{tA: tr[0], tB: tr[1], m: m, n: n, k: k, alpha: ab[0], beta: ab[1], pad: i % 3, threads: 1}, r)
					i++
				}
			}
		}
	})
}

// lenetShapes are the products of LeNet on 32×32 images with batch size N:
// im2col convolutions, fully connected layers and their adjoints (input and
// weight gradients).
func lenetShapes(N int) []gemmCase {
	nn, tn, nt := [2]blas.Transpose{blas.NoTrans, blas.NoTrans}, [2]blas.Transpose{blas.Trans, blas.NoTrans}, [2]blas.Transpose{blas.NoTrans, blas.Trans}
	type s struct {
		tr      [2]blas.Transpose
		m, n, k int
	}
	var out []gemmCase
	for _, x := range []s{
		{nn, N * 784, 6, 25}, {nt, N * 784, 25, 6}, {tn, 25, 6, N * 784}, // conv1 forward, input and weight gradients
		{nn, N * 100, 16, 150}, {nt, N * 100, 150, 16}, {tn, 150, 16, N * 100}, // conv2
		{nn, N, 120, 400}, {nt, N, 400, 120}, {tn, 400, 120, N}, // fc1
		{nn, N, 84, 120}, {nt, N, 120, 84}, {tn, 120, 84, N}, // fc2
		{nn, N, 10, 84}, {nt, N, 84, 10}, {tn, 84, 10, N}, // fc3
	} {
		out = append(out, gemmCase{tA: x.tr[0], tB: x.tr[1], m: x.m, n: x.n, k: x.k, alpha: 1})
	}
	return out
}

// TestLeNetShapes checks the shapes that matter, at batch 16 (the HVP
// probes) and at the subset's 100 images, split over threads and not.
func TestLeNetShapes(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, N := range []int{16, 100} {
			for i, g := range lenetShapes(N) {
				g.threads = 1 + i%2*3 // 1 or 4 (more than the cores: exercise every split)
				g.beta = float64(i % 2)
				check(t, g, r)
			}
		}
	})
}

// TestLarge covers several cache blocks in every dimension (m > mc, n > nc,
// k > kc), packed transposed A (many column panels), odd sizes and padded
// leading dimensions, over threads.
func TestLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for i, tr := range transposes {
			check(t, gemmCase{tA: tr[0], tB: tr[1], m: 151, n: 2100, k: 300, alpha: 1.5, beta: 0.5, pad: 3 * i, threads: 0}, r)
			check(t, gemmCase{tA: tr[0], tB: tr[1], m: 256, n: 256, k: 256, alpha: 1, beta: 0, threads: 2}, r)
		}
	})
}

// TestSplits forces each way of dividing a product between goroutines.
func TestSplits(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, c := range []struct {
			g    gemmCase
			kind splitKind
		}{
			{gemmCase{m: 500, n: 7, k: 40, threads: 3}, splitRows},
			{gemmCase{m: 5, n: 700, k: 40, threads: 3}, splitCols},
			{gemmCase{m: 9, n: 6, k: 5000, threads: 3}, splitK},
			{gemmCase{m: 33, n: 20, k: 30, batch: 7, threads: 3}, splitBatch},
			{gemmCase{m: 33, n: 20, k: 600, batch: 2, threads: 3}, splitRows},
		} {
			for _, tr := range transposes {
				for _, ab := range alphaBetas {
					g := c.g
					g.tA, g.tB, g.alpha, g.beta = tr[0], tr[1], ab[0], ab[1]
					check(t, g, r)
				}
			}
			if c.g.batch == 0 {
				j := &job[float64]{p: problem[float64]{m: c.g.m, n: c.g.n, k: c.g.k, batch: 1}, kr: kernels64(c.g.m, c.g.n)}
				if j.plan(c.g.threads); j.kind != c.kind {
					t.Errorf("%v: split %d, want %d", c.g, j.kind, c.kind)
				}
			}
		}
	})
}

// TestNaN: NaN in A or B reaches exactly the entries of C it contributes to;
// NaN in C survives beta ≠ 0 and not beta = 0; alpha = 0 does not read A, B.
func TestNaN(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, tr := range transposes {
			for _, ab := range alphaBetas {
				for _, size := range [][3]int{{7, 5, 3}, {40, 19, 30}, {13, 70, 300}} {
					g := gemmCase{tA: tr[0], tB: tr[1], m: size[0], n: size[1], k: size[2], alpha: ab[0], beta: ab[1], pad: 1}
					o := g.operands(r)
					o.a[len(o.a)/2] = math.NaN()
					o.b[len(o.b)/3] = math.NaN()
					o.c[len(o.c)/4] = math.NaN()
					check32(t, g, o)
					check64(t, g, o)
				}
			}
		}
	})
}

// TestBatch covers strided batches, including an operand shared by the batch
// (stride 0) and C interleaved with another batch's rows.
func TestBatch(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, tr := range transposes {
			check(t, gemmCase{tA: tr[0], tB: tr[1], m: 23, n: 17, k: 19, alpha: 1, beta: 0.5, batch: 5, pad: 2}, r)
		}
		// B shared, C rows of item i interleaved: C is [m][batch][n].
		const m, n, k, batch = 50, 6, 25, 4
		a := make([]float32, batch*m*k)
		b := make([]float32, k*n)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		for i := range b {
			b[i] = float32(r.NormFloat64())
		}
		c := make([]float32, m*batch*n)
		SgemmBatch(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, m*k, b, n, 0, 0, c, batch*n, n, batch)
		for q := 0; q < batch; q++ {
			want := make([]float32, m*n)
			gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a[q*m*k:], k, b, n, 0, want, n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					got, w := c[i*batch*n+q*n+j], want[i*n+j]
					if !(math.Abs(float64(got-w)) <= 1e-4) {
						t.Fatalf("item %d C[%d,%d] = %g, want %g", q, i, j, got, w)
					}
				}
			}
		}
	})
}

// TestPanics: bad arguments panic with gonum's messages.
func TestPanics(t *testing.T) {
	a := make([]float64, 100)
	for _, c := range []struct {
		name string
		call func(f func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int))
	}{
		{"transpose", func(f func(blas.Transpose, blas.Transpose, int, int, int, float64, []float64, int, []float64, int, float64, []float64, int)) {
			f('x', blas.NoTrans, 2, 2, 2, 1, a, 2, a, 2, 0, a, 2)
		}},
		{"m<0", func(f func(blas.Transpose, blas.Transpose, int, int, int, float64, []float64, int, []float64, int, float64, []float64, int)) {
			f(blas.NoTrans, blas.NoTrans, -1, 2, 2, 1, a, 2, a, 2, 0, a, 2)
		}},
		{"lda", func(f func(blas.Transpose, blas.Transpose, int, int, int, float64, []float64, int, []float64, int, float64, []float64, int)) {
			f(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 2, a, 2, 0, a, 2)
		}},
		{"short c", func(f func(blas.Transpose, blas.Transpose, int, int, int, float64, []float64, int, []float64, int, float64, []float64, int)) {
			f(blas.NoTrans, blas.NoTrans, 11, 10, 2, 1, a, 2, a, 10, 0, a, 10)
		}},
	} {
		want := panicOf(func() { c.call(gonum.Implementation{}.Dgemm) })
		got := panicOf(func() { c.call(Dgemm) })
		if want == nil || got != want {
			t.Errorf("%s: panic %v, gonum's %v", c.name, got, want)
		}
	}
}

func panicOf(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

// TestConcurrent: several goroutines multiplying at once (each product
// itself split over helpers) get the same results as alone.
func TestConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const m, n, k = 200, 70, 90
	a, b := make([]float64, m*k), make([]float64, k*n)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	for i := range b {
		b[i] = r.NormFloat64()
	}
	want := make([]float64, m*n)
	Implementation{Threads: 1}.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 0, want, n)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := make([]float64, m*n)
			for range 20 {
				Implementation{Threads: 3}.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 0, c, n)
				for i := range c {
					if c[i] != want[i] {
						t.Errorf("C[%d] = %g, want %g", i, c[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestNoAllocations: the steady state allocates nothing, serial or split.
func TestNoAllocations(t *testing.T) {
	if paths.Race {
		t.Skip("sync.Pool drops items under -race")
	}
	eachPath(t, func(t *testing.T) {
		for _, threads := range []int{1, 2} {
			for _, shape := range [][3]int{{300, 100, 50}, {9, 6, 5000}} {
				m, n, k := shape[0], shape[1], shape[2]
				a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
				impl := Implementation{Threads: threads}
				allocs := testing.AllocsPerRun(20, func() {
					impl.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 0, c, n)
				})
				if allocs >= 1 {
					t.Errorf("threads %d, %v: %g allocations per call", threads, shape, allocs)
				}
			}
		}
	})
}

// TestTransposed covers products computed as Cᵀ, over all transposes,
// alpha/beta pairs, padded leading dimensions and threads.
func TestTransposed(t *testing.T) {
	if asmSupported && (!transposeWins(true, 25, 6, 200704, asm12x8, asm6x16) || !transposeWins(true, 25, 6, 200704, asm6x8, asm6x8)) {
		t.Errorf("conv1's weight gradient is not computed transposed")
	}
	forceTransposed = true
	defer func() { forceTransposed = false }()
	eachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for _, size := range [][3]int{{25, 6, 3000}, {13, 2, 100}, {5, 1, 700}, {40, 17, 9}} {
			m, n, k := size[0], size[1], size[2]
			for i, tr := range transposes {
				for j, ab := range alphaBetas {
					g := gemmCase{tA: tr[0], tB: tr[1], m: m, n: n, k: k, alpha: ab[0], beta: ab[1], pad: (i + j) % 3, threads: 1 + j%2}
					check(t, g, r)
				}
			}
		}
	})
}
