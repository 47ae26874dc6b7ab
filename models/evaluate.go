package models

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/nn"
)

// Evaluation is the result of evaluating a model on one batch.
type Evaluation struct {
	// Loss is the mean cross-entropy.
	Loss float64
	// Correct counts the examples whose top logit is the label.
	Correct int
	// Logits are [N, classes], in the weights' dtype.
	Logits *tensors.Tensor
}

// Evaluator evaluates a model in evaluation mode (batch norm with running
// statistics) on batches. It compiles one graph per input shape and dtype and
// reuses it. It is not safe for concurrent use.
type Evaluator struct {
	m    *Model
	exec *Exec
}

// NewEvaluator prepares evaluations of m on backend.
func NewEvaluator(backend backends.Backend, m *Model) (*Evaluator, error) {
	np := len(m.params)
	exec, err := NewExec(backend, func(in []*Node) []*Node {
		params, bufs, x, y := in[:np], in[np:len(in)-2], in[len(in)-2], in[len(in)-1]
		logits, _ := m.Forward(params, bufs, x, false)
		return []*Node{nn.CrossEntropy(logits, y), nn.Correct(logits, y), logits}
	})
	if err != nil {
		return nil, fmt.Errorf("models: evaluator for %s: %w", m.name, err)
	}
	return &Evaluator{m: m, exec: exec.WithName("evaluate " + m.name)}, nil
}

// Evaluate returns the mean loss, the number of correct predictions and the
// logits of w on the batch x [N, C, 32, 32] (in w's dtype) with integer
// labels y [N].
func (e *Evaluator) Evaluate(w *Weights, x, y *tensors.Tensor) (Evaluation, error) {
	if w.Model != e.m {
		return Evaluation{}, fmt.Errorf("models: evaluator for %s given %s weights", e.m.name, w.Model.name)
	}
	if x.DType() != w.DType {
		return Evaluation{}, fmt.Errorf("models: evaluate %s: input is %s, weights are %s", e.m.name, x.DType(), w.DType)
	}
	args := make([]any, 0, len(w.Params)+len(w.Buffers)+2)
	for _, t := range w.Params {
		args = append(args, t)
	}
	for _, t := range w.Buffers {
		args = append(args, t)
	}
	args = append(args, x, y)
	out, err := e.exec.Exec(args...)
	if err != nil {
		return Evaluation{}, fmt.Errorf("models: evaluate %s: %w", e.m.name, err)
	}
	loss, err := values(out[0])
	if err != nil {
		return Evaluation{}, err
	}
	correct, err := tensors.CopyFlatData[int64](out[1])
	if err != nil {
		return Evaluation{}, err
	}
	return Evaluation{Loss: loss[0], Correct: int(correct[0]), Logits: out[2]}, nil
}

// InputTensor makes a batch tensor of dtype (float32 or float64) from values
// in any numeric type, e.g. an npz.Array's Float64s, with the given shape.
func InputTensor(vals []float64, dtype dtypes.DType, shape ...int) (*tensors.Tensor, error) {
	if err := checkDType(dtype); err != nil {
		return nil, err
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(vals) {
		return nil, fmt.Errorf("models: %d values for shape %v", len(vals), shape)
	}
	return newTensor(vals, dtype, shape), nil
}
