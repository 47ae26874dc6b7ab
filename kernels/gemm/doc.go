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
// # Kernels and blocking
//
// On amd64 CPUs with AVX2 and FMA (golang.org/x/sys/cpu) the microkernels are
// generated assembly (go generate; the generator is the separate module in
// asm/ so this module does not depend on avo). Everywhere else, and when
// HasAsm reports false, a pure-Go 2×4 microkernel computes the same blocked
// algorithm on packed operands. The tests run both on machines that have
// the assembly; the build tag purego leaves the assembly out, building on
// amd64 what other architectures build.
//
// Each assembly kernel keeps a tile of C in 12 ymm accumulators: 6×16 and
// 12×8 for float32, 6×8 and 12×4 for float64; the narrow one is used when it
// pads n to fewer columns (n = 6 computes 8 columns, not 16). One call
// computes a vertical strip of tiles, so tall-skinny products (im2col
// convolutions: millions of rows, k = 25) pay one call per 144 rows. The
// kernels read A through a row and a column stride, so A is read where it
// lies (row-major or transposed), and B through a row stride, packed or in
// place, with masked loads and stores for partial panels; they prefetch A
// ahead of use.
//
// The loop nest is Goto's: n in blocks of 2048 (float32; 1024 float64)
// columns, k in balanced blocks of at most 256, m in blocks of 144 (72) rows.
// B is packed once per k block into k-major panels of nr columns (kc·nr fits
// L1), unless few row tiles share it (≤ 256 rows, B not transposed), when it
// is read in place. A is read in place except when transposed and shared by
// more than 16 column panels, when its mc×kc block is packed (L2). Rows that
// do not fill a tile go through a zero-padded scratch tile.
//
// A small C (≤ 16384 entries) with long k and op(A) transposed — the weight
// gradients Xᵀ·dY — is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ into a scratch buffer
// when that tiles better: conv1's 25×6 gradient becomes one 6×32 strip of
// 6×16 tiles instead of 36×8 entries of 12×8 tiles.
package gemm
