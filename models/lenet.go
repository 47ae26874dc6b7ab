package models

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/nn"
)

// newLeNet is the seed's LeNet (SEED-SPEC §2.1): conv 5×5 → ReLU → max-pool,
// twice, then 400 → 120 → 84 → classes, PyTorch default initialisation.
func newLeNet(in, classes int) *arch {
	a := &arch{}
	conv1 := a.newConv("conv1", in, 6, 5, 1, 0, true, torchDefault(in*25), torchDefault(in*25))
	conv2 := a.newConv("conv2", 6, 16, 5, 1, 0, true, torchDefault(6*25), torchDefault(6*25))
	fc1 := a.newLinear("fc1", 16*5*5, 120, true, torchDefault(400), torchDefault(400))
	fc2 := a.newLinear("fc2", 120, 84, true, torchDefault(120), torchDefault(120))
	fc3 := a.newLinear("fc3", 84, classes, true, torchDefault(84), torchDefault(84))

	a.forward = func(f *pass, x *Node) *Node {
		n := x.Shape().Dimensions[0]
		h := nn.NCHWToNHWC(x)
		// ReLU and max-pool commute; pooling first makes the ReLU 4× smaller.
		h = nn.ReLU(nn.MaxPool2x2(f.conv(h, conv1))) // [N,14,14,6]
		h = nn.ReLU(nn.MaxPool2x2(f.conv(h, conv2))) // [N,5,5,16]
		h.AssertDims(n, 5, 5, 16)
		// PyTorch flattens (C,H,W); h flattens (H,W,C). Reordering fc1's 400
		// columns to (H,W,C) costs 48k values instead of 100k per image batch.
		w1 := Reshape(TransposeAllAxes(Reshape(f.params[fc1.w], 120, 16, 5, 5), 0, 2, 3, 1), 120, 400)
		h = nn.ReLU(f.linear(Reshape(h, n, 400), fc1, w1))
		h = nn.ReLU(f.linear(h, fc2, nil))
		return f.linear(h, fc3, nil)
	}
	return a
}
