package gemm

// Products with a small C may tile better transposed: Cᵀ = op(B)ᵀ·op(A)ᵀ
// swaps the roles of m and n. A weight gradient of LeNet's conv1 is 25×6
// with k = N·784: as C it pads to 36×8 entries of 12×8 tiles (the last row
// tile holding one row), as Cᵀ to one 6×32 strip of 6×16 tiles.

// Limits of the transposed path: Cᵀ is computed into a scratch buffer and
// added to C, worth it when C is small and k long, and only when op(A) is
// transposed (A stored k×m, as in weight gradients Xᵀ·dY): then A is the
// second operand of the transposed product in its natural layout, read in
// place; otherwise it would be packed through a transposition, which costs
// more than the tiles save.
const (
	maxTransposedC = 1 << 14
	minTransposedK = 64
)

// forceTransposed makes every single product take the transposed path
// (tests).
var forceTransposed = false

// transposeWins reports whether computing Cᵀ with kernel krT pads the product
// to at least 15% fewer entries than computing C with kr.
func transposeWins[T element](tA bool, m, n, k int, kr, krT *kernel[T]) bool {
	if forceTransposed {
		return true
	}
	if !tA || m > maxTransposedC || n > maxTransposedC || m*n > maxTransposedC || k < minTransposedK {
		return false
	}
	return paddedArea(n, m, krT) < 0.85*paddedArea(m, n, kr)
}

// runTransposed computes the single product p as Cᵀ = op(B)ᵀ·op(A)ᵀ with
// kernel krT into a scratch buffer, then sets C = Cᵀᵀ + beta·C.
func runTransposed[T element](p *problem[T], krT *kernel[T], threads int) {
	m, n := p.m, p.n
	w := getWorkspace[T]()
	ct := grow(&w.ct, m*n)
	q := problem[T]{
		tA: !p.tB, tB: !p.tA,
		m: n, n: m, k: p.k, alpha: p.alpha,
		a: p.b, lda: p.ldb,
		b: p.a, ldb: p.lda,
		c: ct, ldc: m,
		batch: 1,
	}
	run(&q, krT, threads)
	for i := 0; i < m; i++ {
		row := p.c[i*p.ldc : i*p.ldc+n]
		for j := range row {
			v := ct[j*m+i]
			if p.beta != 0 {
				v += p.beta * row[j]
			}
			row[j] = v
		}
	}
	putWorkspace(w)
}
