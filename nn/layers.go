package nn

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
)

// Linear is PyTorch's Linear: x [N, in] times wᵀ for w [out, in], plus the
// bias b [out] unless b is nil.
func Linear(x, w, b *Node) *Node {
	if x.Rank() != 2 || w.Rank() != 2 || x.Shape().Dimensions[1] != w.Shape().Dimensions[1] {
		panic(fmt.Errorf("nn.Linear: want x [N,in] and w [out,in], got x %s, w %s", x.Shape(), w.Shape()))
	}
	y := DotGeneral(x, []int{1}, nil, w, []int{1}, nil)
	if b != nil {
		y = Add(y, BroadcastToShape(InsertAxes(b, 0), y.Shape()))
	}
	return y
}

// ReLU is max(x, 0) with PyTorch's derivative convention: the gradient is 0
// where x ≤ 0 (GoMLX's Max would pass it through at exactly 0).
func ReLU(x *Node) *Node {
	zero := ScalarZero(x.Graph(), x.DType())
	return Where(GreaterThan(x, zero), x, zero)
}

// MaxPool2x2 is a 2×2 max-pool with stride 2 on x [N, H, W, C], as PyTorch's
// MaxPool2d(2, 2): an odd last row or column is dropped, and on ties the
// gradient goes to the first maximum of the window in row-major order, as
// PyTorch's does. (Ties are common: a zero-padded border gives equal
// activations.) It takes the maximum of the two columns of each window, then
// of the two rows, each step a Where(a ≥ b, a, b) that keeps a on ties.
func MaxPool2x2(x *Node) *Node {
	n, h, w, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	if h < 2 || w < 2 {
		panic(fmt.Errorf("nn.MaxPool2x2: input %s is smaller than the 2×2 window", x.Shape()))
	}
	if h%2 != 0 || w%2 != 0 {
		x = Slice(x, AxisRange(), AxisRange(0, h/2*2), AxisRange(0, w/2*2), AxisRange())
	}
	h, w = h/2, w/2
	// [N, H/2, 2, W/2·2·C]: the window's column pair is the first and second
	// C values of each 2C run, so one reshape exposes it as an axis.
	xr := Reshape(x, n*h*2*w, 2, c)
	cols := firstMax(SliceAxis(xr, 1, AxisElem(0)), SliceAxis(xr, 1, AxisElem(1))) // [N·H/2·2·W/2, 1, C]
	rows := Reshape(cols, n*h, 2, w*c)
	y := firstMax(SliceAxis(rows, 1, AxisElem(0)), SliceAxis(rows, 1, AxisElem(1)))
	return Reshape(y, n, h, w, c)
}

// firstMax is max(a, b) whose gradient goes to a when a = b.
func firstMax(a, b *Node) *Node {
	return Where(GreaterOrEqual(a, b), a, b)
}

// AvgPool is PyTorch's AvgPool2d(k, stride) without padding on x [N, H, W, C].
// A window covering the whole input (ResNet18's head) is a mean over H and W.
func AvgPool(x *Node, k, stride int) *Node {
	n, h, w, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	if k < 1 || stride < 1 || k > h || k > w {
		panic(fmt.Errorf("nn.AvgPool: window %d, stride %d on input %s", k, stride, x.Shape()))
	}
	ho, wo := (h-k)/stride+1, (w-k)/stride+1
	if ho == 1 && wo == 1 {
		if k < h || k < w {
			x = Slice(x, AxisRange(), AxisRange(0, k), AxisRange(0, k), AxisRange())
		}
		return Reshape(ReduceMean(x, 1, 2), n, 1, 1, c)
	}
	var sum *Node
	for ki := range k {
		for kj := range k {
			win := Slice(x, AxisRange(),
				AxisRange(ki, ki+(ho-1)*stride+1).Stride(stride),
				AxisRange(kj, kj+(wo-1)*stride+1).Stride(stride),
				AxisRange())
			if sum == nil {
				sum = win
			} else {
				sum = Add(sum, win)
			}
		}
	}
	return DivScalar(sum, float64(k*k))
}

// NCHWToNHWC converts a PyTorch-layout batch [N, C, H, W] to [N, H, W, C]
// (a reshape when C = 1).
func NCHWToNHWC(x *Node) *Node {
	if x.Rank() != 4 {
		panic(fmt.Errorf("nn.NCHWToNHWC: want [N,C,H,W], got %s", x.Shape()))
	}
	d := x.Shape().Dimensions
	if d[1] == 1 {
		return Reshape(x, d[0], d[2], d[3], 1)
	}
	return TransposeAllAxes(x, 0, 2, 3, 1)
}

// FlattenNCHW flattens x [N, H, W, C] into [N, C·H·W] in PyTorch's (C, H, W)
// order, so that it meets PyTorch-layout linear weights.
func FlattenNCHW(x *Node) *Node {
	d := x.Shape().Dimensions
	if d[1]*d[2] > 1 && d[3] > 1 {
		x = TransposeAllAxes(x, 0, 3, 1, 2)
	}
	return Reshape(x, d[0], d[1]*d[2]*d[3])
}
