package cpu

import (
	"gonum.org/v1/gonum/blas/gonum"
)

// The matrix products of every DotGeneral, with gonum's row-major BLAS
// signature: C = alpha·op(A)·op(B) + beta·C. They must be deterministic (the
// same inputs give the same bits) whatever the number of threads they use.
// Today they are gonum's pure-Go Sgemm and Dgemm; kernels with the same
// signature (such as the project's kernels/gemm) drop in here.
var (
	sgemm = gonum.Implementation{}.Sgemm
	dgemm = gonum.Implementation{}.Dgemm
)
