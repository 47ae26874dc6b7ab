package cpu

import (
	"fmt"
	"slices"
	"unsafe"
)

// concatStep writes a concatenation of views in one pass over its output.
//
// Evaluating each operand into its part of the output separately would, for a
// concatenation along an inner axis (the kh·kw windows of an im2col, laid side
// by side in each patch row), sweep the whole output once per operand,
// writing a few values of every cache line each time. Instead the output is
// walked in memory order: for each index of the axes before the
// concatenation axis, each operand's block is copied in turn. When all
// operands are views of one storage with the same strides (the windows of an
// im2col), their offsets differ by constants and only one offset is tracked.
type concatStep struct {
	out    *storage
	outer  []int // dimensions before the concatenation axis
	block  int   // output values per outer index
	parts  []concatPart
	esize  int
	shared bool // all parts read one storage with the same outer strides
	tasks  int
}

// concatPart is one operand: for each outer index, a rows×cols block (strides
// rs, cs) read at off + Σ index·outerStrides, written contiguously at pos.
type concatPart struct {
	st                 *storage
	off                int
	outerStrides       []int
	rows, cols, rs, cs int
	pos                int
}

// newConcatStep returns the one-pass step for operands that are all views, or
// nil when an operand is computed or its block is not two-dimensional.
func newConcatStep(out view, dims []int, axis int, in []*value) *concatStep {
	s := &concatStep{out: out.st, outer: dims[:axis], esize: out.st.dtype.Size(), shared: true}
	inner := product(dims[axis+1:])
	s.block = dims[axis] * inner
	pos := 0
	for _, x := range in {
		if x.fused() {
			return nil
		}
		v := *x.e.leaf
		xd := x.dims()
		p := concatPart{st: v.st, off: v.off, outerStrides: v.strides[:axis], pos: pos}
		// The block: the operand's axes from axis on, merged where contiguous.
		var bd, bs []int
		for a := axis; a < len(xd); a++ {
			if xd[a] == 1 {
				continue
			}
			if n := len(bd); n > 0 && bs[n-1] == v.strides[a]*xd[a] {
				bd[n-1] *= xd[a]
				bs[n-1] = v.strides[a]
				continue
			}
			bd, bs = append(bd, xd[a]), append(bs, v.strides[a])
		}
		switch len(bd) {
		case 0:
			p.rows, p.cols, p.cs = 1, 1, 1
		case 1:
			p.rows, p.cols, p.cs = 1, bd[0], bs[0]
		case 2:
			p.rows, p.cols, p.rs, p.cs = bd[0], bd[1], bs[0], bs[1]
		default:
			return nil
		}
		if len(s.parts) > 0 {
			p0 := s.parts[0]
			for j := range p.outerStrides {
				if p.outerStrides[j] != p0.outerStrides[j] {
					s.shared = false
				}
			}
			s.shared = s.shared && p.st == p0.st
		}
		s.parts = append(s.parts, p)
		pos += xd[axis] * inner
	}
	s.parts = mergeParts(s.parts)
	s.tasks = min(s.heads(), splitTasks(product(dims), 1<<16))
	return s
}

func (s *concatStep) storages(f func(*storage)) {
	f(s.out)
	for i := range s.parts {
		f(s.parts[i].st)
	}
}

func (s *concatStep) scratch() int         { return 0 }
func (s *concatStep) run(st *state, w int) { st.pool.run(st, w, s.tasks, s) }

func (s *concatStep) task(st *state, t, w int) {
	n := s.heads()
	p0, p1 := t*n/s.tasks, (t+1)*n/s.tasks
	s.rangeInto(st, w, p0, p1, unsafe.Add(st.ptr[s.out.id], p0*s.headBytes()))
}

// headBytes is the size of the output of one head index.
func (s *concatStep) headBytes() int { return s.headRows() * s.block * s.esize }

// headRows is the number of output rows (values of all outer axes) of one
// head index: the extent of the last outer axis.
func (s *concatStep) headRows() int {
	if len(s.outer) == 0 {
		return 1
	}
	return s.outer[len(s.outer)-1]
}

// heads is the number of head indices.
func (s *concatStep) heads() int { return product(s.outer[:max(len(s.outer)-1, 0)]) }

// rangeInto writes the output of head indices [p0, p1) at out.
func (s *concatStep) rangeInto(st *state, w, p0, p1 int, out unsafe.Pointer) {
	head := s.outer[:max(len(s.outer)-1, 0)]
	switch s.esize {
	case 4:
		concatRange[uint32](s, st, w, head, p0, p1, out)
	case 8:
		concatRange[uint64](s, st, w, head, p0, p1, out)
	default:
		concatRange[uint8](s, st, w, head, p0, p1, out)
	}
}

// concatRange writes the output blocks of the head indices [p0, p1) at out:
// all outer axes but the last, which each part walks as the rows of one 2-D
// copy (its values over that axis are usually contiguous: the pixels of an
// image row in an im2col window).
func concatRange[T any](s *concatStep, st *state, w int, head []int, p0, p1 int, out unsafe.Pointer) {
	var z T
	es := int(unsafe.Sizeof(z))
	np := len(s.parts)
	last, lastAxis := 1, -1
	if len(s.outer) > 0 {
		lastAxis = len(s.outer) - 1
		last = s.outer[lastAxis]
	}
	// Each part's offset at head index p0, then maintained incrementally.
	buf := st.offs(w, np+len(head))
	cur, idx := buf[:np], buf[np:]
	rem := p0
	for j := len(head) - 1; j >= 0; j-- {
		idx[j] = rem % head[j]
		rem /= head[j]
	}
	for k := range s.parts {
		cur[k] = s.parts[k].off
		for j, i := range idx {
			cur[k] += i * s.parts[k].outerStrides[j]
		}
		if s.parts[k].st.size > 0 {
			checkPart(&s.parts[k], s.outer)
		}
	}
	rowBytes := last * s.block * es
	for p := p0; p < p1; p++ {
		dst := unsafe.Add(out, (p-p0)*rowBytes)
		for k := range s.parts {
			pt := &s.parts[k]
			off := cur[k]
			if s.shared {
				off = cur[0] + pt.off - s.parts[0].off
			}
			src := st.ptr[pt.st.id]
			ls := 0
			if lastAxis >= 0 {
				ls = pt.outerStrides[lastAxis]
			}
			if pt.rows == 1 {
				copy2D[T](dst, pt.pos, s.block, 1, src, off, ls, pt.cs, last, pt.cols)
				continue
			}
			for l := range last {
				copy2D[T](dst, l*s.block+pt.pos, pt.cols, 1, src, off+l*ls, pt.rs, pt.cs, pt.rows, pt.cols)
			}
		}
		// Next head index.
		for j := len(idx) - 1; j >= 0; j-- {
			idx[j]++
			if idx[j] < head[j] {
				if s.shared {
					cur[0] += s.parts[0].outerStrides[j]
				} else {
					for k := range s.parts {
						cur[k] += s.parts[k].outerStrides[j]
					}
				}
				break
			}
			idx[j] = 0
			back := head[j] - 1
			if s.shared {
				cur[0] -= back * s.parts[0].outerStrides[j]
			} else {
				for k := range s.parts {
					cur[k] -= back * s.parts[k].outerStrides[j]
				}
			}
		}
	}
}

// mergeParts joins consecutive parts that continue each other in both the
// source and the output (the windows kj and kj+1 of an NHWC im2col: C
// channels apart in both), so that one copy moves their values together.
func mergeParts(parts []concatPart) []concatPart {
	out := parts[:0:0]
	for _, p := range parts {
		if n := len(out); n > 0 {
			q := &out[n-1]
			if q.st == p.st && q.rows == 1 && p.rows == 1 && q.cs == 1 && p.cs == 1 &&
				p.pos == q.pos+q.cols && p.off == q.off+q.cols && slices.Equal(p.outerStrides, q.outerStrides) {
				q.cols += p.cols
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// checkPart panics unless every block of part p lies inside its storage.
func checkPart(p *concatPart, outer []int) {
	lo, hi := blockRange(p.off, p.rs, p.cs, p.rows, p.cols)
	for j, d := range outer {
		if e := (d - 1) * p.outerStrides[j]; e < 0 {
			lo += e
		} else {
			hi += e
		}
	}
	if lo < 0 || hi > p.st.size {
		panic(fmt.Errorf("concatenation operand [%d, %d) outside storage of %d values", lo, hi, p.st.size))
	}
}
