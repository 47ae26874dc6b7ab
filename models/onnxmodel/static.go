package onnxmodel

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// This file computes on tensors known when the graph is built (shapes,
// constants, and values derived from them alone) in Go, so that ops whose
// ONNX arguments are tensors but whose GoMLX counterparts take Go values
// (Reshape's shape, Slice's starts, Pad's pads, …) can be converted: the
// exporter computes `x.view(x.size(0), -1)` as Shape → Gather → Unsqueeze →
// Concat → Reshape.

// intTensor is a static int64 tensor.
func intTensor(shape []int, data []int64) *tensor {
	return &tensor{dtype: dtypes.Int64, shape: slices.Clone(shape), i: data}
}

// floatTensor is a static float tensor (held in float64).
func floatTensor(shape []int, data []float64) *tensor {
	return &tensor{dtype: dtypes.Float64, shape: slices.Clone(shape), f: data}
}

// asInts returns t's values as integers (floats truncated).
func (t *tensor) asInts() []int64 {
	if !t.isFloat() {
		return t.i
	}
	out := make([]int64, len(t.f))
	for k, v := range t.f {
		out[k] = int64(v)
	}
	return out
}

// asFloats returns t's values as float64.
func (t *tensor) asFloats() []float64 {
	if t.isFloat() {
		return t.f
	}
	out := make([]float64, len(t.i))
	for k, v := range t.i {
		out[k] = float64(v)
	}
	return out
}

// withShape returns a tensor sharing t's data under another shape.
func (t *tensor) withShape(shape []int) *tensor {
	c := *t
	c.shape = slices.Clone(shape)
	return &c
}

// strides returns the row-major strides of shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// mapIndex calls fn for every position of shape with its flat index and
// multi-index (reused between calls).
func mapIndex(shape []int, fn func(flat int, idx []int)) {
	n := sizeOf(shape)
	idx := make([]int, len(shape))
	for flat := range n {
		fn(flat, idx)
		for a := len(shape) - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < shape[a] {
				break
			}
			idx[a] = 0
		}
	}
}

// remapStatic returns the tensor of t's dtype and the given shape whose
// element at each multi-index idx is t's element at flat offset at(idx):
// the data movement of the static Gather, Slice and Transpose.
func remapStatic(t *tensor, shape []int, at func(idx []int) int) *tensor {
	out := &tensor{dtype: t.dtype, shape: shape}
	if t.isFloat() {
		out.f = make([]float64, sizeOf(shape))
		mapIndex(shape, func(flat int, idx []int) { out.f[flat] = t.f[at(idx)] })
	} else {
		out.i = make([]int64, sizeOf(shape))
		mapIndex(shape, func(flat int, idx []int) { out.i[flat] = t.i[at(idx)] })
	}
	return out
}

// gatherStatic is numpy's take(t, indices, axis).
func gatherStatic(t *tensor, indices []int64, idxShape []int, axis int) *tensor {
	dim := t.shape[axis]
	outShape := slices.Concat(t.shape[:axis], idxShape, t.shape[axis+1:])
	src := strides(t.shape)
	return remapStatic(t, outShape, func(idx []int) int {
		k := len(idxShape)
		flatIdx := 0
		for a, s := range strides(idxShape) {
			flatIdx += idx[axis+a] * s
		}
		i := indices[flatIdx]
		if i < 0 {
			i += int64(dim)
		}
		if i < 0 || i >= int64(dim) {
			panic(fmt.Errorf("Gather index %d outside an axis of %d", indices[flatIdx], dim))
		}
		off := int(i) * src[axis]
		for a := 0; a < axis; a++ {
			off += idx[a] * src[a]
		}
		for a := axis + 1; a < len(t.shape); a++ {
			off += idx[a+k-1] * src[a]
		}
		return off
	})
}

// sliceStatic slices t along each axis with start, length and step.
func sliceStatic(t *tensor, start, length, step []int) *tensor {
	src := strides(t.shape)
	return remapStatic(t, slices.Clone(length), func(idx []int) int {
		off := 0
		for a := range idx {
			off += (start[a] + idx[a]*step[a]) * src[a]
		}
		return off
	})
}

// concatStatic concatenates static tensors along axis.
func concatStatic(ts []*tensor, axis int) *tensor {
	shape := slices.Clone(ts[0].shape)
	shape[axis] = 0
	isFloat := false
	for _, t := range ts {
		shape[axis] += t.shape[axis]
		isFloat = isFloat || t.isFloat()
	}
	outer := sizeOf(shape[:axis])
	out := &tensor{dtype: dtypes.Int64, shape: shape}
	if isFloat {
		out.dtype = dtypes.Float64
	}
	for o := range outer {
		for _, t := range ts {
			run := sizeOf(t.shape[axis:])
			if isFloat {
				out.f = append(out.f, t.asFloats()[o*run:(o+1)*run]...)
			} else {
				out.i = append(out.i, t.i[o*run:(o+1)*run]...)
			}
		}
	}
	return out
}

// broadcastShapes is numpy's broadcast of two shapes.
func broadcastShapes(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for k := range r {
		da, db := 1, 1
		if i := len(a) - r + k; i >= 0 {
			da = a[i]
		}
		if i := len(b) - r + k; i >= 0 {
			db = b[i]
		}
		switch {
		case da == db || db == 1:
			out[k] = da
		case da == 1:
			out[k] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastOffset is the flat offset in t of the element that numpy
// broadcasting pairs with position idx of the broadcast shape (t's axes
// aligned on the right, its size-1 axes repeated).
func broadcastOffset(t *tensor, idx []int) int {
	off, s := 0, strides(t.shape)
	for k, d := range t.shape {
		if d != 1 {
			off += idx[len(idx)-len(t.shape)+k] * s[k]
		}
	}
	return off
}

// binaryStatic applies an arithmetic or comparison op element-wise with
// numpy broadcasting; integers stay integers unless either side is float.
func binaryStatic(op string, a, b *tensor) (*tensor, error) {
	shape, err := broadcastShapes(a.shape, b.shape)
	if err != nil {
		return nil, err
	}
	isFloat := a.isFloat() || b.isFloat()
	cmp := op == "Equal" || op == "Less" || op == "Greater" || op == "LessOrEqual" || op == "GreaterOrEqual"
	out := &tensor{shape: shape}
	switch {
	case cmp:
		out.dtype = dtypes.Bool
		out.i = make([]int64, sizeOf(shape))
	case isFloat:
		out.dtype = dtypes.Float64
		out.f = make([]float64, sizeOf(shape))
	default:
		out.dtype = dtypes.Int64
		out.i = make([]int64, sizeOf(shape))
	}
	af, bf := a.asFloats(), b.asFloats()
	ai, bi := a.asInts(), b.asInts()
	var bad error
	mapIndex(shape, func(flat int, idx []int) {
		pa, pb := broadcastOffset(a, idx), broadcastOffset(b, idx)
		if cmp {
			x, y := af[pa], bf[pb]
			r := map[string]bool{"Equal": x == y, "Less": x < y, "Greater": x > y, "LessOrEqual": x <= y, "GreaterOrEqual": x >= y}[op]
			if r {
				out.i[flat] = 1
			}
			return
		}
		if isFloat {
			x, y := af[pa], bf[pb]
			switch op {
			case "Add":
				out.f[flat] = x + y
			case "Sub":
				out.f[flat] = x - y
			case "Mul":
				out.f[flat] = x * y
			case "Div":
				out.f[flat] = x / y
			case "Pow":
				out.f[flat] = math.Pow(x, y)
			}
			return
		}
		x, y := ai[pa], bi[pb]
		switch op {
		case "Add":
			out.i[flat] = x + y
		case "Sub":
			out.i[flat] = x - y
		case "Mul":
			out.i[flat] = x * y
		case "Div":
			if y == 0 {
				bad = fmt.Errorf("integer division by zero")
				return
			}
			out.i[flat] = x / y
		case "Pow":
			out.i[flat] = int64(math.Pow(float64(x), float64(y)))
		}
	})
	return out, bad
}

// transposeStatic permutes t's axes: output axis k is input axis perm[k].
func transposeStatic(t *tensor, perm []int) *tensor {
	shape := make([]int, len(perm))
	for k, p := range perm {
		shape[k] = t.shape[p]
	}
	src := strides(t.shape)
	return remapStatic(t, shape, func(idx []int) int {
		off := 0
		for k, p := range perm {
			off += idx[k] * src[p]
		}
		return off
	})
}

// whereStatic is numpy's where(cond, x, y) on static tensors.
func whereStatic(cond, x, y *tensor) (*tensor, error) {
	shape, err := broadcastShapes(cond.shape, x.shape)
	if err == nil {
		shape, err = broadcastShapes(shape, y.shape)
	}
	if err != nil {
		return nil, err
	}
	isFloat := x.isFloat() || y.isFloat()
	out := &tensor{dtype: x.dtype, shape: shape}
	if isFloat {
		out.dtype, out.f = dtypes.Float64, make([]float64, sizeOf(shape))
	} else {
		out.i = make([]int64, sizeOf(shape))
	}
	c, xf, yf, xi, yi := cond.asInts(), x.asFloats(), y.asFloats(), x.asInts(), y.asInts()
	mapIndex(shape, func(flat int, idx []int) {
		pick := c[broadcastOffset(cond, idx)] != 0
		switch {
		case isFloat && pick:
			out.f[flat] = xf[broadcastOffset(x, idx)]
		case isFloat:
			out.f[flat] = yf[broadcastOffset(y, idx)]
		case pick:
			out.i[flat] = xi[broadcastOffset(x, idx)]
		default:
			out.i[flat] = yi[broadcastOffset(y, idx)]
		}
	})
	return out, nil
}
