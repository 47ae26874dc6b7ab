package models

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/nn"
)

// vggA is configuration "A" of VGG: channels of the 3×3 convs, 0 = max-pool.
var vggA = []int{64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}

// newVGG11 is the seed's VGG11 / VGG11_bn (SEED-SPEC §2.2): the "A" feature
// stack (3×3 convs with bias, BatchNorm2d in _bn, ReLU, 2×2 max-pools) and a
// classifier Linear 512→4096 (no bias), BatchNorm1d, ReLU, Linear 4096→4096
// (no bias), BatchNorm1d, ReLU, Linear 4096→classes — the classifier has
// batch norm in both variants. Module indices follow nn.Sequential's
// numbering, which gives the PyTorch parameter names.
func newVGG11(in, classes int, withBN bool) *arch {
	a := &arch{}
	type stage struct {
		conv conv
		bn   batchNorm
		pool bool
	}
	var stages []stage
	idx, c := 0, in
	for _, v := range vggA {
		if v == 0 {
			stages[len(stages)-1].pool = true
			idx++ // MaxPool2d
			continue
		}
		s := stage{conv: a.newConv(fmt.Sprintf("features.%d", idx), c, v, 3, 1, 1, true, convNormal(3, v), constant(0))}
		idx++
		if withBN {
			s.bn = a.newBatchNorm(fmt.Sprintf("features.%d", idx), v)
			idx++
		}
		idx++ // ReLU
		stages = append(stages, s)
		c = v
	}
	fc0 := a.newLinear("classifier.0", 512, 4096, false, normal(0.01), constant(0))
	bn1 := a.newBatchNorm("classifier.1", 4096)
	fc3 := a.newLinear("classifier.3", 4096, 4096, false, normal(0.01), constant(0))
	bn4 := a.newBatchNorm("classifier.4", 4096)
	fc6 := a.newLinear("classifier.6", 4096, classes, true, normal(0.01), constant(0))

	a.forward = func(f *pass, x *Node) *Node {
		n := x.Shape().Dimensions[0]
		h := nn.NCHWToNHWC(x)
		for _, s := range stages {
			h = f.conv(h, s.conv)
			if withBN {
				h = f.bn(h, s.bn)
			}
			if s.pool {
				h = nn.MaxPool2x2(h) // before the ReLU: they commute
			}
			h = nn.ReLU(h)
		}
		h.AssertDims(n, 1, 1, 512)
		h = Reshape(h, n, 512)
		h = nn.ReLU(f.bn(f.linear(h, fc0, nil), bn1))
		h = nn.ReLU(f.bn(f.linear(h, fc3, nil), bn4))
		return f.linear(h, fc6, nil)
	}
	return a
}
