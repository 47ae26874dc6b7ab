package gemm

import "gonum.org/v1/gonum/blas"

// Implementation computes matrix products with at most Threads goroutines;
// Threads ≤ 0 means runtime.GOMAXPROCS(0), Threads = 1 runs everything on the
// calling goroutine. The zero value is ready to use. Its methods have the
// signatures of the package functions and of gonum's blas.Float32Level3 and
// blas.Float64Level3 Sgemm and Dgemm.
type Implementation struct {
	Threads int
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C in float32 with the row-major
// BLAS convention of gonum's blas.Float32Level3.Sgemm, using up to
// runtime.GOMAXPROCS(0) goroutines. See the package documentation.
func Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm computes C = alpha·op(A)·op(B) + beta·C in float64 with the row-major
// BLAS convention of gonum's blas.Float64Level3.Dgemm, using up to
// runtime.GOMAXPROCS(0) goroutines. See the package documentation.
func Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmBatch computes batch products C_i = alpha·op(A_i)·op(B_i) + beta·C_i in
// float32, where A_i is the matrix at a[i·strideA:] with leading dimension lda,
// and likewise B_i and C_i. strideA or strideB may be 0 (one operand shared by
// the batch); strideC must leave the C_i disjoint. Uses up to
// runtime.GOMAXPROCS(0) goroutines.
func SgemmBatch(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	Implementation{}.SgemmBatch(tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

// DgemmBatch is SgemmBatch in float64.
func DgemmBatch(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda, strideA int, b []float64, ldb, strideB int, beta float64, c []float64, ldc, strideC int, batch int) {
	Implementation{}.DgemmBatch(tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

// Sgemm is the package function Sgemm with impl.Threads goroutines at most.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl.SgemmBatch(tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// Dgemm is the package function Dgemm with impl.Threads goroutines at most.
func (impl Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	impl.DgemmBatch(tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// SgemmBatch is the package function SgemmBatch with impl.Threads goroutines at most.
func (impl Implementation) SgemmBatch(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	gemmBatch(impl.Threads, kernels32, tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

// DgemmBatch is the package function DgemmBatch with impl.Threads goroutines at most.
func (impl Implementation) DgemmBatch(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda, strideA int, b []float64, ldb, strideB int, beta float64, c []float64, ldc, strideC int, batch int) {
	gemmBatch(impl.Threads, kernels64, tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

// gemmBatch checks and runs one call on up to threads goroutines with the
// kernel that pick chooses for an m×n product.
func gemmBatch[T element](threads int, pick func(m, n int) *kernel[T], tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda, strideA int, b []T, ldb, strideB int, beta T, c []T, ldc, strideC int, batch int) {
	p := problem[T]{
		m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, lda: lda, strideA: strideA,
		b: b, ldb: ldb, strideB: strideB,
		c: c, ldc: ldc, strideC: strideC,
		batch: batch,
	}
	if !p.check(tA, tB) {
		return
	}
	kr := pick(m, n)
	if krT := pick(n, m); batch == 1 && transposeWins(p.tA, m, n, k, kr, krT) {
		runTransposed(&p, krT, threads)
		return
	}
	run(&p, kr, threads)
}
