package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Reductions evaluate their (possibly fused) operand block by block, like an
// evalStep, and fold each block into the output. The output is an accessor
// over the operand's axes with stride 0 on the reduced ones.
//
// Parallel tasks split the outermost axis of the nest. When that axis is
// kept, tasks write disjoint outputs. When it is reduced, task 0 folds into
// the output and task t > 0 into a partial output of its own, and the
// partials are folded into the output in task order afterwards. The number of
// tasks depends on the shapes alone, so the order of every floating-point
// operation, and hence the result, is the same whatever the number of
// workers.

// reduceStep folds a fused expression over some axes.
type reduceStep struct {
	*prog
	op      backends.OpType
	out     *storage
	partial *storage // (tasks-1)·out.size values when the tasks split a reduced axis, else nil
	tasks   int
	fold    foldFn
	fill    func(p unsafe.Pointer, n int)
}

// foldFn folds a block v (rows×cols values, row-major) into out at offset ob
// with the output strides of the block's rows and columns.
type foldFn func(out unsafe.Pointer, outSize, ob, ors, ocs int, v unsafe.Pointer, rows, cols int)

// maxPartial bounds the values of a reduction's partial outputs.
const maxPartial = 1 << 22

func (c *compiler) reduce(n *node, v *value) *value {
	out, st := c.newDense(n.shape)
	dims := v.dims()
	// The output as seen over the operand's axes.
	outStrides := out.e.leaf.strides
	reduced := map[int]bool{}
	for _, a := range n.ints {
		reduced[a] = true
	}
	ov := view{st: st, strides: make([]int, len(dims))}
	j := 0
	for a := range dims {
		if !reduced[a] {
			ov.strides[a] = outStrides[j]
			j++
		}
	}
	views := leavesOf(v.e, []view{ov})
	nt := newNest(dims, views, 1)
	p := newProg(v.e, nt, 1)
	s := &reduceStep{prog: p, op: n.op, out: st}
	s.fold, s.fill = foldFor(n.op, n.shape.DType)
	if s.fold == nil {
		panic(fmt.Errorf("no %s for %s", n.op, n.shape.DType))
	}
	g, _ := p.groups()
	s.tasks = min(g, splitTasks(p.work, 1<<15))
	if p.accs[0].strides[0] == 0 && s.tasks > 1 {
		s.tasks = max(1, min(s.tasks, maxPartial/max(1, st.size)))
		if s.tasks > 1 {
			s.partial = c.newStorage(inArena, n.shape.DType, (s.tasks-1)*st.size, -1)
		}
	}
	c.steps = append(c.steps, s)
	return out
}

func (s *reduceStep) storages(f func(*storage)) {
	for i := range s.accs {
		f(s.accs[i].st)
	}
	if s.partial != nil {
		f(s.partial)
	}
}

func (s *reduceStep) scratch() int { return s.nregs }

func (s *reduceStep) run(st *state, w int) {
	out := st.ptr[s.out.id]
	s.fill(out, s.out.size)
	st.pool.run(st, w, s.tasks, s)
	if s.partial != nil {
		foldPartials(st, s.fold, out, s.partial, s.out.size, s.tasks)
	}
}

// partialAt is the partial output of task t ≥ 1 in partial, whose tasks
// 1…tasks-1 each have size values.
func partialAt(st *state, partial *storage, t, size int) unsafe.Pointer {
	return unsafe.Add(st.ptr[partial.id], (t-1)*size*partial.dtype.Size())
}

// foldPartials folds the partial outputs of tasks 1…tasks-1 into out (size
// values), in task order, each as one block of values, element by element.
func foldPartials(st *state, fold foldFn, out unsafe.Pointer, partial *storage, size, tasks int) {
	for t := 1; t < tasks; t++ {
		fold(out, size, 0, size, 1, partialAt(st, partial, t, size), 1, size)
	}
}

func (s *reduceStep) task(st *state, t, w int) {
	c := ctx{st: st, regs: st.regs(w), offs: st.offs(w, len(s.accs))}
	s.fillInvariants(&c)
	out := st.ptr[s.out.id]
	if s.partial != nil && t > 0 {
		out = partialAt(st, s.partial, t, s.out.size)
		s.fill(out, s.out.size)
	}
	oa := &s.accs[0]
	ors, ocs := s.rowStride(oa), s.colStride(oa)
	u0, u1 := s.taskUnits(t, s.tasks, true)
	for u := u0; u < u1; u++ {
		c.rows, c.cols = s.at(u, s.accs, c.offs)
		s.gather(&c)
		v := s.eval(s.root, &c, nil)
		s.fold(out, s.out.size, c.offs[0], ors, ocs, v, c.rows, c.cols)
	}
}

// foldFor returns the folding function and the identity fill of a reduction.
func foldFor(op backends.OpType, dt dtypes.DType) (foldFn, func(unsafe.Pointer, int)) {
	switch dt {
	case dtypes.Float32:
		return foldNum[float32](op, float32(math.Inf(1)))
	case dtypes.Float64:
		return foldNum[float64](op, math.Inf(1))
	case dtypes.Int32:
		return foldNum[int32](op, math.MaxInt32)
	case dtypes.Int64:
		return foldNum[int64](op, math.MaxInt64)
	case dtypes.Uint8:
		return foldNum[uint8](op, math.MaxUint8)
	case dtypes.Bool:
		switch op {
		case backends.OpTypeReduceLogicalAnd:
			return foldBool(true), fillWith(true)
		case backends.OpTypeReduceLogicalOr:
			return foldBool(false), fillWith(false)
		}
	}
	return nil, nil
}

func reduceSupported(op backends.OpType, dt dtypes.DType) bool {
	f, _ := foldFor(op, dt)
	return f != nil
}

func fillWith[T any](v T) func(unsafe.Pointer, int) {
	return func(p unsafe.Pointer, n int) {
		s := sl[T](p, n)
		for i := range s {
			s[i] = v
		}
	}
}

// foldNum returns the fold and identity of a numeric reduction; top is the
// largest value of T (+Inf for floats).
func foldNum[T numT](op backends.OpType, top T) (foldFn, func(unsafe.Pointer, int)) {
	switch op {
	case backends.OpTypeReduceSum:
		switch any(top).(type) {
		case float32:
			return foldSumFloat(sumF32, addF32), fillWith(T(0))
		case float64:
			return foldSumFloat(sumF64, addF64), fillWith(T(0))
		}
		return foldSum[T], fillWith(T(0))
	case backends.OpTypeReduceProduct:
		return foldWith(func(a, b T) T { return a * b }), fillWith(T(1))
	case backends.OpTypeReduceMax:
		var bottom T
		if isFloat(top) {
			bottom = -top
		} else {
			bottom = minOf(top)
		}
		return foldWith(func(a, b T) T { return max(a, b) }), fillWith(bottom)
	case backends.OpTypeReduceMin:
		return foldWith(func(a, b T) T { return min(a, b) }), fillWith(top)
	}
	return nil, nil
}

// isFloat reports whether T is a float type (its largest value is +Inf).
func isFloat[T numT](top T) bool { return math.IsInf(float64(top), 1) }

// minOf is the smallest value of the integer type whose largest value is top.
func minOf[T numT](top T) T {
	var z T
	if top+1 > z { // unsigned: top+1 wraps to 0
		return 0
	}
	return top + 1 // two's complement: max+1 = min
}

// foldSum adds a block into the output.
func foldSum[T numT](outP unsafe.Pointer, outSize, ob, ors, ocs int, vP unsafe.Pointer, rows, cols int) {
	out := sl[T](outP, outSize)
	v := sl[T](vP, rows*cols)
	switch {
	case ors == 0 && ocs == 0:
		var s T
		for _, x := range v {
			s += x
		}
		out[ob] += s
	case ors == 0 && ocs == 1:
		o := out[ob : ob+cols]
		for r := range rows {
			row := v[r*cols : r*cols+cols]
			for i := range o {
				o[i] += row[i]
			}
		}
	case ocs == 0:
		for r := range rows {
			var s T
			for _, x := range v[r*cols : r*cols+cols] {
				s += x
			}
			out[ob+r*ors] += s
		}
	default:
		for r := range rows {
			o := ob + r*ors
			for _, x := range v[r*cols : r*cols+cols] {
				out[o] += x
				o += ocs
			}
		}
	}
}

// foldSumFloat is foldSum with the block sums and row additions of vec.go.
func foldSumFloat[T floatT](sum func([]T) T, add func(dst, x, y []T)) foldFn {
	return func(outP unsafe.Pointer, outSize, ob, ors, ocs int, vP unsafe.Pointer, rows, cols int) {
		out := sl[T](outP, outSize)
		v := sl[T](vP, rows*cols)
		switch {
		case ors == 0 && ocs == 0:
			out[ob] += sum(v)
		case ors == 0 && ocs == 1 && cols >= 32:
			o := out[ob : ob+cols]
			for r := range rows {
				add(o, o, v[r*cols:r*cols+cols])
			}
		case ocs == 0 && cols >= 32:
			for r := range rows {
				out[ob+r*ors] += sum(v[r*cols : r*cols+cols])
			}
		default: // short rows: the plain loops
			foldSum[T](outP, outSize, ob, ors, ocs, vP, rows, cols)
		}
	}
}

// foldWith folds with a binary function (max, min, product).
func foldWith[T any](f func(a, b T) T) foldFn {
	return func(outP unsafe.Pointer, outSize, ob, ors, ocs int, vP unsafe.Pointer, rows, cols int) {
		out := sl[T](outP, outSize)
		v := sl[T](vP, rows*cols)
		for r := range rows {
			o := ob + r*ors
			for _, x := range v[r*cols : r*cols+cols] {
				out[o] = f(out[o], x)
				o += ocs
			}
		}
	}
}

func foldBool(and bool) foldFn {
	if and {
		return foldWith(func(a, b bool) bool { return a && b })
	}
	return foldWith(func(a, b bool) bool { return a || b })
}

// argStep is ArgMinMax over one axis of a dense operand.
type argStep struct {
	in, out            *storage
	prefix, n, suffix  int
	isMin              bool
	inDType, outDType  dtypes.DType
	tasks, rowsPerTask int
}

func (c *compiler) argMinMax(n *node, v *value) *value {
	v = c.materialize(v)
	axis := n.ints[0]
	dims := v.dims()
	out, st := c.newDense(n.shape)
	s := &argStep{in: v.e.leaf.st, out: st, prefix: product(dims[:axis]), n: dims[axis], suffix: product(dims[axis+1:]),
		isMin: n.flag, inDType: v.shape.DType, outDType: n.shape.DType}
	s.tasks = min(s.prefix, splitTasks(v.shape.Size(), 1<<15))
	c.steps = append(c.steps, s)
	return out
}

func (s *argStep) storages(f func(*storage)) { f(s.in); f(s.out) }
func (s *argStep) scratch() int              { return 0 }
func (s *argStep) run(st *state, w int)      { st.pool.run(st, w, s.tasks, s) }

func (s *argStep) task(st *state, t, _ int) {
	p0, p1 := t*s.prefix/s.tasks, (t+1)*s.prefix/s.tasks
	in, out := st.ptr[s.in.id], st.ptr[s.out.id]
	switch s.inDType {
	case dtypes.Float32:
		argRange[float32](s, in, out, p0, p1)
	case dtypes.Float64:
		argRange[float64](s, in, out, p0, p1)
	case dtypes.Int32:
		argRange[int32](s, in, out, p0, p1)
	case dtypes.Int64:
		argRange[int64](s, in, out, p0, p1)
	case dtypes.Uint8:
		argRange[uint8](s, in, out, p0, p1)
	default:
		panic(fmt.Errorf("ArgMinMax of %s", s.inDType))
	}
}

// argRange computes the arg-extremes for prefixes [p0, p1): the first
// extreme, a NaN counting as more extreme than any number (the first NaN
// wins).
func argRange[T numT](s *argStep, inP, outP unsafe.Pointer, p0, p1 int) {
	in := sl[T](inP, s.in.size)
	for p := p0; p < p1; p++ {
		for q := range s.suffix {
			base := p*s.n*s.suffix + q
			best, arg := in[base], 0
			if best == best { // not NaN
				for i := 1; i < s.n; i++ {
					x := in[base+i*s.suffix]
					if x != x {
						best, arg = x, i
						break
					}
					if (s.isMin && x < best) || (!s.isMin && x > best) {
						best, arg = x, i
					}
				}
			}
			o := p*s.suffix + q
			switch s.outDType {
			case dtypes.Int32:
				sl[int32](outP, s.out.size)[o] = int32(arg)
			case dtypes.Int64:
				sl[int64](outP, s.out.size)[o] = int64(arg)
			case dtypes.Uint8:
				sl[uint8](outP, s.out.size)[o] = uint8(arg)
			default:
				panic(fmt.Errorf("ArgMinMax into %s", s.outDType))
			}
		}
	}
}
