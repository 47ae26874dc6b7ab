package cpu

import (
	"github.com/hessian-spectra/runner/kernels/gemm"
)

// The matrix products of every DotGeneral, with gonum's row-major BLAS
// signature: C = alpha·op(A)·op(B) + beta·C. dotStep divides each product
// into tasks itself (by batch, rows, columns or k, by the shapes alone) and
// calls these on one goroutine per task, so they must give the same bits for
// the same arguments; they may use more threads inside a call only if that
// keeps them deterministic.
//
// They are the project's packed AVX2+FMA kernels (package kernels/gemm; a
// pure-Go microkernel on other CPUs) on one goroutine per call, since those
// split k by the thread count when given several. gonum's pure-Go
// gonum.Implementation{}.Sgemm, with the same signature, also works.
var (
	sgemm = gemm.Implementation{Threads: 1}.Sgemm
	dgemm = gemm.Implementation{Threads: 1}.Dgemm
)
