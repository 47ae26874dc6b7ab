package onnxmodel

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/npz"
)

// Weights are the values of a model's parameters and batch-norm running
// statistics, as GoMLX tensors.
type Weights struct {
	// Model is the network the weights belong to.
	Model *Model
	// DType is Float32 or Float64; every tensor has it.
	DType dtypes.DType
	// Params holds the trainable tensors in Model.Params order.
	Params []*tensors.Tensor
	// Buffers holds the batch-norm running statistics in Model.Buffers
	// order.
	Buffers []*tensors.Tensor
}

// FileDType is the precision of the file's weights: Float64 when any is
// stored in double precision, else Float32.
func (m *Model) FileDType() dtypes.DType {
	for _, e := range m.state {
		if m.values[e.Name].dtype == dtypes.Float64 {
			return dtypes.Float64
		}
	}
	return dtypes.Float32
}

// Weights returns the weights stored in the file, converted to dtype
// (float32 or float64).
func (m *Model) Weights(dtype dtypes.DType) (*Weights, error) {
	vals := make(map[string][]float64, len(m.state))
	for _, e := range m.state {
		vals[e.Name] = m.values[e.Name].f
	}
	return m.weightsFrom(vals, dtype)
}

// weightsFrom builds Weights from float64 values by name.
func (m *Model) weightsFrom(vals map[string][]float64, dtype dtypes.DType) (*Weights, error) {
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 {
		return nil, fmt.Errorf("onnxmodel: dtype %s: want float32 or float64", dtype)
	}
	w := &Weights{Model: m, DType: dtype}
	for _, e := range m.Params() {
		w.Params = append(w.Params, newTensor(vals[e.Name], dtype, e.Shape))
	}
	for _, e := range m.Buffers() {
		w.Buffers = append(w.Buffers, newTensor(vals[e.Name], dtype, e.Shape))
	}
	return w, nil
}

func newTensor(v []float64, dtype dtypes.DType, shape []int) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(slices.Clone(v), shape...)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(f, shape...)
}

// Arrays returns the weights as named arrays in the model's state order
// (parameters and running statistics interleaved as in the file), in the
// weights' dtype: with names kept by the export, a PyTorch state_dict
// without num_batches_tracked.
func (w *Weights) Arrays() ([]npz.Named, error) {
	m := w.Model
	byName := map[string]*tensors.Tensor{}
	for i, e := range m.Params() {
		byName[e.Name] = w.Params[i]
	}
	for i, e := range m.Buffers() {
		byName[e.Name] = w.Buffers[i]
	}
	out := make([]npz.Named, 0, len(m.state))
	for _, e := range m.state {
		t := byName[e.Name]
		if t == nil || !slices.Equal(t.Shape().Dimensions, e.Shape) || t.DType() != w.DType {
			return nil, fmt.Errorf("onnxmodel: weights: %s is %v, want %s%v", e.Name, describe(t), w.DType, e.Shape)
		}
		a := &npz.Array{Shape: slices.Clone(e.Shape)}
		var err error
		if w.DType == dtypes.Float64 {
			a.Data, err = tensors.CopyFlatData[float64](t)
		} else {
			a.Data, err = tensors.CopyFlatData[float32](t)
		}
		if err != nil {
			return nil, fmt.Errorf("onnxmodel: weights: %s: %w", e.Name, err)
		}
		out = append(out, npz.Named{Name: e.Name, Array: a})
	}
	return out, nil
}

func describe(t *tensors.Tensor) any {
	if t == nil {
		return "missing"
	}
	return t.Shape()
}

// WriteFile writes the weights to path as an .npz archive (see Arrays).
func (w *Weights) WriteFile(path string) error {
	arrays, err := w.Arrays()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return npz.WriteFile(path, arrays)
}

// ReadWeights reads weights written by WriteFile (or any .npz holding
// every parameter and running statistic of the model by name, with its
// shape, and nothing else) and converts them to dtype. The error lists
// every missing, unexpected and misshapen array.
func (m *Model) ReadWeights(path string, dtype dtypes.DType) (*Weights, error) {
	ar, err := npz.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var problems []string
	vals := map[string][]float64{}
	known := map[string]bool{}
	for _, e := range m.state {
		known[e.Name] = true
		a, ok := ar.Arrays[e.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %q %v", e.Name, e.Shape))
		case !slices.Equal(a.Shape, e.Shape):
			problems = append(problems, fmt.Sprintf("%q is %v, want %v", e.Name, a.Shape, e.Shape))
		default:
			vals[e.Name] = a.Float64s()
		}
	}
	for _, n := range ar.Names {
		if !known[n] {
			problems = append(problems, fmt.Sprintf("unexpected %q", n))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: not the weights of %s: %s", path, m.path, strings.Join(problems, "; "))
	}
	return m.weightsFrom(vals, dtype)
}

// Finalize releases the tensors' memory now rather than at garbage
// collection. w must not be used afterwards.
func (w *Weights) Finalize() error {
	var errs []error
	for _, t := range slices.Concat(w.Params, w.Buffers) {
		if t != nil {
			errs = append(errs, t.FinalizeAll())
		}
	}
	return errors.Join(errs...)
}

// Classifier returns the network at weights w for package hessian. With
// train = false batch norm normalises with the running statistics (eval
// mode), with train = true with each batch's statistics. The tensors are
// shared, not copied.
func (w *Weights) Classifier(train bool) *hessian.Classifier {
	m := w.Model
	c := &hessian.Classifier{Values: w.Params, Fixed: w.Buffers, Input: m.InputShape(), Classes: max(m.Classes(), 0)}
	for _, e := range m.Params() {
		c.Names = append(c.Names, e.Name)
	}
	c.Logits = func(params, fixed []*Node, x *Node) *Node { return m.Forward(params, fixed, x, train) }
	return c
}
