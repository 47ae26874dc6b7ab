package nn

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// readout turns an op's output y into a smooth scalar Σ r⊙tanh(y) with a fixed
// random r (extra[0]), so that derivatives of every order are non-trivial.
func readout(y *Node, extra []*Node) *Node {
	return ReduceAllSum(Mul(extra[0], Tanh(y)))
}

func readoutTensor(seed uint64, dims ...int) []*tensors.Tensor {
	return []*tensors.Tensor{randArr(rand.New(rand.NewPCG(seed, 7)), 1, dims...).tensor()}
}

// TestDerivatives checks first, second and third derivatives of every op
// against central finite differences in float64.
func TestDerivatives(t *testing.T) {
	cases := []struct {
		name  string
		dims  [][]int
		out   []int // output shape, for the readout
		scale float64
		fn    func(p []*Node) *Node
	}{
		{"Linear", [][]int{{3, 4}, {5, 4}, {5}}, []int{3, 5}, 0.5,
			func(p []*Node) *Node { return Linear(p[0], p[1], p[2]) }},
		{"Conv2D 3x3 s1 p0 batched", [][]int{{2, 6, 5, 3}, {4, 3, 3, 3}, {4}}, []int{2, 4, 3, 4}, 0.5,
			func(p []*Node) *Node { return Conv2D(p[0], p[1], p[2], 1, 0) }},
		{"Conv2D 3x3 s1 p1 flat", [][]int{{2, 3, 3, 2}, {16, 2, 3, 3}, {16}}, []int{2, 3, 3, 16}, 0.5,
			func(p []*Node) *Node { return Conv2D(p[0], p[1], p[2], 1, 1) }},
		{"Conv2D 3x3 s2 p1 no bias", [][]int{{2, 6, 5, 3}, {4, 3, 3, 3}}, []int{2, 3, 3, 4}, 0.5,
			func(p []*Node) *Node { return Conv2D(p[0], p[1], nil, 2, 1) }},
		{"Conv2D 1x1 s2", [][]int{{2, 5, 5, 3}, {4, 3, 1, 1}}, []int{2, 3, 3, 4}, 0.5,
			func(p []*Node) *Node { return Conv2D(p[0], p[1], nil, 2, 0) }},
		{"Conv2D 5x5 C=1", [][]int{{2, 7, 6, 1}, {3, 1, 5, 5}, {3}}, []int{2, 3, 2, 3}, 0.5,
			func(p []*Node) *Node { return Conv2D(p[0], p[1], p[2], 1, 0) }},
		{"MaxPool2x2", [][]int{{2, 4, 6, 3}}, []int{2, 2, 3, 3}, 1,
			func(p []*Node) *Node { return MaxPool2x2(p[0]) }},
		{"MaxPool2x2 odd", [][]int{{1, 5, 5, 2}}, []int{1, 2, 2, 2}, 1,
			func(p []*Node) *Node { return MaxPool2x2(p[0]) }},
		{"AvgPool k2 s1", [][]int{{2, 4, 3, 2}}, []int{2, 3, 2, 2}, 1,
			func(p []*Node) *Node { return AvgPool(p[0], 2, 1) }},
		{"AvgPool global", [][]int{{2, 4, 4, 3}}, []int{2, 1, 1, 3}, 1,
			func(p []*Node) *Node { return AvgPool(p[0], 4, 1) }},
		{"ReLU", [][]int{{4, 5}}, []int{4, 5}, 1,
			func(p []*Node) *Node { return ReLU(p[0]) }},
		{"BatchNorm2d train", [][]int{{4, 3, 2, 3}, {3}, {3}}, []int{4, 3, 2, 3}, 1,
			func(p []*Node) *Node {
				y, _, _ := BatchNorm(p[0], p[1], p[2], ZerosLike(p[1]), OnesLike(p[1]), true, BNMomentum, BNEpsilon)
				return y
			}},
		{"BatchNorm1d train", [][]int{{5, 4}, {4}, {4}}, []int{5, 4}, 1,
			func(p []*Node) *Node {
				y, _, _ := BatchNorm(p[0], p[1], p[2], ZerosLike(p[1]), OnesLike(p[1]), true, BNMomentum, BNEpsilon)
				return y
			}},
		{"BatchNorm eval", [][]int{{3, 2, 2, 3}, {3}, {3}, {3}}, []int{3, 2, 2, 3}, 1,
			func(p []*Node) *Node {
				runVar := AddScalar(Square(p[3]), 0.5)
				y, _, _ := BatchNorm(p[0], p[1], p[2], p[3], runVar, false, BNMomentum, BNEpsilon)
				return y
			}},
		{"Slice strided", [][]int{{3, 7, 5}}, []int{2, 3, 2}, 1,
			func(p []*Node) *Node {
				return Slice(p[0], AxisRange(1, 3), AxisRange(1, 6).Stride(2), AxisRange(0, 5).Stride(3))
			}},
		{"DotGeneral permuted batch", [][]int{{2, 3, 4, 5}, {5, 2, 6, 3}}, []int{2, 4, 6}, 0.5,
			func(p []*Node) *Node { return DotGeneral(p[0], []int{3, 1}, []int{0}, p[1], []int{0, 3}, []int{1}) }},
		{"Dot matrix", [][]int{{3, 4}, {4, 2}}, []int{3, 2}, 0.5,
			func(p []*Node) *Node { return Dot(p[0], p[1]) }},
		{"Dot matrix-vector", [][]int{{3, 4}, {4}}, []int{3}, 0.5,
			func(p []*Node) *Node { return Dot(p[0], p[1]) }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkDerivatives(t, uint64(100+i), c.dims, c.scale, readoutTensor(uint64(i), c.out...),
				func(p, extra []*Node) *Node { return readout(c.fn(p), extra) })
		})
	}
}

// TestCrossEntropyDerivatives checks the loss's derivatives to third order.
func TestCrossEntropyDerivatives(t *testing.T) {
	labels := tensors.FromFlatDataAndDimensions([]int64{2, 0, 3, 3, 1}, 5)
	checkDerivatives(t, 7, [][]int{{5, 4}}, 1.5, []*tensors.Tensor{labels},
		func(p, extra []*Node) *Node { return CrossEntropy(p[0], extra[0]) })
}

// TestMeanSquaredErrorDerivatives checks the MSE loss's derivatives to
// third order.
func TestMeanSquaredErrorDerivatives(t *testing.T) {
	labels := tensors.FromFlatDataAndDimensions([]int64{2, 0, 3, 3, 1}, 5)
	checkDerivatives(t, 8, [][]int{{5, 4}}, 1.5, []*tensors.Tensor{labels},
		func(p, extra []*Node) *Node { return MeanSquaredError(p[0], extra[0]) })
}

// TestTinyNetDerivatives differentiates a small LeNet-like chain (conv, pool,
// ReLU, BN, linear, cross-entropy) three times with respect to all of its
// parameters at once, as HTR does.
func TestTinyNetDerivatives(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	x := randArr(rng, 1, 4, 6, 6, 1).tensor()
	labels := tensors.FromFlatDataAndDimensions([]int32{1, 0, 2, 1}, 4)
	dims := [][]int{{3, 1, 3, 3}, {3}, {3}, {3}, {3, 12}, {3}}
	checkDerivatives(t, 11, dims, 0.7, []*tensors.Tensor{x, labels}, func(p, extra []*Node) *Node {
		h := Conv2D(extra[0], p[0], p[1], 1, 0) // [4,4,4,3]
		h, _, _ = BatchNorm(h, p[2], p[3], ZerosLike(p[2]), OnesLike(p[2]), true, BNMomentum, BNEpsilon)
		h = ReLU(MaxPool2x2(h)) // [4,2,2,3]
		logits := Linear(FlattenNCHW(h), p[4], p[5])
		return CrossEntropy(logits, extra[1])
	})
}
