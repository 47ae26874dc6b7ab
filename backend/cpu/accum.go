package cpu

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// accumStep materialises a sum of overlapping terms that are all views of
// one storage with the same strides and box dimensions, differing only in
// their offsets and box positions: the adjoint of an im2col (col2im), where
// term k is the patch matrix's column block k shifted by its window offset.
// One pass per task: zero the task's part of the output, then for each index
// of the box's leading axes add every term's trailing 2-D block in term
// order. Tasks split the first axis, which no term shifts, so they write
// disjoint outputs and the order of additions is fixed.
type accumStep struct {
	dtype    dtypes.DType
	out      *storage
	src      *storage
	dims     []int // box dimensions (all terms)
	outDims  []int
	srcStr   []int // strides of the terms' views
	outStr   []int // dense strides of the output
	srcOffs  []int // per term: view offset
	dstOffs  []int // per term: offset of its box in the output
	tasks    int
	rowsAxis int // the first of the two block axes
}

// newAccumStep returns the step for terms of the shared form, or nil.
func newAccumStep(v *value, dst view) *accumStep {
	if !dst.isDense(v.dims()) || len(v.terms) < 2 || v.shape.Rank() < 3 {
		return nil
	}
	t0 := v.terms[0]
	if t0.v.fused() {
		return nil
	}
	s := &accumStep{dtype: v.shape.DType, out: dst.st, src: t0.v.e.leaf.st, dims: t0.v.dims(), outDims: v.dims(),
		srcStr: t0.v.e.leaf.strides, outStr: dst.strides}
	if s.dims[0] != s.outDims[0] {
		return nil
	}
	for _, t := range v.terms {
		if t.v.fused() || t.v.e.leaf.st != s.src || !slices.Equal(t.v.e.leaf.strides, s.srcStr) ||
			!slices.Equal(t.v.dims(), s.dims) || t.lo[0] != 0 {
			return nil
		}
		d := 0
		for a, l := range t.lo {
			d += l * s.outStr[a]
		}
		s.srcOffs = append(s.srcOffs, t.v.e.leaf.off)
		s.dstOffs = append(s.dstOffs, d)
	}
	s.mergeRuns()
	r := len(s.dims)
	s.rowsAxis = r - 2
	s.tasks = min(s.dims[0], splitTasks(v.shape.Size()*len(v.terms), 1<<16))
	// Every block must lie inside the source.
	for _, o := range s.srcOffs {
		lo, hi := o, o+1
		for a, d := range s.dims {
			if e := (d - 1) * s.srcStr[a]; e < 0 {
				lo += e
			} else {
				hi += e
			}
		}
		if lo < 0 || hi > s.src.size {
			return nil
		}
	}
	return s
}

// mergeRuns joins runs of terms whose source and output offsets advance by
// the same steps (the windows kj = 0…kw-1 of a col2im row: C channels apart
// in the patch row and in the image row) into one term with a longer last
// axis, when the steps continue that axis in both layouts: C-value runs
// become kw·C-value runs. Within a merged term, outputs overlap; they are
// still added in a fixed order.
func (s *accumStep) mergeRuns() {
	r := len(s.dims)
	last := r - 1
	n := len(s.srcOffs)
	if n < 2 {
		return
	}
	ds, dd := s.srcStr[last]*s.dims[last], s.outStr[last]*s.dims[last]
	// Terms in source order (the graph often sums them last first).
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return s.srcOffs[a] - s.srcOffs[b] })
	so0, do0 := make([]int, n), make([]int, n)
	for i, o := range order {
		so0[i], do0[i] = s.srcOffs[o], s.dstOffs[o]
	}
	s.srcOffs, s.dstOffs = so0, do0
	// The run length g: the first break in the steps.
	g := 1
	for g < n && s.srcOffs[g]-s.srcOffs[g-1] == ds && s.dstOffs[g]-s.dstOffs[g-1] == dd {
		g++
	}
	if g < 2 || n%g != 0 {
		return
	}
	for i := 0; i < n; i += g {
		for j := i + 1; j < i+g; j++ {
			if s.srcOffs[j]-s.srcOffs[j-1] != ds || s.dstOffs[j]-s.dstOffs[j-1] != dd {
				return
			}
		}
	}
	var so, do []int
	for i := 0; i < n; i += g {
		so, do = append(so, s.srcOffs[i]), append(do, s.dstOffs[i])
	}
	s.srcOffs, s.dstOffs = so, do
	s.dims = append(slices.Clone(s.dims[:last]), s.dims[last]*g)
}

func (s *accumStep) storages(f func(*storage)) { f(s.src); f(s.out) }
func (s *accumStep) scratch() int              { return 0 }
func (s *accumStep) run(st *state, w int)      { st.pool.run(st, w, s.tasks, s) }

func (s *accumStep) task(st *state, t, w int) {
	switch s.dtype {
	case dtypes.Float32:
		accumRange[float32](s, st, w, t)
	case dtypes.Float64:
		accumRange[float64](s, st, w, t)
	case dtypes.Int32:
		accumRange[int32](s, st, w, t)
	case dtypes.Int64:
		accumRange[int64](s, st, w, t)
	case dtypes.Uint8:
		accumRange[uint8](s, st, w, t)
	default:
		panic(fmt.Errorf("accumulation of %s", s.dtype))
	}
}

func accumRange[T numT](s *accumStep, st *state, w, t int) {
	n0, n1 := t*s.dims[0]/s.tasks, (t+1)*s.dims[0]/s.tasks
	out := sl[T](st.ptr[s.out.id], s.out.size)
	src := st.ptr[s.src.id]
	clear(out[n0*s.outStr[0] : n1*s.outStr[0]])
	var add func(dst, x, y []T) // the vectorised row addition of vec.go
	switch f := any(addF32).(type) {
	case func(dst, x, y []T):
		add = f
	}
	if f, ok := any(addF64).(func(dst, x, y []T)); ok {
		add = f
	}
	ra := s.rowsAxis
	rows, cols := s.dims[ra], s.dims[ra+1]
	drs, dcs, srs, scs := s.outStr[ra], s.outStr[ra+1], s.srcStr[ra], s.srcStr[ra+1]
	// Head: the axes before the block, the first restricted to [n0, n1).
	head := s.dims[:ra]
	idx := st.offs(w, len(head))
	for i := range idx {
		idx[i] = 0
	}
	idx[0] = n0
	sb, db := n0*s.srcStr[0], n0*s.outStr[0]
	for range (n1 - n0) * product(head[1:]) {
		for k := range s.srcOffs {
			so, do := sb+s.srcOffs[k], db+s.dstOffs[k]
			for i := range rows {
				d := out[do+i*drs:]
				p := unsafe.Add(src, (so+i*srs)*int(unsafe.Sizeof(T(0))))
				if dcs == 1 && scs == 1 {
					sr := unsafe.Slice((*T)(p), cols)
					dr := d[:len(sr)]
					if add != nil && cols >= 16 {
						add(dr, dr, sr)
						continue
					}
					for j := range dr {
						dr[j] += sr[j]
					}
					continue
				}
				for j := range cols {
					d[j*dcs] += *(*T)(unsafe.Add(p, j*scs*int(unsafe.Sizeof(T(0)))))
				}
			}
		}
		// Next head index (the first axis last).
		for j := len(idx) - 1; j >= 0; j-- {
			idx[j]++
			sb += s.srcStr[j]
			db += s.outStr[j]
			if idx[j] < head[j] || j == 0 {
				break
			}
			idx[j] = 0
			sb -= head[j] * s.srcStr[j]
			db -= head[j] * s.outStr[j]
		}
	}
}
