package nn

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Conv2D is PyTorch's Conv2d on NHWC activations: x [N, H, W, C], weight w
// [O, C, kH, kW] (PyTorch layout), optional bias b [O] (nil for none), the
// same stride and zero padding on both spatial axes. It returns
// [N, Ho, Wo, O] with Ho = (H + 2·padding − kH)/stride + 1.
//
// It is an im2col convolution: the kH·kW shifted (and strided) windows of x
// are sliced out and concatenated into a patch matrix [N·Ho·Wo, kH·kW·C]
// which is multiplied by the weights rearranged to [O, kH·kW·C]. Padding is a
// concatenation with zero blocks. Every op involved has a closed VJP (see
// vjp.go), so Conv2D can be differentiated any number of times.
func Conv2D(x, w, b *Node, stride, padding int) *Node {
	if x.Rank() != 4 || w.Rank() != 4 {
		panic(fmt.Errorf("nn.Conv2D: want x [N,H,W,C] and w [O,C,kH,kW], got x %s, w %s", x.Shape(), w.Shape()))
	}
	n, c := x.Shape().Dimensions[0], x.Shape().Dimensions[3]
	o, wc, kh, kw := w.Shape().Dimensions[0], w.Shape().Dimensions[1], w.Shape().Dimensions[2], w.Shape().Dimensions[3]
	if wc != c {
		panic(fmt.Errorf("nn.Conv2D: input has %d channels but weight %s expects %d", c, w.Shape(), wc))
	}
	if stride < 1 || padding < 0 {
		panic(fmt.Errorf("nn.Conv2D: stride %d and padding %d: want stride ≥ 1, padding ≥ 0", stride, padding))
	}
	if padding > 0 {
		x = ZeroPad2D(x, padding)
	}
	h, wd := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
	ho, wo := (h-kh)/stride+1, (wd-kw)/stride+1
	if ho < 1 || wo < 1 {
		panic(fmt.Errorf("nn.Conv2D: kernel %dx%d does not fit input %dx%d (padding %d)", kh, kw, h-2*padding, wd-2*padding, padding))
	}

	patches := Im2Col(x, kh, kw, stride) // [N, Ho·Wo, kH·kW·C]
	// Weights [O, C, kH, kW] -> [O, kH, kW, C] -> [O, kH·kW·C], matching the patch columns.
	wm := w
	if kh*kw > 1 && c > 1 {
		wm = TransposeAllAxes(w, 0, 2, 3, 1)
	}
	wm = Reshape(wm, o, kh*kw*c)

	y := matMulNT(patches, wm) // [N, L, O]
	if b != nil {
		y = Add(y, BroadcastToShape(Reshape(b, 1, 1, o), y.Shape()))
	}
	return Reshape(y, n, ho, wo, o)
}

// Im2Col returns the patch matrix of x [N, H, W, C] for a kh×kw window moved
// by stride (no padding): [N, Ho·Wo, kh·kw·C], columns ordered (ki, kj, c).
func Im2Col(x *Node, kh, kw, stride int) *Node {
	n, h, wd, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	ho, wo := (h-kh)/stride+1, (wd-kw)/stride+1
	if kh == 1 && kw == 1 {
		if stride > 1 {
			x = Slice(x, AxisRange(), AxisRange(0, (ho-1)*stride+1).Stride(stride), AxisRange(0, (wo-1)*stride+1).Stride(stride), AxisRange())
		}
		return Reshape(x, n, ho*wo, c)
	}
	parts := make([]*Node, 0, kh*kw)
	for ki := range kh {
		for kj := range kw {
			win := Slice(x, AxisRange(),
				AxisRange(ki, ki+(ho-1)*stride+1).Stride(stride),
				AxisRange(kj, kj+(wo-1)*stride+1).Stride(stride),
				AxisRange())
			parts = append(parts, Reshape(win, n, ho, wo, 1, c))
		}
	}
	return Reshape(Concatenate(parts, 3), n, ho*wo, kh*kw*c)
}

// ZeroPad2D pads the two spatial axes of x [N, H, W, C] with p zeros on each
// side, by concatenation (the pure-Go backend has no Pad op).
func ZeroPad2D(x *Node, p int) *Node {
	g := x.Graph()
	for _, axis := range []int{1, 2} {
		z := Zeros(g, withDim(x.Shape(), axis, p))
		x = Concatenate([]*Node{z, x, z}, axis)
	}
	return x
}

// matMulNT multiplies a [N, L, K] by bᵀ for b [O, K], giving [N, L, O].
//
// On the pure-Go backend the product is expressed as a batched DotGeneral
// (b broadcast over N) when each image's product is small enough for
// simplego's per-batch "small" kernel and the broadcast is no larger than a
// itself; simplego then runs the batch in parallel. Otherwise (and on every
// other backend) it is one [N·L, K]×[K, O] product.
func matMulNT(a, b *Node) *Node {
	n, l, k := a.Shape().Dimensions[0], a.Shape().Dimensions[1], a.Shape().Dimensions[2]
	o := b.Shape().Dimensions[0]
	if isSimpleGo(a.Graph()) && n > 1 && l*o <= simpleGoSmallDot && o <= l {
		bb := BroadcastToShape(Reshape(b, 1, o, k), shapes.Make(b.DType(), n, o, k))
		return DotGeneral(a, []int{2}, []int{0}, bb, []int{2}, []int{0})
	}
	y := DotGeneral(Reshape(a, n*l, k), []int{1}, nil, b, []int{1}, nil)
	return Reshape(y, n, l, o)
}

// simpleGoSmallDot is the largest per-batch output (lhs cross × rhs cross
// size) that simplego computes with its "small" DotGeneral kernel, which
// parallelises over the batch axis (backends/simplego/dotgeneral.go: 16 blocks
// of 32×32).
const simpleGoSmallDot = 16 * 32 * 32

// isSimpleGo reports whether g is built for GoMLX's pure-Go backend.
func isSimpleGo(g *Graph) bool {
	return g.Backend() != nil && g.Backend().String() == "go"
}
