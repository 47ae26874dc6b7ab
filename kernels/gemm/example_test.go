package gemm_test

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/hessian-spectra/runner/kernels/gemm"
)

// A backend written against gonum's row-major BLAS switches implementations
// by changing the value behind one interface.
func Example() {
	type sgemmer interface {
		Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	}
	a := []float32{1, 2, 3, 4, 5, 6} // 2×3
	b := []float32{1, 0, 0, 1, 1, 1} // 3×2
	for _, impl := range []sgemmer{gonum.Implementation{}, gemm.Implementation{}, gemm.Implementation{Threads: 1}} {
		c := make([]float32, 4) // 2×2
		impl.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
		fmt.Println(c)
	}
	// Output:
	// [4 5 10 11]
	// [4 5 10 11]
	// [4 5 10 11]
}

// A DotGeneral with a batch axis: C_i = A_i·B for three 2×2 A_i sharing one
// B (stride 0).
func ExampleSgemmBatch() {
	a := []float32{1, 0, 0, 1, 2, 0, 0, 2, 0, 1, 1, 0} // three 2×2
	b := []float32{1, 2, 3, 4}
	c := make([]float32, 12)
	gemm.SgemmBatch(blas.NoTrans, blas.NoTrans, 2, 2, 2, 1, a, 2, 4, b, 2, 0, 0, c, 2, 4, 3)
	fmt.Println(c)
	// Output: [1 2 3 4 2 4 6 8 3 4 1 2]
}
