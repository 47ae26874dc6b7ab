package onnxmodel

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/nn"
)

// Convolutions and pooling, 1-D and 2-D, on NHWC activations: im2col
// products (package nn's Conv2D where its fast path applies), windows cut
// out with strided slices, padding by concatenation. No op with a missing
// or non-closed derivative rule on the pure-Go backend (ConvGeneral's
// Reverse, ReduceWindow's SelectAndScatter, Pad) is used, so every
// conversion can be differentiated any number of times on every backend.

// window is the geometry of a convolution or pooling window on the two
// spatial axes (height, width).
type window struct {
	k, s, d       [2]int // kernel, stride, dilation
	before, after [2]int // padding
	ceil          bool   // pooling's ceil_mode
}

// span is the extent of the dilated kernel along axis a.
func (w window) span(a int) int { return (w.k[a]-1)*w.d[a] + 1 }

// out is the output size along axis a for an input of size in, with
// PyTorch's ceil-mode rule (the last window must start inside the input or
// its leading padding).
func (w window) out(a, in int) int {
	num := in + w.before[a] + w.after[a] - w.span(a)
	o := num/w.s[a] + 1
	if w.ceil && num%w.s[a] != 0 {
		o++
		if (o-1)*w.s[a] >= in+w.before[a] {
			o--
		}
	}
	return o
}

// spatial reads the window attributes of a Conv or pooling node for an
// input of the given spatial size (1 or 2 axes), lifted to 2-D (a 1-D
// window is 1 high).
func spatial(n *graphNode, size []int, kernel []int64) window {
	r := len(size)
	ints := func(name string, def int64) []int64 {
		v := n.attrInts(name, nil)
		if v == nil {
			v = make([]int64, r)
			for i := range v {
				v[i] = def
			}
		}
		return v
	}
	k, s, d := kernel, ints("strides", 1), ints("dilations", 1)
	pads := n.attrInts("pads", nil)
	if pads == nil {
		pads = make([]int64, 2*r)
	}
	if len(k) != r || len(s) != r || len(d) != r || len(pads) != 2*r {
		n.fail("kernel %v, strides %v, dilations %v, pads %v for %d spatial axes", k, s, d, pads, r)
	}
	var w window
	off := 2 - r // a 1-D window sits on the width axis
	for a := range 2 {
		w.k[a], w.s[a], w.d[a] = 1, 1, 1
	}
	for i := range r {
		w.k[off+i], w.s[off+i], w.d[off+i] = int(k[i]), int(s[i]), int(d[i])
		w.before[off+i], w.after[off+i] = int(pads[i]), int(pads[r+i])
		if k[i] < 1 || s[i] < 1 || d[i] < 1 || pads[i] < 0 || pads[r+i] < 0 {
			n.fail("kernel %v, strides %v, dilations %v, pads %v", k, s, d, pads)
		}
	}
	switch auto := n.attrString("auto_pad", "NOTSET"); auto {
	case "NOTSET", "":
	case "VALID":
		w.before, w.after = [2]int{}, [2]int{}
	case "SAME_UPPER", "SAME_LOWER":
		for i := range r {
			a := off + i
			o := (size[i] + w.s[a] - 1) / w.s[a]
			total := max(0, (o-1)*w.s[a]+w.span(a)-size[i])
			small, big := total/2, total-total/2
			if auto == "SAME_UPPER" {
				w.before[a], w.after[a] = small, big
			} else {
				w.before[a], w.after[a] = big, small
			}
		}
	default:
		n.fail("auto_pad %q", auto)
	}
	w.ceil = n.attrInt("ceil_mode", 0) != 0
	return w
}

// lift4 returns an NHWC rank-4 view of a rank-3 or rank-4 ONNX value and
// a function that turns an NHWC result back into the value's rank.
func (b *builder) lift4(n *graphNode, v *value) (*Node, func(*Node) *value) {
	switch r := rankOf(v); r {
	case 4:
		return b.channelsLast(v), func(y *Node) *value { return &value{nhwc: y} }
	case 3:
		x := b.nchw(v) // [N, C, L] → [N, 1, L, C]
		d := x.Shape().Dimensions
		var h *Node
		if d[1] == 1 {
			h = Reshape(x, d[0], 1, d[2], 1)
		} else {
			h = Reshape(Transpose(x, 1, 2), d[0], 1, d[2], d[1])
		}
		return h, func(y *Node) *value {
			e := y.Shape().Dimensions // [N, 1, Lo, O]
			return &value{node: Transpose(Reshape(y, e[0], e[2], e[3]), 1, 2)}
		}
	default:
		n.fail("input of rank %d; want 3 (1-D) or 4 (2-D)", r)
	}
	return nil, nil
}

// opConv converts Conv: groups, strides, dilations, explicit or automatic
// padding, 1-D and 2-D.
func opConv(b *builder, n *graphNode, in []*value) []*value {
	x, back := b.lift4(n, in[0])
	w := b.nchw(in[1])
	var bias *Node
	if len(in) > 2 && in[2] != nil {
		bias = b.nchw(in[2])
	}
	dims := dimsOf(in[0])
	kernel := n.attrInts("kernel_shape", nil)
	if kernel == nil {
		for _, d := range w.Shape().Dimensions[2:] {
			kernel = append(kernel, int64(d))
		}
	}
	win := spatial(n, dims[2:], kernel)
	if w.Rank() == 3 { // 1-D weights [O, C/g, k] → [O, C/g, 1, k]
		wd := w.Shape().Dimensions
		w = Reshape(w, wd[0], wd[1], 1, wd[2])
	}
	group := int(n.attrInt("group", 1))
	c := x.Shape().Dimensions[3]
	o, cg := w.Shape().Dimensions[0], w.Shape().Dimensions[1]
	if group < 1 || c%group != 0 || o%group != 0 || cg != c/group {
		n.fail("%d input channels, weights %s, %d groups", c, w.Shape(), group)
	}
	if w.Shape().Dimensions[2] != win.k[0] || w.Shape().Dimensions[3] != win.k[1] {
		n.fail("kernel_shape %v but weights %s", kernel, w.Shape())
	}
	return []*value{back(conv2D(x, w, bias, win, group))}
}

// conv2D is a grouped, strided, dilated, padded convolution of NHWC x with
// PyTorch-layout weights w [O, C/group, kh, kw] and optional bias b.
func conv2D(x, w, bias *Node, win window, group int) *Node {
	symmetric := win.before == win.after && win.before[0] == win.before[1]
	plain := group == 1 && win.d == [2]int{1, 1} && win.s[0] == win.s[1]
	if plain && symmetric {
		return nn.Conv2D(x, w, bias, win.s[0], win.before[0])
	}
	x = padConstant(x, []int{0, win.before[0], win.before[1], 0}, []int{0, win.after[0], win.after[1], 0}, 0)
	if plain {
		return nn.Conv2D(x, w, bias, win.s[0], 0)
	}
	nb, h, wd, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	o := w.Shape().Dimensions[0]
	ho, wo := (h-win.span(0))/win.s[0]+1, (wd-win.span(1))/win.s[1]+1
	if ho < 1 || wo < 1 {
		panic(fmt.Errorf("convolution window %dx%d (dilation %v) does not fit the padded input %dx%d", win.k[0], win.k[1], win.d, h, wd))
	}
	cg, og := c/group, o/group
	outs := make([]*Node, group)
	for g := range group {
		xg, wg := x, w
		if group > 1 {
			xg = SliceAxis(x, 3, AxisRange(g*cg, (g+1)*cg))
			wg = SliceAxis(w, 0, AxisRange(g*og, (g+1)*og))
		}
		patches := windows(xg, win, ho, wo) // [N, Ho, Wo, kh·kw, Cg]
		patches = Reshape(patches, nb*ho*wo, win.k[0]*win.k[1]*cg)
		wm := Reshape(TransposeAllAxes(wg, 0, 2, 3, 1), og, win.k[0]*win.k[1]*cg)
		outs[g] = DotGeneral(patches, []int{1}, nil, wm, []int{1}, nil) // [N·Ho·Wo, Og]
	}
	y := outs[0]
	if group > 1 {
		y = Concatenate(outs, 1)
	}
	if bias != nil {
		y = Add(y, BroadcastToShape(Reshape(bias, 1, o), y.Shape()))
	}
	return Reshape(y, nb, ho, wo, o)
}

// windows cuts the kh·kw strided, dilated windows out of NHWC x (already
// padded) and stacks them: [N, Ho, Wo, kh·kw, C], window (ki, kj) at
// position ki·kw + kj.
func windows(x *Node, win window, ho, wo int) *Node {
	parts := eachWindow(x, win, ho, wo)
	d := parts[0].Shape().Dimensions
	for i, p := range parts {
		parts[i] = Reshape(p, d[0], d[1], d[2], 1, d[3])
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 3)
}

// eachWindow returns the kh·kw strided slices of NHWC x, each [N, Ho, Wo,
// C], in row-major window order.
func eachWindow(x *Node, win window, ho, wo int) []*Node {
	parts := make([]*Node, 0, win.k[0]*win.k[1])
	for ki := range win.k[0] {
		for kj := range win.k[1] {
			i0, j0 := ki*win.d[0], kj*win.d[1]
			parts = append(parts, Slice(x, AxisRange(),
				AxisRange(i0, i0+(ho-1)*win.s[0]+1).Stride(win.s[0]),
				AxisRange(j0, j0+(wo-1)*win.s[1]+1).Stride(win.s[1]),
				AxisRange()))
		}
	}
	return parts
}

// poolGeometry reads a pooling node's window for NHWC x and returns it with
// the output size and the extra padding after each axis that ceil mode
// needs.
func poolGeometry(n *graphNode, x *Node, onnxDims []int) (win window, ho, wo int, extra [2]int) {
	kernel := n.attrInts("kernel_shape", nil)
	if kernel == nil {
		n.fail("no kernel_shape")
	}
	win = spatial(n, onnxDims[2:], kernel)
	h, w := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
	ho, wo = win.out(0, h), win.out(1, w)
	if ho < 1 || wo < 1 {
		n.fail("window %v (strides %v, pads %v/%v) does not fit the input %dx%d", win.k, win.s, win.before, win.after, h, w)
	}
	for a, size := range []int{h, w} {
		o := []int{ho, wo}[a]
		extra[a] = max(0, (o-1)*win.s[a]+win.span(a)-(size+win.before[a]+win.after[a]))
	}
	return win, ho, wo, extra
}

// opMaxPool converts MaxPool (output 0; the indices are not computed): the
// running maximum of the windows in row-major order, each step a
// Where(a ≥ b, a, b) that keeps the earlier on ties, so the derivative goes
// to the first maximum of a window as in PyTorch. Padding never wins.
func opMaxPool(b *builder, n *graphNode, in []*value) []*value {
	if n.attrInt("storage_order", 0) != 0 {
		n.fail("storage_order 1 is not converted")
	}
	x, back := b.lift4(n, in[0])
	win, ho, wo, extra := poolGeometry(n, x, dimsOf(in[0]))
	if win.k == [2]int{2, 2} && win.s == [2]int{2, 2} && win.d == [2]int{1, 1} && win.before == [2]int{} && win.after == [2]int{} && extra == [2]int{} {
		return []*value{back(nn.MaxPool2x2(x)), nil}
	}
	lowest := lowestValue(x.DType())
	x = padConstant(x, []int{0, win.before[0], win.before[1], 0}, []int{0, win.after[0] + extra[0], win.after[1] + extra[1], 0}, lowest)
	parts := eachWindow(x, win, ho, wo)
	y := parts[0]
	for _, p := range parts[1:] {
		y = firstMax(y, p)
	}
	return []*value{back(y), nil}
}

// lowestValue is the most negative finite value of a float dtype: the
// padding of max pooling (finite, so that no derivative meets ∞·0).
func lowestValue(dt dtypes.DType) float64 {
	if dt == dtypes.Float32 {
		return -3.4028234663852886e38
	}
	return -1.7976931348623157e308
}

// opAveragePool converts AveragePool: the sum of the windows divided by
// each window's count — every position of the padded input
// (count_include_pad = 1) or only the input's own (0); positions ceil mode
// adds beyond the padding never count, as in PyTorch.
func opAveragePool(b *builder, n *graphNode, in []*value) []*value {
	x, back := b.lift4(n, in[0])
	win, ho, wo, extra := poolGeometry(n, x, dimsOf(in[0]))
	h, w := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
	includePad := n.attrInt("count_include_pad", 0) != 0
	x = padConstant(x, []int{0, win.before[0], win.before[1], 0}, []int{0, win.after[0] + extra[0], win.after[1] + extra[1], 0}, 0)
	parts := eachWindow(x, win, ho, wo)
	y := parts[0]
	for _, p := range parts[1:] {
		y = Add(y, p)
	}
	// counts[a][i]: how many window positions along axis a count at output i.
	counts := [2][]int{}
	for a, size := range []int{h, w} {
		lo, hi := 0, size
		if includePad {
			lo, hi = -win.before[a], size+win.after[a]
		}
		for i := range []int{ho, wo}[a] {
			c := 0
			for t := range win.k[a] {
				p := i*win.s[a] - win.before[a] + t*win.d[a]
				if p >= lo && p < hi {
					c++
				}
			}
			counts[a] = append(counts[a], c)
		}
	}
	div := make([]float64, 0, ho*wo)
	uniform := true
	for _, ch := range counts[0] {
		for _, cw := range counts[1] {
			div = append(div, float64(ch*cw))
			uniform = uniform && float64(ch*cw) == div[0]
		}
	}
	if uniform {
		y = DivScalar(y, div[0])
	} else {
		y = Div(y, BroadcastToShape(b.constant(floatTensor([]int{1, ho, wo, 1}, div)), y.Shape()))
	}
	return []*value{back(y)}
}

// opGlobalPool converts GlobalAveragePool and GlobalMaxPool: a mean (or
// max, its derivative split among tied maxima) over the spatial axes, kept
// as size-1 axes.
func opGlobalPool(isMax bool) func(b *builder, n *graphNode, in []*value) []*value {
	reduce := ReduceMean
	if isMax {
		reduce = reduceMax
	}
	return func(b *builder, n *graphNode, in []*value) []*value {
		if rankOf(in[0]) == 4 {
			x := b.channelsLast(in[0])
			d := x.Shape().Dimensions
			return []*value{{nhwc: Reshape(reduce(x, 1, 2), d[0], 1, 1, d[3])}}
		}
		x := b.nchw(in[0])
		d := slices.Clone(x.Shape().Dimensions)
		axes := make([]int, 0, len(d)-2)
		for a := 2; a < len(d); a++ {
			axes = append(axes, a)
			d[a] = 1
		}
		return []*value{{node: Reshape(reduce(x, axes...), d...)}}
	}
}
