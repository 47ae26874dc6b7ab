// Package models defines the seed's four networks — LeNet, VGG11, VGG11_bn
// and ResNet18 — as pure functions of explicit parameter tensors, with
// PyTorch's parameter names, layouts, orders and initialisations, and reads
// and writes their weights as PyTorch state_dict .npz files.
//
// # A functional API
//
// A Model holds no weights. Its Forward takes the parameters and the
// batch-norm running statistics as graph nodes, so that the training step,
// Hessian-vector products for one tensor or all of them, and the Hessian-trace
// penalty (a third derivative) are all plain graph functions of (params,
// buffers, x, y[, v]). Weights holds the values on the Go side.
//
// A training step with gradients of all parameters (plain SGD):
//
//	m, _ := models.New(models.LeNet, 1, 10)
//	np, nb := len(m.Params()), len(m.Buffers())
//	step, _ := graph.NewExec(backend, func(in []*graph.Node) []*graph.Node {
//		params, bufs := in[:np], in[np:np+nb]
//		x, y, lr := in[np+nb], in[np+nb+1], in[np+nb+2]
//		logits, newBufs := m.Forward(params, bufs, x, true)
//		loss := nn.CrossEntropy(logits, y)
//		grads := graph.Gradient(loss, params...)
//		out := []*graph.Node{loss}
//		for i, p := range params {
//			out = append(out, graph.Sub(p, graph.Mul(lr, grads[i])))
//		}
//		return append(out, newBufs...)
//	})
//	// args: w.Params..., w.Buffers..., x, y, lr; then w.Params = outs[1:1+np]
//	// and w.UpdateBuffers(outs[1+np:]).
//
// A Hessian-vector product for the single tensor "conv2.weight" (the seed's
// LayerHessian; the other parameters are held fixed), in evaluation mode:
//
//	i := m.ParamIndex("conv2.weight")
//	hvp, _ := graph.NewExec(backend, func(in []*graph.Node) []*graph.Node {
//		params, bufs := in[:np], in[np:np+nb]
//		x, y, v := in[np+nb], in[np+nb+1], in[np+nb+2]
//		logits, _ := m.Forward(params, bufs, x, false)
//		loss := nn.CrossEntropy(logits, y)
//		g := graph.Gradient(loss, params[i])[0]
//		return []*graph.Node{graph.Gradient(graph.ReduceAllSum(graph.Mul(g, v)), params[i])[0]}
//	})
//
// For the full Hessian take the gradient with respect to all params, form
// Σᵢ⟨gᵢ, vᵢ⟩ and differentiate it again with respect to all params.
//
// Inside, activations are NHWC (see package nn); inputs and weights are in
// PyTorch's layouts, so a PyTorch checkpoint needs no conversion.
package models

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
)

// Architecture names as the seed's model list spells them.
const (
	LeNet    = "LeNet"
	VGG11    = "VGG11"
	VGG11BN  = "VGG11_bn"
	ResNet18 = "ResNet18"
)

// Names lists the architectures New accepts.
func Names() []string { return []string{LeNet, VGG11, VGG11BN, ResNet18} }

// InputSize is the side of the square inputs every model takes (the seed pads
// 28×28 datasets to 32×32).
const InputSize = 32

// Kind classifies one state_dict entry.
type Kind int

const (
	// Param is a trainable parameter (PyTorch's named_parameters).
	Param Kind = iota
	// Buffer is a floating-point batch-norm buffer: running_mean or running_var.
	Buffer
	// Counter is a batch-norm num_batches_tracked (int64 scalar).
	Counter
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Param:
		return "param"
	case Buffer:
		return "buffer"
	case Counter:
		return "counter"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Entry describes one tensor of the model's state_dict.
type Entry struct {
	// Name is the PyTorch state_dict key, e.g. "features.0.weight".
	Name string
	// Shape is PyTorch's shape (conv [O, I, kH, kW], linear [out, in]); empty
	// for a scalar counter.
	Shape []int
	// Kind says whether it is trained, a running statistic, or a counter.
	Kind Kind
	// init is the seed's initialisation of the entry.
	init initRule
}

// Size is the number of values in the entry.
func (e Entry) Size() int {
	n := 1
	for _, d := range e.Shape {
		n *= d
	}
	return n
}

// Model is one architecture for a given input channel count and class count.
// It is immutable and safe for concurrent use.
type Model struct {
	name       string
	inChannels int
	classes    int

	state    []Entry // state_dict order
	params   []int   // indices into state, Kind Param, named_parameters order
	buffers  []int   // indices into state, Kind Buffer
	counters []int   // indices into state, Kind Counter
	layers   []string

	forward func(f *pass, x *Node) *Node
}

// New returns the named architecture for inputs [N, inChannels, 32, 32] and
// classes outputs.
func New(name string, inChannels, classes int) (*Model, error) {
	if inChannels < 1 || classes < 1 {
		return nil, fmt.Errorf("models: %s with %d input channels and %d classes: both must be ≥ 1", name, inChannels, classes)
	}
	var a *arch
	switch name {
	case LeNet:
		a = newLeNet(inChannels, classes)
	case VGG11:
		a = newVGG11(inChannels, classes, false)
	case VGG11BN:
		a = newVGG11(inChannels, classes, true)
	case ResNet18:
		a = newResNet18(inChannels, classes)
	default:
		return nil, fmt.Errorf("models: unknown model %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	m := &Model{name: name, inChannels: inChannels, classes: classes, state: a.state, layers: a.layers, forward: a.forward}
	for i, e := range m.state {
		switch e.Kind {
		case Param:
			m.params = append(m.params, i)
		case Buffer:
			m.buffers = append(m.buffers, i)
		case Counter:
			m.counters = append(m.counters, i)
		}
	}
	return m, nil
}

// Name is the architecture name, e.g. "VGG11_bn".
func (m *Model) Name() string { return m.name }

// InChannels is the number of input channels.
func (m *Model) InChannels() int { return m.inChannels }

// Classes is the number of outputs.
func (m *Model) Classes() int { return m.classes }

// State lists every state_dict entry in PyTorch's registration order.
func (m *Model) State() []Entry { return slices.Clone(m.state) }

// Params lists the trainable parameters in PyTorch's named_parameters order:
// the order of Forward's params argument and of Weights.Params.
func (m *Model) Params() []Entry { return m.pick(m.params) }

// Buffers lists the batch-norm running statistics (running_mean, running_var
// of each BN layer in turn): the order of Forward's buffers argument and of
// Weights.Buffers. It is empty for LeNet.
func (m *Model) Buffers() []Entry { return m.pick(m.buffers) }

// Counters lists the num_batches_tracked entries, one per BN layer, in the
// order of Weights.Batches.
func (m *Model) Counters() []Entry { return m.pick(m.counters) }

func (m *Model) pick(idx []int) []Entry {
	out := make([]Entry, len(idx))
	for i, j := range idx {
		out[i] = m.state[j]
	}
	return out
}

// Layers lists the seed's "valid layers" for layer-wise Hessians: the weight
// of every Conv2d and Linear module in registration order (5 for LeNet, 11 for
// the VGGs, 21 for ResNet18). Biases and BN parameters are not layers.
func (m *Model) Layers() []string { return slices.Clone(m.layers) }

// ParamIndex returns the position of the named trainable parameter in Params,
// or -1.
func (m *Model) ParamIndex(name string) int {
	for i, j := range m.params {
		if m.state[j].Name == name {
			return i
		}
	}
	return -1
}

// ParamCount is the number of trainable values (PyTorch's
// sum(p.numel() for p in model.parameters())).
func (m *Model) ParamCount() int {
	n := 0
	for _, j := range m.params {
		n += m.state[j].Size()
	}
	return n
}

// Forward builds the network on x [N, C, 32, 32] (NCHW, as PyTorch) and returns
// the logits [N, classes] and the batch-norm running statistics after this
// batch, in Buffers order.
//
// params and buffers are nodes shaped as Params and Buffers, in that order,
// all of x's dtype. With train = true batch norm uses the batch statistics and
// newBuffers are the updated running statistics (PyTorch's train mode); with
// train = false it uses buffers, which are returned unchanged (eval mode).
// The seed's "legacy" behaviour of training in eval mode is train = false.
//
// Like every GoMLX graph-building function it panics on misuse (wrong counts,
// shapes or dtypes), with an error that names the offending tensor; graph.Exec
// turns the panic into an error.
func (m *Model) Forward(params, buffers []*Node, x *Node, train bool) (logits *Node, newBuffers []*Node) {
	if len(params) != len(m.params) {
		panic(fmt.Errorf("models.%s.Forward: got %d params, want %d", m.name, len(params), len(m.params)))
	}
	if len(buffers) != len(m.buffers) {
		panic(fmt.Errorf("models.%s.Forward: got %d buffers, want %d", m.name, len(buffers), len(m.buffers)))
	}
	want := []int{x.Shape().Dimensions[0], m.inChannels, InputSize, InputSize}
	if x.Rank() != 4 || !slices.Equal(x.Shape().Dimensions[1:], want[1:]) {
		panic(fmt.Errorf("models.%s.Forward: input is %s, want [N, %d, %d, %d]", m.name, x.Shape(), m.inChannels, InputSize, InputSize))
	}
	check := func(nodes []*Node, entries []Entry) {
		for i, n := range nodes {
			if !slices.Equal(n.Shape().Dimensions, entries[i].Shape) || n.DType() != x.DType() {
				panic(fmt.Errorf("models.%s.Forward: %s is %s, want %s%v", m.name, entries[i].Name, n.Shape(), x.DType(), entries[i].Shape))
			}
		}
	}
	check(params, m.Params())
	check(buffers, m.Buffers())
	f := &pass{params: params, buffers: buffers, train: train, newBuffers: slices.Clone(buffers)}
	logits = m.forward(f, x)
	return logits, f.newBuffers
}
