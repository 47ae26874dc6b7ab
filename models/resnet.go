package models

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/nn"
)

// newResNet18 is the seed's CIFAR-style ResNet18 (SEED-SPEC §2.3): a 3×3 stem
// without max-pool, four stages of two BasicBlocks (64, 128, 256, 512 planes;
// first strides 1, 2, 2, 2; 1×1 projection shortcuts named downsample), a 4×4
// average pool and a linear head.
func newResNet18(in, classes int) *arch {
	a := &arch{}
	type block struct {
		conv1, conv2 conv
		bn1, bn2     batchNorm
		down         *conv
		downBN       batchNorm
	}
	stem := a.newConv("conv1", in, 64, 3, 1, 1, false, convNormal(3, 64), initRule{})
	stemBN := a.newBatchNorm("bn1", 64)
	var blocks []block
	planes := 64
	for stage, out := range []int{64, 128, 256, 512} {
		for b := range 2 {
			name := fmt.Sprintf("layer%d.%d", stage+1, b)
			stride := 1
			if b == 0 && stage > 0 {
				stride = 2
			}
			var bl block
			bl.conv1 = a.newConv(name+".conv1", planes, out, 3, stride, 1, false, convNormal(3, out), initRule{})
			bl.bn1 = a.newBatchNorm(name+".bn1", out)
			bl.conv2 = a.newConv(name+".conv2", out, out, 3, 1, 1, false, convNormal(3, out), initRule{})
			bl.bn2 = a.newBatchNorm(name+".bn2", out)
			if stride != 1 || planes != out {
				d := a.newConv(name+".downsample.0", planes, out, 1, stride, 0, false, convNormal(1, out), initRule{})
				bl.down = &d
				bl.downBN = a.newBatchNorm(name+".downsample.1", out)
			}
			blocks = append(blocks, bl)
			planes = out
		}
	}
	fc := a.newLinear("fc", 512, classes, true, uniform(1/math.Sqrt(512)), uniform(1/math.Sqrt(512)))

	a.forward = func(f *pass, x *Node) *Node {
		n := x.Shape().Dimensions[0]
		h := nn.ReLU(f.bn(f.conv(nn.NCHWToNHWC(x), stem), stemBN))
		for _, bl := range blocks {
			out := nn.ReLU(f.bn(f.conv(h, bl.conv1), bl.bn1))
			out = f.bn(f.conv(out, bl.conv2), bl.bn2)
			shortcut := h
			if bl.down != nil {
				shortcut = f.bn(f.conv(h, *bl.down), bl.downBN)
			}
			h = nn.ReLU(Add(out, shortcut))
		}
		h.AssertDims(n, 4, 4, 512)
		h = nn.AvgPool(h, 4, 1) // kernel 32/2³ = 4, stride 1: [N,1,1,512]
		return f.linear(Reshape(h, n, 512), fc, nil)
	}
	return a
}
