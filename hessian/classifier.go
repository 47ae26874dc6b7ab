package hessian

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/models"
)

// Classifier is a network as a graph function of explicit parameter nodes,
// together with the parameter values at which Hessians are taken: what
// NewModelHessian differentiates twice.
type Classifier struct {
	// Names and Values are the trainable parameters, in order: the order
	// in which a full-Hessian vector concatenates them (each tensor
	// flattened row-major). Every value has the classifier's dtype,
	// float32 or float64.
	Names  []string
	Values []*tensors.Tensor
	// Fixed are further inputs of Logits that are not differentiated,
	// e.g. batch-norm running statistics, in the same dtype.
	Fixed []*tensors.Tensor
	// Logits builds the logits [N, classes] of the batch x [N, …] from
	// nodes shaped as Values and Fixed. It may panic on misuse, as GoMLX
	// graph functions do; NewModelHessian returns the panic as an error.
	Logits func(params, fixed []*Node, x *Node) *Node
	// Loss is the mean loss of a batch's logits against its integer
	// labels; nil means nn.CrossEntropy (nn.MeanSquaredError is the other
	// choice).
	Loss func(logits, labels *Node) *Node
	// Input, when set, is the shape of one example the network takes (-1
	// where any size goes), and Classes, when positive, its number of
	// logits: NewModelHessian checks the data against them, so that
	// images of the wrong shape or a label without a logit fail with a
	// message instead of a graph-building panic or a silently wrong loss.
	Input   []int
	Classes int
}

// ModelClassifier returns the classifier of a model at weights w. With
// train = false batch norm normalises with the running statistics
// (PyTorch's eval mode); with train = true with the statistics of each
// batch (train mode; the running statistics are then unused). The weights'
// tensors are shared, not copied.
func ModelClassifier(w *models.Weights, train bool) *Classifier {
	m := w.Model
	c := &Classifier{Values: w.Params, Fixed: w.Buffers,
		Input: []int{m.InChannels(), models.InputSize, models.InputSize}, Classes: m.Classes()}
	for _, e := range m.Params() {
		c.Names = append(c.Names, e.Name)
	}
	c.Logits = func(params, fixed []*Node, x *Node) *Node {
		logits, _ := m.Forward(params, fixed, x, train)
		return logits
	}
	return c
}

// DType returns the dtype of the classifier's values.
func (c *Classifier) DType() dtypes.DType {
	if len(c.Values) == 0 {
		return dtypes.InvalidDType
	}
	return c.Values[0].DType()
}

// check verifies that the classifier is complete and of one float dtype.
func (c *Classifier) check() error {
	if len(c.Values) == 0 || len(c.Names) != len(c.Values) {
		return fmt.Errorf("classifier: %d parameter names for %d values; want at least one of each, as many names as values", len(c.Names), len(c.Values))
	}
	if c.Logits == nil {
		return fmt.Errorf("classifier: no Logits function")
	}
	dt := c.DType()
	if dt != dtypes.Float32 && dt != dtypes.Float64 {
		return fmt.Errorf("classifier: parameter %s is %s; want float32 or float64", c.Names[0], dt)
	}
	for i, t := range slices.Concat(c.Values, c.Fixed) {
		name := fmt.Sprintf("fixed input %d", i-len(c.Values))
		if i < len(c.Values) {
			name = c.Names[i]
		}
		if t == nil {
			return fmt.Errorf("classifier: %s has no value", name)
		}
		if t.DType() != dt {
			return fmt.Errorf("classifier: %s is %s, but %s is %s: want one dtype", name, t.DType(), c.Names[0], dt)
		}
	}
	return nil
}

// FullTarget is the name of the target that covers every parameter.
const FullTarget = "full"

// Target is the set of parameters a Hessian is taken with respect to, all
// others held fixed: every parameter (the full Hessian) or one tensor (its
// diagonal block, the seed's LayerHessian).
type Target struct {
	// Name is FullTarget or the parameter's name.
	Name string
	// Params are indices into Classifier.Values, ascending.
	Params []int
}

// Dim returns the target's dimension in c: its number of parameter values.
func (t Target) Dim(c *Classifier) int {
	n := 0
	for _, p := range t.Params {
		if p >= 0 && p < len(c.Values) {
			n += c.Values[p].Size()
		}
	}
	return n
}

// Target resolves a target name: FullTarget, or the name of one parameter.
// The error lists the names known.
func (c *Classifier) Target(name string) (Target, error) {
	if name == FullTarget {
		t := Target{Name: name}
		for i := range c.Values {
			t.Params = append(t.Params, i)
		}
		return t, nil
	}
	if i := slices.Index(c.Names, name); i >= 0 {
		return Target{Name: name, Params: []int{i}}, nil
	}
	return Target{}, fmt.Errorf("no parameter %q (want %s or one of %s)", name, FullTarget, strings.Join(c.Names, ", "))
}

// Targets resolves several target names (see Target).
func (c *Classifier) Targets(names ...string) ([]Target, error) {
	ts := make([]Target, len(names))
	for i, n := range names {
		t, err := c.Target(n)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	return ts, nil
}

// Data is the set of examples over which the loss is averaged.
type Data struct {
	// X holds N examples of Shape each, row-major (e.g. N images [1, 32,
	// 32] for an NCHW classifier), converted to the classifier's dtype.
	X []float32
	// Shape is the shape of one example.
	Shape []int
	// Y holds the N labels.
	Y []int32
}

// checkData checks the data against what the classifier takes (Input,
// Classes), when it says.
func (c *Classifier) checkData(d Data) error {
	fits := c.Input == nil || len(c.Input) == len(d.Shape)
	for i := range c.Input {
		if fits && c.Input[i] >= 0 && c.Input[i] != d.Shape[i] {
			fits = false
		}
	}
	if !fits {
		return fmt.Errorf("data: examples of shape %v, but the network takes %v", d.Shape, c.Input)
	}
	if c.Classes > 0 && len(d.Y) > 0 {
		if lo, hi := slices.Min(d.Y), slices.Max(d.Y); lo < 0 || int(hi) >= c.Classes {
			return fmt.Errorf("data: labels %d…%d, but the network has %d outputs (labels 0…%d)", lo, hi, c.Classes, c.Classes-1)
		}
	}
	return nil
}

// n returns the number of examples, checking the sizes agree.
func (d Data) n() (int, error) {
	size := 1
	for _, s := range d.Shape {
		if s < 1 {
			return 0, fmt.Errorf("data: example shape %v", d.Shape)
		}
		size *= s
	}
	if len(d.Y) == 0 {
		return 0, fmt.Errorf("data: no examples")
	}
	if len(d.X) != len(d.Y)*size {
		return 0, fmt.Errorf("data: %d values for %d examples of shape %v (want %d)", len(d.X), len(d.Y), d.Shape, len(d.Y)*size)
	}
	return len(d.Y), nil
}
