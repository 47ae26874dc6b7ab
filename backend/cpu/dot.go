package cpu

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"gonum.org/v1/gonum/blas"
)

// DotGeneral as GEMM calls. Each operand is viewed, per batch index, as a
// matrix: its cross axes (lhs: rows M, rhs: columns N) and contracting axes
// (K) must each merge into one strided axis, one of the two with unit stride;
// which one it is becomes the GEMM's transposition flag and the other stride
// its leading dimension. A transposed weight, a transposed activation or the
// adjoint's Aᵀ·B thus cost no copy. Only an operand whose axes do not merge
// (or a fused expression) is copied, once, into the layout closest to its
// current one.

type dotStep struct {
	dtype         dtypes.DType
	lhs, rhs, out *storage
	tA, tB        blas.Transpose
	m, n, k       int
	lda, ldb      int
	aOffs, bOffs  []int // per batch index
	tasks         int
	split         int      // what tasks split: splitBatch, splitRows, splitCols or splitK
	partial       *storage // splitK: (tasks-1)·m·n values
	fold          foldFn   // with partial: adds a partial product into the output

	// A patch operand built tile by tile (fuse.go): as op(A)'s rows or op(B)'s
	// k rows, tileHeads head indices of im2col at a time.
	im2col    *concatStep
	im2colA   bool
	tileHeads int
}

// How a product's tasks divide it. The division depends on the shapes only,
// and each task calls the GEMM on one goroutine, so results never depend on
// the number of threads (a GEMM that split k by thread count would).
const (
	splitBatch = iota
	splitRows
	splitCols
	splitK
)

// Task sizing of products: at least dotGrain multiply-adds per task, row and
// column blocks of at least dotMinBlock, k blocks of at least dotMinK.
const (
	dotGrain    = 1 << 19
	dotMinBlock = 48
	dotMinK     = 512
	dotMaxTasks = 16
)

// plan chooses how the product's tasks divide it.
func (s *dotStep) plan(c *compiler) {
	batch := len(s.aOffs)
	work := batch * s.m * s.n * max(s.k, 1)
	most := min(dotMaxTasks, max(1, work/dotGrain))
	s.tasks = 1
	switch {
	case batch > 1:
		s.split, s.tasks = splitBatch, min(batch, most)
	case s.m >= 2*dotMinBlock:
		s.split, s.tasks = splitRows, min(s.m/dotMinBlock, most)
	case s.n >= 2*dotMinBlock:
		s.split, s.tasks = splitCols, min(s.n/dotMinBlock, most)
	case s.k >= 2*dotMinK:
		s.split, s.tasks = splitK, min(s.k/dotMinK, most, max(1, maxPartial/max(1, s.m*s.n)))
		if s.tasks > 1 {
			s.newPartial(c)
		}
	}
}

// newPartial gives the product's tasks 1…tasks-1 partial outputs of their
// own, summed into the output after them.
func (s *dotStep) newPartial(c *compiler) {
	s.partial = c.newStorage(inArena, s.dtype, (s.tasks-1)*s.m*s.n, -1)
	s.fold, _ = foldFor(backends.OpTypeReduceSum, s.dtype)
}

// any marks a merged axis group of size ≤ 1, whose stride does not matter.
const anyStride = -1

// mergeAxes merges axes (in the given order) of a view of dims into one axis:
// its size and stride, anyStride when the size is at most 1, ok false when the
// axes are not contiguous in that order.
func mergeAxes(v view, dims, axes []int) (size, stride int, ok bool) {
	size, stride = 1, anyStride
	for i := len(axes) - 1; i >= 0; i-- {
		a := axes[i]
		d := dims[a]
		if d == 1 {
			continue
		}
		switch {
		case stride == anyStride:
			stride = v.strides[a]
		case v.strides[a] != stride*size:
			return 0, 0, false
		}
		size *= d
	}
	if size == 0 {
		stride = anyStride
	}
	if size > 1 && stride == anyStride {
		stride = v.strides[axes[len(axes)-1]]
	}
	return size, stride, true
}

// asMatrix returns how a view is read as a rows×cols matrix whose rows and
// columns are the given axis groups: transposed (stored cols×rows) or not,
// and the leading dimension.
func asMatrix(v view, dims, rowAxes, colAxes []int) (trans bool, ld int, ok bool) {
	rows, rs, ok1 := mergeAxes(v, dims, rowAxes)
	cols, cs, ok2 := mergeAxes(v, dims, colAxes)
	if !ok1 || !ok2 {
		return false, 0, false
	}
	if cs == 1 || cs == anyStride {
		ld = rs
		if ld == anyStride {
			ld = max(1, cols)
		}
		if ld >= max(1, cols) {
			return false, ld, true
		}
	}
	if rs == 1 || rs == anyStride {
		ld = cs
		if ld == anyStride {
			ld = max(1, rows)
		}
		if ld >= max(1, rows) {
			return true, ld, true
		}
	}
	return false, 0, false
}

// otherAxes lists, ascending, the axes of a rank-r operand in neither list.
func otherAxes(r int, a, b []int) []int {
	var out []int
	for i := range r {
		if !slices.Contains(a, i) && !slices.Contains(b, i) {
			out = append(out, i)
		}
	}
	return out
}

// batchOffsets lists the operand's offset for each batch index.
func batchOffsets(v view, dims, axes []int) []int {
	bd := pick(dims, axes)
	offs := make([]int, product(bd))
	for b := range offs {
		o, rem := v.off, b
		for i := len(axes) - 1; i >= 0; i-- {
			o += rem % bd[i] * v.strides[axes[i]]
			rem /= bd[i]
		}
		offs[b] = o
	}
	return offs
}

// smallestStrideIn reports whether, among the axes of a view, the one with
// the smallest nonzero |stride| is in set.
func smallestStrideIn(v view, dims []int, axes, set []int) bool {
	best, bestAxis := -1, -1
	for _, a := range axes {
		if dims[a] == 1 || v.strides[a] == 0 {
			continue
		}
		if s := abs(v.strides[a]); best < 0 || s < best {
			best, bestAxis = s, a
		}
	}
	return slices.Contains(set, bestAxis)
}

// operand returns v as a leaf readable as a rows×cols matrix per batch index,
// copying it into the layout batch, rows, cols (or batch, cols, rows when
// preferTrans) if needed.
func (c *compiler) matrixOperand(v *value, batch, rowAxes, colAxes []int, preferTrans bool) (*value, bool, int) {
	if v.e.isLeaf() {
		if trans, ld, ok := asMatrix(*v.e.leaf, v.dims(), rowAxes, colAxes); ok {
			return v, trans, ld
		}
		preferTrans = smallestStrideIn(*v.e.leaf, v.dims(), append(slices.Clone(rowAxes), colAxes...), rowAxes)
	}
	order := slices.Concat(batch, rowAxes, colAxes)
	if preferTrans {
		order = slices.Concat(batch, colAxes, rowAxes)
	}
	v = c.materializeLayout(v, order)
	trans, ld, ok := asMatrix(*v.e.leaf, v.dims(), rowAxes, colAxes)
	if !ok {
		panic(fmt.Errorf("DotGeneral operand %s: no matrix layout after copy", v.shape))
	}
	return v, trans, ld
}

func (c *compiler) dotGeneral(n *node, l, r *value) *value {
	ax := n.dot
	lCross := otherAxes(l.shape.Rank(), ax.lhsContract, ax.lhsBatch)
	rCross := otherAxes(r.shape.Rank(), ax.rhsContract, ax.rhsBatch)
	// lhs is M×K; rhs is K×N.
	l, tA, lda := c.matrixOperand(l, ax.lhsBatch, lCross, ax.lhsContract, false)
	r, tB, ldb := c.matrixOperand(r, ax.rhsBatch, ax.rhsContract, rCross, false)
	out, st := c.newDense(n.shape)
	lv, rv := *l.e.leaf, *r.e.leaf
	s := &dotStep{dtype: n.shape.DType, lhs: lv.st, rhs: rv.st, out: st, lda: lda, ldb: ldb,
		m: product(pick(l.dims(), lCross)), n: product(pick(r.dims(), rCross)), k: product(pick(l.dims(), ax.lhsContract)),
		aOffs: batchOffsets(lv, l.dims(), ax.lhsBatch), bOffs: batchOffsets(rv, r.dims(), ax.rhsBatch)}
	s.tA, s.tB = blas.NoTrans, blas.NoTrans
	if tA {
		s.tA = blas.Trans
	}
	if tB {
		s.tB = blas.Trans
	}
	if c.transposedDot[n.id] {
		// Every consumer reads the product transposed: compute Cᵀ = op(B)ᵀ·op(A)ᵀ
		// into the layout [batch, rhs cross, lhs cross].
		flip := map[blas.Transpose]blas.Transpose{blas.NoTrans: blas.Trans, blas.Trans: blas.NoTrans}
		s.lhs, s.rhs, s.lda, s.ldb, s.aOffs, s.bOffs = s.rhs, s.lhs, s.ldb, s.lda, s.bOffs, s.aOffs
		s.tA, s.tB = flip[s.tB], flip[s.tA]
		s.m, s.n = s.n, s.m
		nb, nl := len(ax.lhsBatch), len(lCross)
		order := slices.Concat(seq(0, nb), seq(nb+nl, len(rCross)), seq(nb, nl))
		out = &value{shape: n.shape, e: leafNode(view{st, 0, layoutStrides(n.shape.Dimensions, order)}, n.shape.DType)}
	}
	s.plan(c)
	c.steps = append(c.steps, s)
	return out
}

// seq returns start, start+1, …, start+n-1.
func seq(start, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = start + i
	}
	return s
}

// transposedProducts marks the DotGeneral nodes whose every consumer is a
// transposition swapping the lhs and rhs cross axes (the adjoints of
// products often are): those are computed transposed, so that their readers
// find them in row-major order.
func transposedProducts(nodes []*node, live []bool, outs []*node) map[int]bool {
	consumers := map[int][]*node{}
	for _, n := range nodes {
		if n == nil || !live[n.id] {
			continue
		}
		for _, in := range n.inputs {
			consumers[in.id] = append(consumers[in.id], n)
		}
	}
	isOut := map[int]bool{}
	for _, o := range outs {
		isOut[o.id] = true
	}
	marked := map[int]bool{}
	for _, n := range nodes {
		if n == nil || !live[n.id] || n.op != backends.OpTypeDotGeneral || isOut[n.id] || len(consumers[n.id]) == 0 {
			continue
		}
		ax := n.dot
		nb := len(ax.lhsBatch)
		nl := n.inputs[0].shape.Rank() - nb - len(ax.lhsContract)
		nr := n.shape.Rank() - nb - nl
		want := slices.Concat(seq(0, nb), seq(nb+nl, nr), seq(nb, nl))
		ok := nl > 0 && nr > 0
		for _, cn := range consumers[n.id] {
			if cn.op != backends.OpTypeTranspose || !slices.Equal(cn.ints, want) {
				ok = false
			}
		}
		marked[n.id] = ok
	}
	return marked
}

func pick(dims, axes []int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		out[i] = dims[a]
	}
	return out
}

func (s *dotStep) storages(f func(*storage)) {
	if s.im2col != nil {
		s.fusedStorages(f)
		return
	}
	f(s.lhs)
	f(s.rhs)
	f(s.out)
	if s.partial != nil {
		f(s.partial)
	}
}

func (s *dotStep) scratch() int { return 0 }

func (s *dotStep) run(st *state, w int) {
	if s.m == 0 || s.n == 0 {
		return
	}
	st.pool.run(st, w, s.tasks, s)
	if s.partial != nil {
		foldPartials(st, s.fold, st.ptr[s.out.id], s.partial, s.m*s.n, s.tasks)
	}
}

func (s *dotStep) task(st *state, t, w int) {
	switch {
	case s.im2col != nil && s.dtype == dtypes.Float32:
		fusedTask(s, st, t, w, sgemm)
	case s.im2col != nil:
		fusedTask(s, st, t, w, dgemm)
	case s.dtype == dtypes.Float32:
		dotTask(s, st, t, sgemm)
	default:
		dotTask(s, st, t, dgemm)
	}
}

// gemmFn is Sgemm or Dgemm.
type gemmFn[T float32 | float64] func(tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)

// dotTask computes task t's part of the product.
func dotTask[T float32 | float64](s *dotStep, st *state, t int, gemm gemmFn[T]) {
	a, b, c := sl[T](st.ptr[s.lhs.id], s.lhs.size), sl[T](st.ptr[s.rhs.id], s.rhs.size), sl[T](st.ptr[s.out.id], s.out.size)
	mn := s.m * s.n
	// Offsets of element (i, j) of op(A) and op(B) from a matrix's start.
	at := func(trans blas.Transpose, ld, i, j int) int {
		if trans == blas.Trans {
			return j*ld + i
		}
		return i*ld + j
	}
	switch s.split {
	case splitBatch:
		batch := len(s.aOffs)
		for i := t * batch / s.tasks; i < (t+1)*batch/s.tasks; i++ {
			gemm(s.tA, s.tB, s.m, s.n, s.k, 1, a[s.aOffs[i]:], s.lda, b[s.bOffs[i]:], s.ldb, 0, c[i*mn:], s.n)
		}
	case splitRows:
		r0, r1 := t*s.m/s.tasks, (t+1)*s.m/s.tasks
		gemm(s.tA, s.tB, r1-r0, s.n, s.k, 1, a[s.aOffs[0]+at(s.tA, s.lda, r0, 0):], s.lda, b[s.bOffs[0]:], s.ldb, 0, c[r0*s.n:], s.n)
	case splitCols:
		c0, c1 := t*s.n/s.tasks, (t+1)*s.n/s.tasks
		gemm(s.tA, s.tB, s.m, c1-c0, s.k, 1, a[s.aOffs[0]:], s.lda, b[s.bOffs[0]+at(s.tB, s.ldb, 0, c0):], s.ldb, 0, c[c0:], s.n)
	case splitK:
		k0, k1 := t*s.k/s.tasks, (t+1)*s.k/s.tasks
		dst := c
		if t > 0 {
			dst = sl[T](partialAt(st, s.partial, t, mn), mn)
		}
		gemm(s.tA, s.tB, s.m, s.n, k1-k0, 1, a[s.aOffs[0]+at(s.tA, s.lda, 0, k0):], s.lda, b[s.bOffs[0]+at(s.tB, s.ldb, k0, 0):], s.ldb, 0, dst, s.n)
	}
}
