package nn

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
)

// BatchNorm constants of PyTorch's BatchNorm1d/2d defaults, which the seed uses.
const (
	BNMomentum = 0.1
	BNEpsilon  = 1e-5
)

// BatchNorm is PyTorch's BatchNorm1d ([N, C]) or BatchNorm2d (NHWC
// [N, H, W, C]) over the last axis of x, with affine parameters gamma and
// beta [C] and running statistics runMean and runVar [C].
//
// In training mode (train = true) it normalises with the batch mean and the
// biased batch variance — hand-written from means and squares, so the
// gradient flows through the batch statistics as in PyTorch — and returns the
// updated running statistics
//
//	mean' = (1−momentum)·mean + momentum·batchMean
//	var'  = (1−momentum)·var  + momentum·batchVar·n/(n−1)   (unbiased)
//
// where n is the number of values per channel; they carry no gradient. In
// evaluation mode it uses runMean and runVar and returns them unchanged.
func BatchNorm(x, gamma, beta, runMean, runVar *Node, train bool, momentum, eps float64) (y, newMean, newVar *Node) {
	c := x.Shape().Dimensions[x.Rank()-1]
	for _, p := range []*Node{gamma, beta, runMean, runVar} {
		if p.Rank() != 1 || p.Shape().Dimensions[0] != c {
			panic(fmt.Errorf("nn.BatchNorm: input %s has %d channels but a parameter is %s", x.Shape(), c, p.Shape()))
		}
	}
	axes := iotaFrom(0, x.Rank()-1)
	if !train {
		scale := Div(gamma, Sqrt(AddScalar(runVar, eps)))
		shift := Sub(beta, Mul(runMean, scale))
		return Add(Mul(x, perChannel(scale, x)), perChannel(shift, x)), runMean, runVar
	}
	n := x.Shape().Size() / c
	if n < 2 {
		panic(fmt.Errorf("nn.BatchNorm: training mode needs more than one value per channel, input is %s", x.Shape()))
	}
	mean := ReduceMean(x, axes...)
	xc := Sub(x, perChannel(mean, x))
	variance := ReduceMean(Square(xc), axes...)
	scale := Div(gamma, Sqrt(AddScalar(variance, eps)))
	y = Add(Mul(xc, perChannel(scale, x)), perChannel(beta, x))

	m := momentum
	newMean = Add(MulScalar(runMean, 1-m), MulScalar(StopGradient(mean), m))
	unbiased := MulScalar(StopGradient(variance), float64(n)/float64(n-1))
	newVar = Add(MulScalar(runVar, 1-m), MulScalar(unbiased, m))
	return y, newMean, newVar
}

// perChannel broadcasts a per-channel vector v [C] to the shape of x [..., C].
func perChannel(v, x *Node) *Node {
	dims := make([]int, x.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[len(dims)-1] = v.Shape().Dimensions[0]
	return BroadcastToShape(Reshape(v, dims...), x.Shape())
}
