package onnxmodel

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // graphs built only for their shapes
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/models"
)

// Forward builds the network on the batch x [N, example…] and returns its
// output (the logits [N, classes]).
//
// params and buffers are nodes shaped as Params and Buffers, in that
// order, all of x's dtype (float32 or float64): the whole graph computes
// in that dtype, the file's constants converted to it. With train = false
// batch normalisation uses the running statistics (buffers); with train =
// true it uses the statistics of the batch, with gradients through them,
// as PyTorch's training mode does. Dropout is the identity either way.
//
// Like GoMLX's graph functions it panics on misuse and on what the
// conversion cannot do (an attribute value it does not support, a shape
// that does not fit), with an error naming the ONNX node; graph.Exec turns
// the panic into an error.
func (m *Model) Forward(params, buffers []*Node, x *Node, train bool) *Node {
	if len(params) != len(m.params) || len(buffers) != len(m.buffers) {
		panic(fmt.Errorf("onnxmodel.Forward: got %d params and %d buffers, want %d and %d", len(params), len(buffers), len(m.params), len(m.buffers)))
	}
	dt := x.DType()
	if dt != dtypes.Float32 && dt != dtypes.Float64 {
		panic(fmt.Errorf("onnxmodel.Forward: input is %s, want float32 or float64", dt))
	}
	b := &builder{m: m, g: x.Graph(), dtype: dt, train: train, env: map[string]*value{}}
	for i, e := range m.Params() {
		b.bind(e, params[i])
	}
	for i, e := range m.Buffers() {
		b.bind(e, buffers[i])
	}
	for name, t := range m.values {
		if b.env[name] == nil {
			b.env[name] = &value{static: t}
		}
	}
	b.env[m.input.name] = &value{node: x}
	for _, n := range m.nodes {
		b.convert(n)
	}
	out := b.env[m.output.name]
	if out == nil {
		panic(fmt.Errorf("onnxmodel: the graph never computes its output %q", m.output.name))
	}
	return b.nchw(out)
}

// bind makes a parameter or buffer node the value of its initializer.
func (b *builder) bind(e models.Entry, n *Node) {
	if !slices.Equal(n.Shape().Dimensions, e.Shape) || n.DType() != b.dtype {
		panic(fmt.Errorf("onnxmodel.Forward: %s is %s, want %s%v", e.Name, n.Shape(), b.dtype, e.Shape))
	}
	b.env[e.Name] = &value{node: n}
}

// builder converts one forward pass.
type builder struct {
	m     *Model
	g     *Graph
	dtype dtypes.DType
	train bool
	env   map[string]*value
}

// value is one ONNX tensor during conversion: a graph node, or a value
// known when the graph is built (static: shapes, constants, and what is
// computed from them alone, such as PyTorch's Shape → Gather → Concat →
// Reshape chains). A rank-4 node may be held in NHWC layout instead of
// ONNX's NCHW, so that convolutions, pooling and batch norm — which work
// on NHWC (package nn) — do not transpose back and forth between them;
// element-wise ops keep whichever layout their operands have.
type value struct {
	node   *Node   // ONNX layout; nil while only nhwc is known
	nhwc   *Node   // rank 4 only: node's axes (0, 2, 3, 1)
	static *tensor // set for values known at build time
}

// convert converts one node, binding its outputs.
func (b *builder) convert(n *graphNode) {
	spec := ops[n.op]
	in := make([]*value, len(n.in))
	for i, name := range n.in {
		if name == "" {
			continue // an optional input left out
		}
		v := b.env[name]
		if v == nil {
			panic(fmt.Errorf("%s: input %q is not computed before it (the graph is not in topological order?)", n, name))
		}
		in[i] = v
	}
	for _, slot := range spec.static {
		if slot < len(in) && in[slot] != nil && in[slot].static == nil {
			panic(fmt.Errorf("%s: input %d (%q) must be known when the graph is built (a constant or a shape), but it is computed from the data", n, slot, n.in[slot]))
		}
	}
	outs := spec.fn(b, n, in)
	for i, name := range n.out {
		if name == "" {
			continue
		}
		if i >= len(outs) || outs[i] == nil {
			// An optional output the conversion does not compute (e.g.
			// Dropout's mask): an error only if something reads it.
			b.env[name] = &value{static: nil, node: nil}
			continue
		}
		b.env[name] = outs[i]
	}
}

// nchw returns v in ONNX layout, as a node of the computation dtype.
func (b *builder) nchw(v *value) *Node {
	switch {
	case v.node != nil:
		return v.node
	case v.nhwc != nil:
		v.node = toNCHW(v.nhwc)
		return v.node
	case v.static != nil:
		v.node = b.constant(v.static)
		return v.node
	}
	panic(fmt.Errorf("onnxmodel: a tensor the conversion does not compute (an optional output such as Dropout's mask or MaxPool's indices) is used"))
}

// channelsLast returns a rank-4 v in NHWC layout.
func (b *builder) channelsLast(v *value) *Node {
	if v.nhwc == nil {
		x := b.nchw(v)
		if x.Rank() != 4 {
			panic(fmt.Errorf("onnxmodel: want a rank-4 tensor, got %s", x.Shape()))
		}
		v.nhwc = toNHWC(x)
	}
	return v.nhwc
}

// constant makes a static tensor a graph constant: floats in the
// computation dtype, integers as int64, booleans as bool.
func (b *builder) constant(t *tensor) *Node {
	var tt *tensors.Tensor
	switch {
	case t.isFloat() && b.dtype == dtypes.Float32:
		f := make([]float32, len(t.f))
		for i, v := range t.f {
			f[i] = float32(v)
		}
		tt = tensors.FromFlatDataAndDimensions(f, t.shape...)
	case t.isFloat():
		tt = tensors.FromFlatDataAndDimensions(slices.Clone(t.f), t.shape...)
	case t.dtype == dtypes.Bool:
		bs := make([]bool, len(t.i))
		for i, v := range t.i {
			bs[i] = v != 0
		}
		tt = tensors.FromFlatDataAndDimensions(bs, t.shape...)
	default:
		tt = tensors.FromFlatDataAndDimensions(slices.Clone(t.i), t.shape...)
	}
	return ConstTensor(b.g, tt)
}

// scalar is a constant scalar of the computation dtype.
func (b *builder) scalar(v float64) *Node { return Scalar(b.g, b.dtype, v) }

// toNHWC transposes NCHW to NHWC (a reshape when C or H·W is 1).
func toNHWC(x *Node) *Node {
	d := x.Shape().Dimensions
	if d[1] == 1 || d[2]*d[3] == 1 {
		return Reshape(x, d[0], d[2], d[3], d[1])
	}
	return TransposeAllAxes(x, 0, 2, 3, 1)
}

// toNCHW transposes NHWC to NCHW (a reshape when C or H·W is 1).
func toNCHW(x *Node) *Node {
	d := x.Shape().Dimensions
	if d[3] == 1 || d[1]*d[2] == 1 {
		return Reshape(x, d[0], d[3], d[1], d[2])
	}
	return TransposeAllAxes(x, 0, 3, 1, 2)
}

// shapeOf is a shape of dtype and dims.
func shapeOf(dtype dtypes.DType, dims []int) shapes.Shape { return shapes.Make(dtype, dims...) }

// shapeBackend is a pure-Go backend on which graphs are built only to
// learn their shapes (Open's and CheckData's checks); nothing runs on it.
var shapeBackend = sync.OnceValue(func() backends.Backend {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		panic(fmt.Errorf("onnxmodel: the pure-Go backend: %w", err))
	}
	return be
})
