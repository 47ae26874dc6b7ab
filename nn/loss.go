package nn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
)

// CrossEntropy is the mean cross-entropy of logits [N, K] against integer
// labels [N] (PyTorch's CrossEntropyLoss with reduction "mean"): the mean over
// the batch of logsumexp(z_i) − z_i[y_i]. The logsumexp subtracts the
// (gradient-stopped) row maximum for stability, which changes no derivative.
// For the sum over the batch multiply by N.
func CrossEntropy(logits, labels *Node) *Node {
	return ReduceMean(crossEntropyPerExample(logits, labels))
}

// crossEntropyPerExample returns the per-example losses [N].
func crossEntropyPerExample(logits, labels *Node) *Node {
	checkLabeled("nn.CrossEntropy", "logits", logits, labels)
	k := logits.Shape().Dimensions[1]
	m := StopGradient(ReduceMax(logits, 1))
	z := Sub(logits, BroadcastToShape(InsertAxes(m, 1), logits.Shape()))
	lse := Log(ReduceSum(Exp(z), 1))
	picked := ReduceSum(Mul(z, OneHot(labels, k, logits.DType())), 1)
	return Sub(lse, picked)
}

// checkLabeled panics unless out is [N, K] and labels are N integers:
// the arguments of a loss fn whose first argument is named what.
func checkLabeled(fn, what string, out, labels *Node) {
	if out.Rank() != 2 || labels.Rank() != 1 || labels.Shape().Dimensions[0] != out.Shape().Dimensions[0] {
		panic(fmt.Errorf("%s: want %s [N,K] and labels [N], got %s and %s", fn, what, out.Shape(), labels.Shape()))
	}
	if !labels.DType().IsInt() {
		panic(fmt.Errorf("%s: labels must be integers, got %s", fn, labels.DType()))
	}
}

// MeanSquaredError is the mean squared difference between outputs [N, K]
// and the one-hot encoding of integer labels [N], averaged over all N·K
// elements: PyTorch's MSELoss (reduction "mean") against
// one_hot(labels, K), the loss of regression-style classifiers.
func MeanSquaredError(outputs, labels *Node) *Node {
	checkLabeled("nn.MeanSquaredError", "outputs", outputs, labels)
	d := Sub(outputs, OneHot(labels, outputs.Shape().Dimensions[1], outputs.DType()))
	return ReduceAllMean(Mul(d, d))
}

// Correct counts the examples whose highest logit (the first one on ties, as
// torch.argmax) is the label: an int64 scalar.
func Correct(logits, labels *Node) *Node {
	pred := ArgMax(logits, 1, labels.DType())
	return ReduceAllSum(ConvertDType(Equal(pred, labels), dtypes.Int64))
}
