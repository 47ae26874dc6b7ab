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
// vjp.go), so Conv2D can be differentiated any number of times. On the pure-Go
// backend, layers whose per-image product is small (LeNet's) multiply image by
// image in parallel and get cheaper adjoints (convBatched, recipes.go).
//
// Like GoMLX's own graph functions it panics on shape errors; graph.Exec
// returns such panics as errors.
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

	// Weights [O, C, kH, kW] -> [O, kH, kW, C] -> [O, kH·kW·C], matching the patch columns.
	wm := w
	if kh*kw > 1 && c > 1 {
		wm = TransposeAllAxes(w, 0, 2, 3, 1)
	}
	wm = Reshape(wm, o, kh*kw*c)

	var y *Node // [N, L, O]
	if l := ho * wo; isSimpleGo(x.Graph()) && n > 1 && l*o <= simpleGoSmallDot && o <= l {
		y, b = convBatched(x, wm, b, kh, kw, stride)
	} else {
		var patches *Node
		if b != nil && kh*kw > 1 && isCPU(x.Graph()) {
			// The bias as the weights' last column, times a column of ones.
			patches = Reshape(im2colOnes(x, kh, kw, stride), n*l, kh*kw*c+1)
			wm = Concatenate([]*Node{wm, Reshape(b, o, 1)}, 1)
			b = nil
		} else {
			patches = Reshape(Im2Col(x, kh, kw, stride), n*l, kh*kw*c)
		}
		y = Reshape(DotGeneral(patches, []int{1}, nil, wm, []int{1}, nil), n, l, o)
	}
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

// im2colOnes is Im2Col with a 1 appended to every patch row: [N, Ho·Wo,
// kh·kw·C+1]. Multiplied by weights that carry the bias as their last
// column, the product adds the bias, and its adjoint yields the bias
// gradient, without a pass over the layer's output of their own (on the cpu
// backend the ones are one more part of the one-pass im2col).
func im2colOnes(x *Node, kh, kw, stride int) *Node {
	n, h, wd, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	ho, wo := (h-kh)/stride+1, (wd-kw)/stride+1
	parts := make([]*Node, 0, kh*kw+1)
	for ki := range kh {
		for kj := range kw {
			win := Slice(x, AxisRange(),
				AxisRange(ki, ki+(ho-1)*stride+1).Stride(stride),
				AxisRange(kj, kj+(wo-1)*stride+1).Stride(stride),
				AxisRange())
			parts = append(parts, win)
		}
	}
	parts = append(parts, BroadcastToShape(ScalarOne(x.Graph(), x.DType()), shapes.Make(x.DType(), n, ho, wo, 1)))
	return Reshape(Concatenate(parts, 3), n, ho*wo, kh*kw*c+1)
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

// convBatched computes the convolution of NHWC x with weights wm
// [O, kh·kw·C] as one matrix product per image, y[n] = P[n]·wmᵀ with patches
// P [N, L, K], the weights broadcast over the batch: the form simplego runs
// with its per-batch "small" kernel, in parallel over images. It registers the
// adjoint recipe of recipes.go for the product.
//
// With fewer than 4 input channels the patches are built channels-first
// ([N, K, L]: each window one contiguous run of L values) and transposed:
// gathering windows of 1–3 values NHWC-style costs more than the
// transposition, and the weight adjoint reuses the channels-first patches.
// Those patches also get a row of ones, and the weights the bias as an extra
// column, so the product adds the bias and its adjoint yields the bias
// gradient: no broadcast over the large output. It returns the bias still to
// be added (nil when folded).
func convBatched(x, wm, b *Node, kh, kw, stride int) (y, bias *Node) {
	n, c := x.Shape().Dimensions[0], x.Shape().Dimensions[3]
	o := wm.Shape().Dimensions[0]
	var p, pt *Node
	bias = b
	if c < 4 && kh*kw > 1 {
		pt = im2colChannelsFirst(x, kh, kw, stride) // [N, K, L]
		if b != nil {
			dims := pt.Shape().Dimensions
			ones := BroadcastToShape(ScalarOne(x.Graph(), x.DType()), shapes.Make(x.DType(), dims[0], 1, dims[2]))
			pt = Concatenate([]*Node{pt, ones}, 1)             // [N, K+1, L]
			wm = Concatenate([]*Node{wm, Reshape(b, o, 1)}, 1) // [O, K+1]
			bias = nil
		}
		p = Transpose(pt, 1, 2)
	} else {
		p = Im2Col(x, kh, kw, stride) // [N, L, K]
	}
	k := wm.Shape().Dimensions[1]
	wb := BroadcastToShape(Reshape(wm, 1, o, k), shapes.Make(wm.DType(), n, o, k))
	y = DotGeneral(p, []int{2}, []int{0}, wb, []int{2}, []int{0})
	setConvRecipe(y, x, wm, pt, kh, kw, stride)
	return y, bias
}

// simpleGoSmallDot is the largest per-batch output (lhs cross × rhs cross
// size) that simplego computes with its "small" DotGeneral kernel, which
// parallelises over the batch axis (backends/simplego/dotgeneral.go: 16 blocks
// of 32×32).
const simpleGoSmallDot = 16 * 32 * 32

// isCPU reports whether g is built for the project's compiling CPU backend
// (backend/cpu).
func isCPU(g *Graph) bool {
	return g.Backend() != nil && g.Backend().String() == "cpu"
}

// isSimpleGo reports whether g is built for GoMLX's pure-Go backend.
func isSimpleGo(g *Graph) bool {
	return g.Backend() != nil && g.Backend().String() == "go"
}
