package gemm

import (
	"sync"
	"unsafe"
)

// workspace holds one goroutine's packing buffers; they grow to the largest
// block seen and are reused through a pool.
type workspace[T element] struct {
	a, b, edge, tile, ct []T
}

// grow returns buf resliced to n elements, reallocating only when too small.
func grow[T element](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	return (*buf)[:n]
}

// workspaces pools *workspace[float32] (index 0) and *workspace[float64] (index 1).
var workspaces [2]sync.Pool

// poolIndex is the index of T's pools.
func poolIndex[T element]() int {
	var z T
	if _, ok := any(z).(float32); ok {
		return 0
	}
	return 1
}

func getWorkspace[T element]() *workspace[T] {
	w, _ := workspaces[poolIndex[T]()].Get().(*workspace[T])
	if w == nil {
		w = new(workspace[T])
	}
	return w
}

func putWorkspace[T element](w *workspace[T]) { workspaces[poolIndex[T]()].Put(w) }

// block computes rows [m0, m1) and columns [n0, n1) of one product over the k
// range [k0, k1): C = alpha·op(A)·op(B) + beta·C on those entries, where op(A)
// and op(B) are read from a and b with p's layout and C is c with leading
// dimension ldc. It is the cache-blocked loop nest of Goto's algorithm:
// columns in nc blocks, k in kc blocks (B packed once per block, or read in
// place when few row tiles share it), rows in mc blocks (A read in place, or
// packed when transposed and shared by many column panels).
func (p *problem[T]) block(kr *kernel[T], w *workspace[T], a, b, c []T, ldc int, m0, m1, n0, n1, k0, k1 int, beta T) {
	kLen := k1 - k0
	kBlocks := (kLen + kr.kc - 1) / kr.kc
	kcMax := (kLen + kBlocks - 1) / kBlocks // balanced: k = 300 gives 150+150, not 256+44
	bInPlace := p.readBInPlace(kr, m1-m0)
	for jc := n0; jc < n1; jc += kr.nc {
		nc := min(kr.nc, n1-jc)
		for pc := k0; pc < k1; pc += kcMax {
			kc := min(kcMax, k1-pc)
			var bp []T
			if bInPlace {
				bp = b[pc*p.ldb+jc:]
			} else {
				bp = grow(&w.b, roundUp(nc, kr.nr)*kc)
				packB(bp, b, p.ldb, p.tB, pc, kc, jc, nc, kr.nr)
			}
			bet := beta
			if pc > k0 {
				bet = 1
			}
			for ic := m0; ic < m1; ic += kr.mc {
				mc := min(kr.mc, m1-ic)
				p.macro(kr, w, a, bp, bInPlace, c, ldc, ic, mc, jc, nc, pc, kc, bet)
			}
		}
	}
}

// readBInPlace decides whether the kernel reads B where it lies rather than
// packed: when B is not transposed, few rows (row tiles) share each packed
// panel, so that packing would cost as much as it saves, and B's rows are
// not a multiple of 512 bytes apart (the rows of a panel would crowd a few
// L1 sets).
func (p *problem[T]) readBInPlace(kr *kernel[T], rows int) bool {
	var z T
	rowBytes := p.ldb * int(unsafe.Sizeof(z))
	return !kr.packed && !p.tB && rows <= 256 && rowBytes%512 != 0
}

// macro multiplies the mc×kc block of op(A) at (ic, pc) by the kc×nc block of
// B (packed, or in place at bp with rows ldb apart) into C at (ic, jc), one
// column panel of B at a time.
func (p *problem[T]) macro(kr *kernel[T], w *workspace[T], a, bp []T, bInPlace bool, c []T, ldc int, ic, mc, jc, nc, pc, kc int, beta T) {
	mr, nr := kr.mr, kr.nr
	full := mc / mr
	rem := mc - full*mr
	// A is read where it lies (its rows or, transposed, its columns are the
	// kernel's strided operand: measured here as fast as packed for every
	// LeNet shape and for square sizes up to 1024 untransposed), except
	// transposed A shared by many column panels, where each k step of each
	// pass would touch a new cache line, and for the Go kernel.
	var (
		as             []T
		rsa, csa, ats  int
		edge           []T
		panels         = (nc + nr - 1) / nr
		packWholeBlock = kr.packed || (p.tA && panels > 16)
	)
	switch {
	case packWholeBlock:
		as = grow(&w.a, roundUp(mc, mr)*kc)
		packA(as, a, p.lda, p.tA, ic, mc, pc, kc, mr)
		rsa, csa, ats = 1, mr, mr*kc
		edge = as[full*mr*kc:]
	case p.tA: // A(i, p) = a[p·lda + i]
		as = a[pc*p.lda+ic:]
		rsa, csa, ats = 1, p.lda, mr
	default: // A(i, p) = a[i·lda + p]
		as = a[ic*p.lda+pc:]
		rsa, csa, ats = p.lda, 1, mr*p.lda
	}
	if rem > 0 && !packWholeBlock {
		edge = grow(&w.edge, mr*kc)
		packA(edge, a, p.lda, p.tA, ic+full*mr, rem, pc, kc, mr)
	}
	for jr := 0; jr < nc; jr += nr {
		ncr := min(nr, nc-jr)
		b, rsb, strip := bp[jr*kc:], nr, kr.strip
		if bInPlace {
			b, rsb = bp[jr:], p.ldb
			if ncr < nr {
				strip = kr.stripMasked
			}
		}
		if full > 0 {
			strip(kc, full, as, rsa, csa, ats, b, rsb, c[ic*ldc+jc+jr:], ldc, p.alpha, beta, ncr)
		}
		if rem > 0 {
			// The last rows: a whole tile into a scratch tile, then the
			// rows that exist into C.
			tile := grow(&w.tile, mr*nr)
			strip(kc, 1, edge, 1, mr, mr*kc, b, rsb, tile, nr, 1, 0, ncr)
			cr := c[(ic+full*mr)*ldc+jc+jr:]
			for i := 0; i < rem; i++ {
				row := cr[i*ldc : i*ldc+ncr]
				t := tile[i*nr : i*nr+ncr]
				for j, v := range t {
					v *= p.alpha
					if beta != 0 {
						v += beta * row[j]
					}
					row[j] = v
				}
			}
		}
	}
}
