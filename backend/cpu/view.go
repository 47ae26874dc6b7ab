package cpu

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// storageKind says where a storage's memory comes from at run time.
type storageKind int

const (
	inArena  storageKind = iota // an intermediate value: an offset in the execution's arena
	inParam                     // an input buffer
	inConst                     // a constant owned by the executable
	inOutput                    // an output buffer, allocated (or donated) per execution
)

// storage is one piece of memory a compiled program reads or writes: an
// intermediate value, an input, a constant or an output. Every value a step
// reads is a view of a storage.
type storage struct {
	id    int
	kind  storageKind
	dtype dtypes.DType
	size  int // values
	index int // parameter, constant or output index

	// Arena placement (inArena): byte offset, and the first and last step
	// that use the storage.
	off         int
	first, last int
}

func (s *storage) bytes() int { return s.size * s.dtype.Size() }

// view is an affine view of a storage: the value at multi-index i (over the
// view's own dimensions) is at element off + Σ i[d]·strides[d]. Strides may be
// 0 (broadcast) or negative (reversed).
type view struct {
	st      *storage
	off     int
	strides []int
}

// denseStrides are the row-major strides of dims.
func denseStrides(dims []int) []int {
	s := make([]int, len(dims))
	acc := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

// layoutStrides are the strides of a view of dims onto a dense storage that
// holds the axes in the given order (a permutation, outermost first).
func layoutStrides(dims, order []int) []int {
	ps := denseStrides(pick(dims, order))
	strides := make([]int, len(dims))
	for i, a := range order {
		strides[a] = ps[i]
	}
	return strides
}

// isDense reports whether v is the whole of its storage in row-major order
// for dims.
func (v view) isDense(dims []int) bool {
	if v.off != 0 || product(dims) != v.st.size {
		return false
	}
	ds := denseStrides(dims)
	for i, d := range dims {
		if d != 1 && v.strides[i] != ds[i] {
			return false
		}
	}
	return true
}

func product(dims []int) int {
	p := 1
	for _, d := range dims {
		p *= d
	}
	return p
}

// transpose: output axis i is input axis perm[i].
func (v view) transpose(perm []int) view {
	s := make([]int, len(perm))
	for i, p := range perm {
		s[i] = v.strides[p]
	}
	return view{v.st, v.off, s}
}

// slice takes starts and steps on every axis.
func (v view) slice(starts, steps []int) view {
	s := make([]int, len(v.strides))
	off := v.off
	for i := range s {
		off += starts[i] * v.strides[i]
		s[i] = v.strides[i] * steps[i]
	}
	return view{v.st, off, s}
}

// reverse flips the given axes of a view of dims.
func (v view) reverse(dims, axes []int) view {
	s := append([]int(nil), v.strides...)
	off := v.off
	for _, a := range axes {
		off += (dims[a] - 1) * s[a]
		s[a] = -s[a]
	}
	return view{v.st, off, s}
}

// broadcastInDim maps a view of inDims to outDims: input axis i becomes
// output axis axes[i]; new axes and expanded size-1 axes get stride 0.
func (v view) broadcastInDim(inDims, outDims, axes []int) view {
	s := make([]int, len(outDims))
	for i, a := range axes {
		if inDims[i] == outDims[a] {
			s[a] = v.strides[i]
		}
	}
	return view{v.st, v.off, s}
}

// reshape re-reads a view of inDims as outDims without moving data, when the
// strides allow it (as NumPy's no-copy reshape): each group of input axes
// merged into or split from output axes must be contiguous in memory.
func (v view) reshape(inDims, outDims []int) (view, bool) {
	if product(inDims) == 0 {
		return view{v.st, v.off, make([]int, len(outDims))}, true
	}
	// Drop size-1 input axes: their strides are irrelevant.
	var od, os []int
	for i, d := range inDims {
		if d != 1 {
			od = append(od, d)
			os = append(os, v.strides[i])
		}
	}
	ns := make([]int, len(outDims))
	oi, oj, ni, nj := 0, 1, 0, 1
	for ni < len(outDims) && oi < len(od) {
		np, op := outDims[ni], od[oi]
		for np != op {
			if np < op {
				if nj >= len(outDims) {
					return view{}, false
				}
				np *= outDims[nj]
				nj++
			} else {
				if oj >= len(od) {
					return view{}, false
				}
				op *= od[oj]
				oj++
			}
		}
		for ok := oi; ok < oj-1; ok++ {
			if os[ok] != od[ok+1]*os[ok+1] {
				return view{}, false
			}
		}
		ns[nj-1] = os[oj-1]
		for nk := nj - 1; nk > ni; nk-- {
			ns[nk-1] = ns[nk] * outDims[nk]
		}
		ni, nj = nj, nj+1
		oi, oj = oj, oj+1
	}
	// Trailing size-1 output axes: any stride.
	for ; ni < len(outDims); ni++ {
		ns[ni] = 0
	}
	return view{v.st, v.off, ns}, true
}
