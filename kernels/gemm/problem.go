package gemm

import "gonum.org/v1/gonum/blas"

// element is the element type of the products: float32 or float64.
type element interface{ ~float32 | ~float64 }

// problem is one validated call: batch products
// C_i = alpha·op(A_i)·op(B_i) + beta·C_i, with A_i at a[i·strideA:] and so on.
type problem[T element] struct {
	tA, tB       bool
	m, n, k      int
	alpha, beta  T
	a            []T
	lda, strideA int
	b            []T
	ldb, strideB int
	c            []T
	ldc, strideC int
	batch        int
}

// Panic messages: gonum's for the checks gonum makes, so that callers see the
// same errors from either implementation.
const (
	badTranspose = "blas: illegal transpose"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
	badBatch     = "gemm: batch < 0"
	badStride    = "gemm: negative stride"
	sharedC      = "gemm: strideC = 0 with batch > 1"
)

// isTrans reports whether t transposes its operand, panicking on an illegal t.
func isTrans(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic(badTranspose)
}

// check validates the arguments as gonum does, then handles the cases that
// need no product (alpha = 0 or k = 0: C = beta·C). It reports whether a
// product remains to be computed.
func (p *problem[T]) check(tA, tB blas.Transpose) bool {
	p.tA, p.tB = isTrans(tA), isTrans(tB)
	m, n, k := p.m, p.n, p.k
	switch {
	case m < 0:
		panic(mLT0)
	case n < 0:
		panic(nLT0)
	case k < 0:
		panic(kLT0)
	case p.batch < 0:
		panic(badBatch)
	case p.strideA < 0 || p.strideB < 0 || p.strideC < 0:
		panic(badStride)
	}
	rowsA, colsA := m, k
	if p.tA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if p.tB {
		rowsB, colsB = n, k
	}
	if p.lda < max(1, colsA) {
		panic(badLdA)
	}
	if p.ldb < max(1, colsB) {
		panic(badLdB)
	}
	if p.ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 || p.batch == 0 {
		return false
	}
	if p.batch > 1 && p.strideC == 0 {
		panic(sharedC)
	}
	last := p.batch - 1
	if len(p.a) < last*p.strideA+(rowsA-1)*p.lda+colsA && rowsA > 0 {
		panic(shortA)
	}
	if len(p.b) < last*p.strideB+(rowsB-1)*p.ldb+colsB && rowsB > 0 {
		panic(shortB)
	}
	if len(p.c) < last*p.strideC+(m-1)*p.ldc+n {
		panic(shortC)
	}
	if p.alpha != 0 && k != 0 {
		return true
	}
	if p.beta != 1 {
		for i := 0; i < p.batch; i++ {
			scaleC(p.c[i*p.strideC:], m, n, p.ldc, p.beta)
		}
	}
	return false
}

// scaleC sets the m×n matrix c to beta·c, not reading c when beta is 0.
func scaleC[T element](c []T, m, n, ldc int, beta T) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
