package cpu

import (
	"gonum.org/v1/gonum/blas/gonum"
)

// The matrix products of every DotGeneral, with gonum's row-major BLAS
// signature: C = alpha·op(A)·op(B) + beta·C. dotStep divides each product
// into tasks itself (by batch, rows, columns or k, by the shapes alone) and
// calls these on one goroutine per task, so they must give the same bits for
// the same arguments; they may use more threads inside a call only if that
// keeps them deterministic.
//
// Today they are gonum's pure-Go Sgemm and Dgemm. The project's AVX2
// kernels (package kernels/gemm) have the same signature; with them, use
// one goroutine per call, since they split k by the thread count:
//
//	sgemm = gemm.Implementation{Threads: 1}.Sgemm
var (
	sgemm = gonum.Implementation{}.Sgemm
	dgemm = gonum.Implementation{}.Dgemm
)
