package cpu

import (
	"gonum.org/v1/gonum/blas"
)

// Fusing im2col into the products that read it.
//
// A convolution's patch matrix (the one-pass concatenation of concat.go) is
// kh·kw times larger than the layer's input: LeNet's conv1 writes 21 MB of
// patches at batch 256, and reading them back doubles the traffic. When
// every reader of a large patch matrix is a matrix product that takes it
// either as the rows of op(A) (the convolution) or as the rows of op(B)
// along k (the weight gradient, dYᵀ·P), the matrix is never stored: each
// task of each product builds a few thousand rows of patches at a time in a
// per-worker tile that stays in the L2 cache and multiplies them at once.
// The weight gradient then sums its tiles in a fixed order (the first with
// β = 0, the next with β = 1, per task, then the tasks' partial products in
// task order), so results still do not depend on the number of workers.

// fuseWeightGradients also fuses im2col into weight gradients. Measured on
// LeNet's training step it lost: the patches are then built twice (for the
// convolution and for its gradient) and the gradient's tiles, each a short
// product of many rows, run the GEMM far below its speed on the whole. So a
// patch matrix is fused only when all its readers are convolutions (forward
// passes, evaluation).
const fuseWeightGradients = false

// Fusion applies to patch matrices of at least fuseMinValues values, in
// tiles of about tileValues values.
const (
	fuseMinValues = 1 << 20
	tileValues    = 1 << 16
)

// fuseIm2col removes from steps the large concatenations that only products
// read, and gives those products the concatenation to run tile by tile. It
// returns the remaining steps and the tile size in bytes that a worker needs.
func (c *compiler) fuseIm2col(steps []step) ([]step, int) {
	if c.noFuse {
		return steps, 0
	}
	readers := map[*storage][]int{}
	for i, s := range steps {
		seen := map[*storage]bool{}
		s.storages(func(st *storage) {
			if !seen[st] {
				seen[st] = true
				readers[st] = append(readers[st], i)
			}
		})
	}
	removed := map[int]bool{}
	tile := 0
	for i, s := range steps {
		cs, ok := s.(*concatStep)
		if !ok || cs.out.kind != inArena || cs.out.size < fuseMinValues || cs.esize != 4 && cs.esize != 8 {
			continue
		}
		var dots []*dotStep
		var asA []bool
		for _, j := range readers[cs.out] {
			if j == i {
				continue
			}
			d, ok := steps[j].(*dotStep)
			if !ok || j < i || d.im2col != nil {
				dots = nil
				break
			}
			a, ok := d.im2colRole(cs)
			if !ok || !a && !fuseWeightGradients {
				dots = nil
				break
			}
			dots, asA = append(dots, d), append(asA, a)
		}
		if len(dots) == 0 {
			continue
		}
		removed[i] = true
		for k, d := range dots {
			d.fuse(c, cs, asA[k])
			tile = max(tile, d.tileHeads*cs.headRows()*cs.block*cs.esize)
		}
	}
	out := steps[:0:0]
	for i, s := range steps {
		if !removed[i] {
			out = append(out, s)
		}
	}
	return out, tile
}

// im2colRole reports whether the product reads the patches cs writes as the
// rows of op(A) (true) or as the k rows of op(B) (false), in row-major order
// and whole; ok is false for any other use.
func (s *dotStep) im2colRole(cs *concatStep) (asA, ok bool) {
	rows := product(cs.outer)
	if len(s.aOffs) != 1 || s.lhs == s.rhs {
		return false, false
	}
	if s.lhs == cs.out && s.tA == blas.NoTrans && s.lda == cs.block && s.aOffs[0] == 0 && s.m == rows && s.k == cs.block {
		return true, true
	}
	if s.rhs == cs.out && s.tB == blas.NoTrans && s.ldb == cs.block && s.bOffs[0] == 0 && s.k == rows && s.n == cs.block {
		return false, true
	}
	return false, false
}

// fuse makes the product build its patch operand with cs, tile by tile, and
// plans its tasks over cs's head indices.
func (s *dotStep) fuse(c *compiler, cs *concatStep, asA bool) {
	s.im2col, s.im2colA = cs, asA
	heads := cs.heads()
	s.tileHeads = max(1, tileValues/(cs.headRows()*cs.block))
	work := s.m * s.n * max(s.k, 1)
	s.tasks = max(1, min(heads, dotMaxTasks, max(1, work/dotGrain)))
	s.partial = nil
	if !asA && s.tasks > 1 {
		s.tasks = min(s.tasks, max(1, maxPartial/max(1, s.m*s.n)))
		if s.tasks > 1 {
			s.newPartial(c)
		}
	}
}

// fusedTask is task t of a product whose patch operand is built in tiles.
func fusedTask[T float32 | float64](s *dotStep, st *state, t, w int, gemm gemmFn[T]) {
	cs := s.im2col
	heads, hr, blk := cs.heads(), cs.headRows(), cs.block
	h0, h1 := t*heads/s.tasks, (t+1)*heads/s.tasks
	tile := st.tile(w)
	tileT := sl[T](tile, s.tileHeads*hr*blk)
	c := sl[T](st.ptr[s.out.id], s.out.size)
	mn := s.m * s.n
	if s.im2colA {
		b := sl[T](st.ptr[s.rhs.id], s.rhs.size)
		for hs := h0; hs < h1; hs += s.tileHeads {
			he := min(hs+s.tileHeads, h1)
			cs.rangeInto(st, w, hs, he, tile)
			gemm(blas.NoTrans, s.tB, (he-hs)*hr, s.n, s.k, 1, tileT, blk, b[s.bOffs[0]:], s.ldb, 0, c[hs*hr*s.n:], s.n)
		}
		return
	}
	a := sl[T](st.ptr[s.lhs.id], s.lhs.size)
	dst := c
	if t > 0 {
		dst = sl[T](partialAt(st, s.partial, t, mn), mn)
	}
	for hs := h0; hs < h1; hs += s.tileHeads {
		he := min(hs+s.tileHeads, h1)
		cs.rangeInto(st, w, hs, he, tile)
		beta := T(1)
		if hs == h0 {
			beta = 0
		}
		k0 := hs * hr
		off := s.aOffs[0] + k0 // op(A) column k0: A stored k×m (Trans) or m×k
		if s.tA == blas.Trans {
			off = s.aOffs[0] + k0*s.lda
		}
		gemm(s.tA, blas.NoTrans, s.m, s.n, (he-hs)*hr, 1, a[off:], s.lda, tileT, blk, beta, dst, s.n)
	}
}

// fusedStorages reports the storages a fused product touches.
func (s *dotStep) fusedStorages(f func(*storage)) {
	for i := range s.im2col.parts {
		f(s.im2col.parts[i].st)
	}
	if s.im2colA {
		f(s.rhs)
	} else {
		f(s.lhs)
	}
	f(s.out)
	if s.partial != nil {
		f(s.partial)
	}
}
