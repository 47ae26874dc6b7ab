// Package gemm multiplies dense matrices (SGEMM, DGEMM) fast on the CPU: packed,
// cache-blocked products with a register-tiled microkernel in AVX2+FMA assembly,
// and a pure-Go microkernel on other CPUs.
//
// # API
//
// The functions follow the row-major BLAS convention of gonum's blas package
// exactly, so code written against gonum.org/v1/gonum/blas/gonum switches with
// one line:
//
//	C = alpha·op(A)·op(B) + beta·C
//
//	func Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int,
//		b []float32, ldb int, beta float32, c []float32, ldc int)
//	func Dgemm(... the same with float64 ...)
//
// op(A) is m×k, op(B) is k×n and C is m×n, all row-major with leading
// dimensions lda, ldb, ldc (the distance between rows, at least the row width).
// blas.ConjTrans means blas.Trans. Argument checks, their panic messages and
// the quick return (m or n zero) are gonum's. When beta is zero C is not
// read, so NaNs in C do not survive beta = 0. When alpha (or k) is zero, A and
// B are not read and C = beta·C, as in the reference BLAS (gonum reads them
// then, so a NaN in A gives NaNs there and not here). Otherwise NaNs and
// infinities in A and B propagate as the arithmetic says (no zero skipping).
// Results differ from gonum's in the last bits: the summation order is
// blocked and the assembly uses fused multiply-adds. They do not depend on
// the number of threads except for products split along k (see Threads).
//
// Strided batches (a DotGeneral with batch axes) are one call:
//
//	SgemmBatch(tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
//
// computes the batch products C_i = alpha·op(A_i)·op(B_i) + beta·C_i where A_i
// starts at a[i·strideA], and so on. A stride of 0 shares one operand across
// the batch (not allowed for C).
//
// # Threads
//
// The package-level functions use up to runtime.GOMAXPROCS(0) goroutines on
// problems large enough to gain from them and run small ones on the calling
// goroutine. Implementation{Threads: t} bounds that number (t = 1: the whole
// product runs on the calling goroutine, for callers that parallelise
// themselves); its zero value behaves like the package functions. Its methods
// Sgemm, Dgemm, SgemmBatch and DgemmBatch have the package functions'
// signatures, so Implementation satisfies an interface such as
//
//	type gemmer interface {
//		Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int,
//			b []float64, ldb int, beta float64, c []float64, ldc int)
//	}
//
// that gonum's gonum.Implementation also satisfies.
//
// Work is split over goroutines along the rows of C when it has enough of
// them, else (small C, long k: weight gradients) along k into private
// partial products summed at the end, else along its columns; a batch is
// split by items when it has at least as many as there are threads. The
// goroutines are package parallel's reusable helpers, so a product may be
// called from inside parallel parts (say, one per batch item) without
// deadlock or goroutine creation.
//
// # Concurrency and memory
//
// All functions are safe for concurrent use, including by several goroutines
// on disjoint parts of one C. Packing buffers come from a pool, so a call
// allocates nothing in the steady state (a garbage collection may empty the
// pool; the next call refills it).
//
// # Kernels
//
// On amd64 CPUs with AVX2 and FMA (golang.org/x/sys/cpu) the microkernels are
// generated assembly (go generate; the generator is the separate module in
// asm/ so this module does not depend on avo). Everywhere else, and when
// HasAsm reports false, pure-Go microkernels compute the same blocked
// algorithm. The tests run both on machines that have the assembly.
package gemm
