package onnxmodel

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/hessian-spectra/runner/nn"
)

// opSpec is the conversion of one ONNX op type.
type opSpec struct {
	// static lists the input slots whose values must be known when the
	// graph is built (shapes, axes, pads, bounds): they are never
	// differentiated, and an initializer read only there is a constant,
	// not a parameter.
	static []int
	// fn converts a node given its inputs (nil for optional inputs left
	// out) and returns its outputs (nil for optional outputs it does not
	// compute). It panics on what it cannot convert.
	fn func(b *builder, n *graphNode, in []*value) []*value
}

// ops is the conversion table: every ONNX op the importer converts. Every
// conversion is built from GoMLX ops whose derivatives are again built from
// the same ops (package nn's rules), so that the Hessian — and a third
// derivative — exists on every backend.
var ops map[string]opSpec

// SupportedOps lists the ONNX op types the importer converts, sorted.
func SupportedOps() []string {
	out := make([]string, 0, len(ops))
	for op := range ops {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

func init() {
	ops = map[string]opSpec{
		// Element-wise, one input.
		"Identity":    {fn: func(b *builder, n *graphNode, in []*value) []*value { return []*value{in[0]} }},
		"Dropout":     {static: []int{1, 2}, fn: func(b *builder, n *graphNode, in []*value) []*value { return []*value{in[0], nil} }},
		"Relu":        unary(nn.ReLU),
		"LeakyRelu":   {fn: opLeakyRelu},
		"Elu":         {fn: opElu},
		"Selu":        {fn: opSelu},
		"Sigmoid":     unary(Sigmoid),
		"HardSigmoid": {fn: opHardSigmoid},
		"HardSwish":   unary(func(x *Node) *Node { return Mul(x, hardSigmoid(x, 1.0/6, 0.5)) }),
		"Tanh":        unary(Tanh),
		"Softplus":    unary(softplus),
		"Softsign":    unary(func(x *Node) *Node { return Div(x, OnePlus(Abs(x))) }),
		"Mish":        unary(func(x *Node) *Node { return Mul(x, Tanh(softplus(x))) }),
		"Gelu":        {fn: opGelu},
		"Exp":         unary(Exp),
		"Log":         unary(Log),
		"Sqrt":        unary(Sqrt),
		"Reciprocal":  unary(Reciprocal),
		"Erf":         unary(Erf),
		"Neg":         unary(Neg),
		"Abs":         unary(Abs),
		"Sin":         unary(Sin),
		"Cos":         unary(Cos),
		"Clip":        {static: []int{1, 2}, fn: opClip},
		"Cast":        {fn: opCast},

		// Element-wise, several inputs (numpy broadcasting).
		"Add":   binary("Add", Add),
		"Sub":   binary("Sub", Sub),
		"Mul":   binary("Mul", Mul),
		"Div":   binary("Div", Div),
		"Pow":   {static: []int{1}, fn: opPow},
		"PRelu": {fn: opPRelu},
		"Sum":   {fn: variadic(Add, false)},
		"Mean":  {fn: variadic(Add, true)},
		"Max":   {fn: variadic(firstMax, false)},
		"Min":   {fn: variadic(firstMin, false)},
		"Where": {fn: opWhere},
		"Not":   {fn: opNot},
		"Equal": binary("Equal", Equal), "Less": binary("Less", LessThan), "Greater": binary("Greater", GreaterThan),
		"LessOrEqual": binary("LessOrEqual", LessOrEqual), "GreaterOrEqual": binary("GreaterOrEqual", GreaterOrEqual),

		// Linear algebra and normalisation.
		"Gemm":               {fn: opGemm},
		"MatMul":             {fn: opMatMul},
		"BatchNormalization": {fn: opBatchNorm},
		"LayerNormalization": {fn: opLayerNorm},
		"Softmax":            {fn: softmaxOp(false)},
		"LogSoftmax":         {fn: softmaxOp(true)},

		// Convolution and pooling (conv.go).
		"Conv":              {fn: opConv},
		"MaxPool":           {fn: opMaxPool},
		"AveragePool":       {fn: opAveragePool},
		"GlobalAveragePool": {fn: opGlobalPool(false)},
		"GlobalMaxPool":     {fn: opGlobalPool(true)},

		// Reductions.
		"ReduceMean": {static: []int{1}, fn: reduceOp(ReduceMean)},
		"ReduceSum":  {static: []int{1}, fn: reduceOp(ReduceSum)},
		"ReduceMax":  {static: []int{1}, fn: reduceOp(reduceMax)},
		"ReduceMin":  {static: []int{1}, fn: reduceOp(reduceMin)},

		// Shapes and data movement.
		"Shape":           {fn: opShape},
		"Constant":        {fn: opConstant},
		"ConstantOfShape": {static: []int{0}, fn: opConstantOfShape},
		"Range":           {static: []int{0, 1, 2}, fn: opRange},
		"Flatten":         {fn: opFlatten},
		"Reshape":         {static: []int{1}, fn: opReshape},
		"Transpose":       {fn: opTranspose},
		"Squeeze":         {static: []int{1}, fn: opSqueeze},
		"Unsqueeze":       {static: []int{1}, fn: opUnsqueeze},
		"Concat":          {fn: opConcat},
		"Slice":           {static: []int{1, 2, 3, 4}, fn: opSlice},
		"Gather":          {static: []int{1}, fn: opGather},
		"Split":           {static: []int{1}, fn: opSplit},
		"Expand":          {static: []int{1}, fn: opExpand},
		"Pad":             {static: []int{1, 2, 3}, fn: opPad},
	}
}

// fail panics with an error naming the node.
func (n *graphNode) fail(format string, args ...any) {
	panic(fmt.Errorf("%s: %s", n, fmt.Sprintf(format, args...)))
}

// Attribute accessors with ONNX's defaults.

func (n *graphNode) attrInt(name string, def int64) int64 {
	if a, ok := n.attrs[name]; ok {
		return a.i
	}
	return def
}

func (n *graphNode) attrInts(name string, def []int64) []int64 {
	if a, ok := n.attrs[name]; ok {
		return a.is
	}
	return def
}

func (n *graphNode) attrFloat(name string, def float64) float64 {
	if a, ok := n.attrs[name]; ok {
		return a.f
	}
	return def
}

func (n *graphNode) attrString(name, def string) string {
	if a, ok := n.attrs[name]; ok {
		return a.s
	}
	return def
}

// axis normalises a possibly negative axis of a rank-r tensor.
func (n *graphNode) axis(a int64, r int) int {
	if a < 0 {
		a += int64(r)
	}
	if a < 0 || a >= int64(r) {
		n.fail("axis %d out of range for rank %d", a, r)
	}
	return int(a)
}

// ints returns the static integers of an input (nil when left out).
func (n *graphNode) ints(v *value) []int64 {
	if v == nil {
		return nil
	}
	if v.static == nil {
		n.fail("an argument that must be a constant is computed from the data")
	}
	return v.static.asInts()
}

// opsetAtLeast reports whether the model's opset is at least v.
func (b *builder) opsetAtLeast(v int64) bool { return b.m.f.opset >= v }

// rankOf is the rank of a value.
func rankOf(v *value) int {
	switch {
	case v.static != nil:
		return len(v.static.shape)
	case v.nhwc != nil:
		return 4
	}
	return v.node.Rank()
}

// dimsOf is the ONNX-layout shape of a value.
func dimsOf(v *value) []int {
	switch {
	case v.static != nil:
		return slices.Clone(v.static.shape)
	case v.node != nil:
		return slices.Clone(v.node.Shape().Dimensions)
	case v.nhwc != nil:
		d := v.nhwc.Shape().Dimensions
		return []int{d[0], d[3], d[1], d[2]}
	}
	panic(fmt.Errorf("onnxmodel: a tensor the conversion does not compute is used"))
}

// unary converts an element-wise function of one input, in whichever
// layout the input is held.
func unary(f func(*Node) *Node) opSpec {
	return opSpec{fn: func(b *builder, n *graphNode, in []*value) []*value { return []*value{b.apply(in[0], f)} }}
}

// apply applies an element-wise function in v's layout.
func (b *builder) apply(v *value, f func(*Node) *Node) *value {
	if v.nhwc != nil {
		return &value{nhwc: f(v.nhwc)}
	}
	return &value{node: f(b.nchw(v))}
}

func opLeakyRelu(b *builder, n *graphNode, in []*value) []*value {
	alpha := n.attrFloat("alpha", 0.01)
	return []*value{b.apply(in[0], func(x *Node) *Node {
		return Where(GreaterThan(x, ScalarZero(x.Graph(), x.DType())), x, MulScalar(x, alpha))
	})}
}

// elu is α(eˣ − 1) for x ≤ 0, x otherwise; the exponential sees min(x, 0)
// so that the branch not taken stays finite.
func elu(x *Node, alpha float64) *Node {
	zero := ScalarZero(x.Graph(), x.DType())
	pos := GreaterThan(x, zero)
	neg := Where(pos, zero, x)
	return Where(pos, x, MulScalar(AddScalar(Exp(neg), -1), alpha))
}

func opElu(b *builder, n *graphNode, in []*value) []*value {
	alpha := n.attrFloat("alpha", 1)
	return []*value{b.apply(in[0], func(x *Node) *Node { return elu(x, alpha) })}
}

// SELU's constants in double precision; ONNX attributes hold them rounded
// to single precision, and PyTorch computes with these.
const (
	seluAlpha = 1.6732632423543772848170429916717
	seluGamma = 1.0507009873554804934193349852946
)

func opSelu(b *builder, n *graphNode, in []*value) []*value {
	alpha, gamma := n.attrFloat("alpha", seluAlpha), n.attrFloat("gamma", seluGamma)
	if alpha == decimal32(float32(seluAlpha)) {
		alpha = seluAlpha
	}
	if gamma == decimal32(float32(seluGamma)) {
		gamma = seluGamma
	}
	return []*value{b.apply(in[0], func(x *Node) *Node { return MulScalar(elu(x, alpha), gamma) })}
}

// hardSigmoid is max(0, min(1, αx + β)), with derivative α strictly inside
// (PyTorch's hardsigmoid_backward).
func hardSigmoid(x *Node, alpha, beta float64) *Node {
	g, dt := x.Graph(), x.DType()
	y := AddScalar(MulScalar(x, alpha), beta)
	zero, one := ScalarZero(g, dt), ScalarOne(g, dt)
	return Where(LessOrEqual(y, zero), BroadcastToShape(zero, y.Shape()), Where(GreaterOrEqual(y, one), BroadcastToShape(one, y.Shape()), y))
}

func opHardSigmoid(b *builder, n *graphNode, in []*value) []*value {
	alpha, beta := n.attrFloat("alpha", 0.2), n.attrFloat("beta", 0.5)
	return []*value{b.apply(in[0], func(x *Node) *Node { return hardSigmoid(x, alpha, beta) })}
}

// softplus is log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|), finite everywhere
// with finite derivatives.
func softplus(x *Node) *Node {
	zero := ScalarZero(x.Graph(), x.DType())
	return Add(Where(GreaterThan(x, zero), x, BroadcastToShape(zero, x.Shape())), Log(OnePlus(Exp(Neg(Abs(x))))))
}

func opGelu(b *builder, n *graphNode, in []*value) []*value {
	tanhApprox := n.attrString("approximate", "none") == "tanh"
	return []*value{b.apply(in[0], func(x *Node) *Node {
		var inner *Node
		if tanhApprox {
			c := math.Sqrt(2 / math.Pi)
			inner = Tanh(MulScalar(Add(x, MulScalar(Mul(x, Mul(x, x)), 0.044715)), c))
		} else {
			inner = Erf(MulScalar(x, 1/math.Sqrt2))
		}
		return Mul(MulScalar(x, 0.5), OnePlus(inner))
	})}
}

// opClip clamps to static bounds; the derivative is 1 where min ≤ x ≤ max
// (PyTorch's clamp).
func opClip(b *builder, n *graphNode, in []*value) []*value {
	lo, hi := math.Inf(-1), math.Inf(1)
	if b.opsetAtLeast(11) {
		if len(in) > 1 && in[1] != nil {
			lo = n.scalarArg(in[1])
		}
		if len(in) > 2 && in[2] != nil {
			hi = n.scalarArg(in[2])
		}
	} else {
		lo, hi = n.attrFloat("min", lo), n.attrFloat("max", hi)
	}
	return []*value{b.apply(in[0], func(x *Node) *Node {
		if !math.IsInf(lo, -1) {
			l := BroadcastToShape(Scalar(x.Graph(), x.DType(), lo), x.Shape())
			x = Where(LessThan(x, l), l, x)
		}
		if !math.IsInf(hi, 1) {
			h := BroadcastToShape(Scalar(x.Graph(), x.DType(), hi), x.Shape())
			x = Where(GreaterThan(x, h), h, x)
		}
		return x
	})}
}

// scalarArg is the value of a static one-element input.
func (n *graphNode) scalarArg(v *value) float64 {
	if v.static == nil || v.static.size() != 1 {
		n.fail("want a constant scalar argument")
	}
	return v.static.asFloats()[0]
}

// opCast keeps floats in the computation dtype (the whole graph computes in
// one dtype) and converts static values; casting a computed value to an
// integer type is not differentiable and not converted.
func opCast(b *builder, n *graphNode, in []*value) []*value {
	to := int32(n.attrInt("to", onnxFloat))
	isFloat := to == onnxFloat || to == onnxDouble || to == onnxFloat16 || to == onnxBFloat16
	v := in[0]
	if v.static != nil {
		t := *v.static
		switch {
		case isFloat:
			t.dtype, t.f, t.i = dtypes.Float64, v.static.asFloats(), nil
		case to == onnxBool:
			t.dtype, t.i, t.f = dtypes.Bool, nil, nil
			for _, x := range v.static.asFloats() {
				t.i = append(t.i, map[bool]int64{false: 0, true: 1}[x != 0])
			}
		default:
			t.dtype, t.i, t.f = dtypes.Int64, v.static.asInts(), nil
		}
		return []*value{{static: &t}}
	}
	if !isFloat {
		n.fail("casting a computed value to ONNX type %d is not converted (only floating-point casts, which keep the computation dtype)", to)
	}
	return []*value{v}
}

// binary converts an element-wise op or comparison of two inputs with
// numpy broadcasting; two static inputs give a static result (shape
// arithmetic), and a comparison a boolean node (never differentiated).
func binary(name string, f func(a, c *Node) *Node) opSpec {
	return opSpec{fn: func(b *builder, n *graphNode, in []*value) []*value {
		if in[0].static != nil && in[1].static != nil {
			t, err := binaryStatic(name, in[0].static, in[1].static)
			if err != nil {
				n.fail("%v", err)
			}
			return []*value{{static: t}}
		}
		return []*value{b.binary(n, in[0], in[1], f)}
	}}
}

// binary applies f to x and y broadcast to a common shape, in NHWC layout
// when either operand is held so and the result has rank 4.
func (b *builder) binary(n *graphNode, x, y *value, f func(a, c *Node) *Node) *value {
	if (x.nhwc != nil || y.nhwc != nil) && max(rankOf(x), rankOf(y)) == 4 {
		return &value{nhwc: broadcastApply(n, b.asNHWC(x), b.asNHWC(y), f)}
	}
	return &value{node: broadcastApply(n, b.nchw(x), b.nchw(y), f)}
}

// asNHWC returns v, of rank ≤ 4, as a rank-4 NHWC node (lower ranks are
// right-aligned, as numpy broadcasting aligns them).
func (b *builder) asNHWC(v *value) *Node {
	if v.nhwc != nil {
		return v.nhwc
	}
	x := b.nchw(v)
	if x.Rank() < 4 {
		d := x.Shape().Dimensions
		x = Reshape(x, slices.Concat(make1s(4-len(d)), d)...)
	}
	return toNHWC(x)
}

func make1s(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// broadcastApply is f(a, c) after numpy broadcasting: ranks aligned on the
// right, size-1 axes broadcast explicitly (scalars as they are).
func broadcastApply(n *graphNode, a, c *Node, f func(a, c *Node) *Node) *Node {
	out, err := broadcastShapes(a.Shape().Dimensions, c.Shape().Dimensions)
	if err != nil {
		n.fail("%v", err)
	}
	expand := func(x *Node) *Node {
		if x.Rank() == 0 {
			return x
		}
		return broadcastTo(x, out)
	}
	return f(expand(a), expand(c))
}

// broadcastTo broadcasts x numpy-style to the dimensions out: its axes
// aligned on the right (leading size-1 axes added), its size-1 axes
// repeated.
func broadcastTo(x *Node, out []int) *Node {
	if d := x.Shape().Dimensions; len(d) < len(out) {
		x = Reshape(x, slices.Concat(make1s(len(out)-len(d)), d)...)
	}
	if !slices.Equal(x.Shape().Dimensions, out) {
		x = BroadcastToShape(x, shapes.Make(x.DType(), out...))
	}
	return x
}

// firstMax is max(a, b) whose derivative goes to a on ties.
func firstMax(a, c *Node) *Node { return Where(GreaterOrEqual(a, c), a, c) }

// firstMin is min(a, b) whose derivative goes to a on ties.
func firstMin(a, c *Node) *Node { return Where(LessOrEqual(a, c), a, c) }

// variadic folds f over any number of inputs; mean divides the result by
// their count.
func variadic(f func(a, c *Node) *Node, mean bool) func(b *builder, n *graphNode, in []*value) []*value {
	return func(b *builder, n *graphNode, in []*value) []*value {
		acc := in[0]
		for _, v := range in[1:] {
			acc = b.binary(n, acc, v, f)
		}
		if mean && len(in) > 1 {
			acc = b.apply(acc, func(x *Node) *Node { return DivScalar(x, float64(len(in))) })
		} else if acc.static != nil {
			acc = &value{node: b.nchw(acc)}
		}
		return []*value{acc}
	}
}

// opPow takes a static exponent: small integer powers are products (exact
// derivatives for negative bases too), ½ is a square root.
func opPow(b *builder, n *graphNode, in []*value) []*value {
	e := n.scalarArg(in[1])
	return []*value{b.apply(in[0], func(x *Node) *Node {
		switch e {
		case 1:
			return x
		case 2:
			return Mul(x, x)
		case 3:
			return Mul(x, Mul(x, x))
		case 0.5:
			return Sqrt(x)
		case -1:
			return Reciprocal(x)
		}
		return Pow(x, Scalar(x.Graph(), x.DType(), e))
	})}
}

func opPRelu(b *builder, n *graphNode, in []*value) []*value {
	return []*value{b.binary(n, in[0], in[1], func(x, slope *Node) *Node {
		return Where(GreaterThan(x, ScalarZero(x.Graph(), x.DType())), x, Mul(slope, x))
	})}
}

func opNot(b *builder, n *graphNode, in []*value) []*value {
	if t := in[0].static; t != nil {
		out := &tensor{dtype: dtypes.Bool, shape: slices.Clone(t.shape)}
		for _, v := range t.asInts() {
			out.i = append(out.i, 1-min(v, 1))
		}
		return []*value{{static: out}}
	}
	return []*value{{node: LogicalNot(b.nchw(in[0]))}}
}

func opWhere(b *builder, n *graphNode, in []*value) []*value {
	if in[0].static != nil && in[1].static != nil && in[2].static != nil {
		t, err := whereStatic(in[0].static, in[1].static, in[2].static)
		if err != nil {
			n.fail("%v", err)
		}
		return []*value{{static: t}}
	}
	cond := b.nchw(in[0])
	x, y := b.nchw(in[1]), b.nchw(in[2])
	out, err := broadcastShapes(cond.Shape().Dimensions, x.Shape().Dimensions)
	if err == nil {
		out, err = broadcastShapes(out, y.Shape().Dimensions)
	}
	if err != nil {
		n.fail("%v", err)
	}
	return []*value{{node: Where(broadcastTo(cond, out), broadcastTo(x, out), broadcastTo(y, out))}}
}

// opGemm is α·A'·B' + β·C, A' and B' optionally transposed: one DotGeneral
// contracting the right axes (no transposition is materialised).
func opGemm(b *builder, n *graphNode, in []*value) []*value {
	a, w := b.nchw(in[0]), b.nchw(in[1])
	if a.Rank() != 2 || w.Rank() != 2 {
		n.fail("want matrices, got %s and %s", a.Shape(), w.Shape())
	}
	ca, cb := 1, 0
	if n.attrInt("transA", 0) != 0 {
		ca = 0
	}
	if n.attrInt("transB", 0) != 0 {
		cb = 1
	}
	if a.Shape().Dimensions[ca] != w.Shape().Dimensions[cb] {
		n.fail("inner dimensions differ: %s and %s (transA %d, transB %d)", a.Shape(), w.Shape(), n.attrInt("transA", 0), n.attrInt("transB", 0))
	}
	y := DotGeneral(a, []int{ca}, nil, w, []int{cb}, nil)
	if alpha := n.attrFloat("alpha", 1); alpha != 1 {
		y = MulScalar(y, alpha)
	}
	if len(in) > 2 && in[2] != nil {
		c := b.nchw(in[2])
		if beta := n.attrFloat("beta", 1); beta != 1 {
			c = MulScalar(c, beta)
		}
		y = broadcastApply(n, y, c, Add)
	}
	return []*value{{node: y}}
}

// opMatMul is numpy's matmul: a DotGeneral over the last axis of a and the
// second-to-last of b, batch axes broadcast.
func opMatMul(b *builder, n *graphNode, in []*value) []*value {
	a, c := b.nchw(in[0]), b.nchw(in[1])
	ra, rc := a.Rank(), c.Rank()
	if ra == 0 || rc == 0 {
		n.fail("scalar operand")
	}
	if ra == 1 {
		a = Reshape(a, 1, a.Shape().Dimensions[0])
	}
	if rc == 1 {
		c = Reshape(c, c.Shape().Dimensions[0], 1)
	}
	da, dc := a.Shape().Dimensions, c.Shape().Dimensions
	if da[len(da)-1] != dc[len(dc)-2] {
		n.fail("inner dimensions differ: %s and %s", a.Shape(), c.Shape())
	}
	var y *Node
	if len(dc) == 2 {
		// [..., K] × [K, M]: one matrix product of the flattened batch.
		k, m := dc[0], dc[1]
		lead := da[:len(da)-1]
		y = DotGeneral(Reshape(a, sizeOf(lead), k), []int{1}, nil, c, []int{0}, nil)
		y = Reshape(y, append(slices.Clone(lead), m)...)
	} else {
		batch, err := broadcastShapes(da[:len(da)-2], dc[:len(dc)-2])
		if err != nil {
			n.fail("batch axes: %v", err)
		}
		nb := len(batch)
		to := func(x *Node) *Node {
			d := x.Shape().Dimensions
			want := slices.Concat(batch, d[len(d)-2:])
			return Reshape(broadcastTo(x, want), sizeOf(batch), want[nb], want[nb+1])
		}
		y = DotGeneral(to(a), []int{2}, []int{0}, to(c), []int{1}, []int{0})
		y = Reshape(y, slices.Concat(batch, []int{da[len(da)-2], dc[len(dc)-1]})...)
	}
	// Drop the axes numpy adds for rank-1 operands.
	d := y.Shape().Dimensions
	switch {
	case ra == 1 && rc == 1:
		y = Reshape(y)
	case ra == 1:
		y = Reshape(y, slices.Concat(d[:len(d)-2], d[len(d)-1:])...)
	case rc == 1:
		y = Reshape(y, d[:len(d)-1]...)
	}
	return []*value{{node: y}}
}

// opBatchNorm normalises over every axis but 1 (the channels), with the
// running statistics or, with bn_mode train, the batch's (package nn's
// BatchNorm, whose gradient flows through the batch statistics).
func opBatchNorm(b *builder, n *graphNode, in []*value) []*value {
	eps := n.attrFloat("epsilon", 1e-5)
	gamma, beta, mean, variance := b.nchw(in[1]), b.nchw(in[2]), b.nchw(in[3]), b.nchw(in[4])
	bn := func(x *Node) *Node {
		y, _, _ := nn.BatchNorm(x, gamma, beta, mean, variance, b.train, nn.BNMomentum, eps)
		return y
	}
	x := in[0]
	switch r := rankOf(x); r {
	case 4:
		return []*value{{nhwc: bn(b.channelsLast(x))}}
	case 2:
		return []*value{{node: bn(b.nchw(x))}}
	case 3:
		y := bn(Transpose(b.nchw(x), 1, 2))
		return []*value{{node: Transpose(y, 1, 2)}}
	default:
		n.fail("batch norm of a rank-%d tensor (want 2, 3 or 4)", r)
	}
	return nil
}

// opLayerNorm normalises over the axes from axis on, then scales and
// shifts.
func opLayerNorm(b *builder, n *graphNode, in []*value) []*value {
	x := b.nchw(in[0])
	r := x.Rank()
	axis := n.axis(n.attrInt("axis", -1), r)
	axes := make([]int, 0, r-axis)
	for a := axis; a < r; a++ {
		axes = append(axes, a)
	}
	keep := slices.Clone(x.Shape().Dimensions)
	for _, a := range axes {
		keep[a] = 1
	}
	mean := BroadcastToShape(Reshape(ReduceMean(x, axes...), keep...), x.Shape())
	xc := Sub(x, mean)
	variance := BroadcastToShape(Reshape(ReduceMean(Mul(xc, xc), axes...), keep...), x.Shape())
	y := Div(xc, Sqrt(AddScalar(variance, n.attrFloat("epsilon", 1e-5))))
	y = broadcastApply(n, y, b.nchw(in[1]), Mul)
	if len(in) > 2 && in[2] != nil {
		y = broadcastApply(n, y, b.nchw(in[2]), Add)
	}
	return []*value{{node: y}}
}

// softmaxOp converts Softmax or LogSoftmax: over one axis from opset 13,
// over the axes from axis on (the input seen as a matrix) before.
func softmaxOp(logOf bool) func(b *builder, n *graphNode, in []*value) []*value {
	return func(b *builder, n *graphNode, in []*value) []*value {
		x := b.nchw(in[0])
		dims := x.Shape().Dimensions
		var axis int
		if b.opsetAtLeast(13) {
			axis = n.axis(n.attrInt("axis", -1), x.Rank())
		} else {
			a := n.axis(n.attrInt("axis", 1), x.Rank())
			x = Reshape(x, sizeOf(dims[:a]), sizeOf(dims[a:]))
			axis = 1
		}
		keep := slices.Clone(x.Shape().Dimensions)
		keep[axis] = 1
		z := Sub(x, BroadcastToShape(Reshape(StopGradient(ReduceMax(x, axis)), keep...), x.Shape()))
		sum := BroadcastToShape(Reshape(ReduceSum(Exp(z), axis), keep...), x.Shape())
		var y *Node
		if logOf {
			y = Sub(z, Log(sum))
		} else {
			y = Div(Exp(z), sum)
		}
		return []*value{{node: Reshape(y, dims...)}}
	}
}

// reduceOp converts ReduceMean, ReduceSum, ReduceMax and ReduceMin: axes
// from the attribute or (ReduceSum from opset 13, the others from 18) the
// second input; keepdims; noop_with_empty_axes.
func reduceOp(f func(x *Node, axes ...int) *Node) func(b *builder, n *graphNode, in []*value) []*value {
	return func(b *builder, n *graphNode, in []*value) []*value {
		x := b.nchw(in[0])
		r := x.Rank()
		raw := n.attrInts("axes", nil)
		if len(in) > 1 && in[1] != nil {
			raw = n.ints(in[1])
		}
		if len(raw) == 0 && n.attrInt("noop_with_empty_axes", 0) != 0 {
			return []*value{{node: x}}
		}
		var axes []int
		for _, a := range raw {
			axes = append(axes, n.axis(a, r))
		}
		if len(axes) == 0 {
			for a := range r {
				axes = append(axes, a)
			}
		}
		y := f(x, axes...)
		if n.attrInt("keepdims", 1) != 0 {
			keep := slices.Clone(x.Shape().Dimensions)
			for _, a := range axes {
				keep[a] = 1
			}
			y = Reshape(y, keep...)
		}
		return []*value{{node: y}}
	}
}

// reduceMax is the maximum over axes whose derivative is split evenly
// among tied maxima, as torch.amax's (GoMLX's ReduceMax passes the whole
// derivative to each of them): m + Σ (x − m)·mask / Σ mask, with the mask
// of the maxima and m held constant, which is m exactly.
func reduceMax(x *Node, axes ...int) *Node { return reduceExtremum(x, ReduceMax, axes) }

// reduceMin is reduceMax's counterpart (torch.amin).
func reduceMin(x *Node, axes ...int) *Node { return reduceExtremum(x, ReduceMin, axes) }

func reduceExtremum(x *Node, reduce func(*Node, ...int) *Node, axes []int) *Node {
	m := StopGradient(reduce(x, axes...))
	keep := slices.Clone(x.Shape().Dimensions)
	for _, a := range axes {
		keep[a] = 1
	}
	mb := BroadcastToShape(Reshape(m, keep...), x.Shape())
	mask := StopGradient(ConvertDType(Equal(x, mb), x.DType()))
	return Add(m, Div(ReduceSum(Mul(Sub(x, mb), mask), axes...), ReduceSum(mask, axes...)))
}

// opShape returns the input's dimensions (start to end), a static value.
func opShape(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	r := len(dims)
	start, end := int(n.attrInt("start", 0)), int(n.attrInt("end", int64(r)))
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = max(0, min(start, r)), max(0, min(end, r))
	var out []int64
	for _, d := range dims[start:max(start, end)] {
		out = append(out, int64(d))
	}
	return []*value{{static: intTensor([]int{len(out)}, out)}}
}

func opConstant(b *builder, n *graphNode, in []*value) []*value {
	for name, a := range n.attrs {
		switch name {
		case "value":
			return []*value{{static: a.t}}
		case "value_float":
			return []*value{{static: floatTensor(nil, []float64{a.f})}}
		case "value_floats":
			return []*value{{static: floatTensor([]int{len(a.fs)}, a.fs)}}
		case "value_int":
			return []*value{{static: intTensor(nil, []int64{a.i})}}
		case "value_ints":
			return []*value{{static: intTensor([]int{len(a.is)}, a.is)}}
		}
	}
	n.fail("no value attribute the importer reads (value, value_float(s), value_int(s))")
	return nil
}

// maxStatic bounds the elements of a tensor computed in Go when the graph
// is built (shape arithmetic needs a few): a damaged file cannot make the
// importer allocate without limit.
const maxStatic = 1 << 22

func opConstantOfShape(b *builder, n *graphNode, in []*value) []*value {
	var shape []int
	total := int64(1)
	for _, d := range n.ints(in[0]) {
		if d < 0 || d > maxStatic {
			n.fail("shape %v", n.ints(in[0]))
		}
		total *= max(d, 1)
		if total > maxStatic {
			n.fail("shape %v: more than %d values", n.ints(in[0]), maxStatic)
		}
		shape = append(shape, int(d))
	}
	fill := &tensor{dtype: dtypes.Float64, f: []float64{0}}
	if a, ok := n.attrs["value"]; ok && a.t != nil {
		fill = a.t
	}
	out := &tensor{dtype: fill.dtype, shape: shape}
	for range sizeOf(shape) {
		if fill.isFloat() {
			out.f = append(out.f, fill.f[0])
		} else {
			out.i = append(out.i, fill.i[0])
		}
	}
	return []*value{{static: out}}
}

func opRange(b *builder, n *graphNode, in []*value) []*value {
	start, limit, delta := in[0].static, in[1].static, in[2].static
	if delta.asFloats()[0] == 0 {
		n.fail("delta 0")
	}
	s, l, d := start.asFloats()[0], limit.asFloats()[0], delta.asFloats()[0]
	count := max(0, math.Ceil((l-s)/d))
	if !(count <= maxStatic) {
		n.fail("range of %g values", count)
	}
	out := &tensor{dtype: start.dtype, shape: []int{int(count)}}
	for k := range int(count) {
		if start.isFloat() {
			out.f = append(out.f, s+float64(k)*d)
		} else {
			out.i = append(out.i, start.i[0]+int64(k)*delta.i[0])
		}
	}
	return []*value{{static: out}}
}

func opFlatten(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	a := int(n.attrInt("axis", 1))
	if a < 0 {
		a += len(dims)
	}
	if a < 0 || a > len(dims) {
		n.fail("axis %d out of range for rank %d", n.attrInt("axis", 1), len(dims))
	}
	shape := []int{sizeOf(dims[:a]), sizeOf(dims[a:])}
	if in[0].static != nil {
		return []*value{{static: in[0].static.withShape(shape)}}
	}
	return []*value{{node: Reshape(b.nchw(in[0]), shape...)}}
}

func opReshape(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	want := n.ints(in[1])
	allowZero := n.attrInt("allowzero", 0) != 0
	shape := make([]int, len(want))
	infer := -1
	for i, d := range want {
		switch {
		case d == 0 && !allowZero:
			if i >= len(dims) {
				n.fail("shape %v copies axis %d of a rank-%d input", want, i, len(dims))
			}
			shape[i] = dims[i]
		case d == -1:
			if infer >= 0 {
				n.fail("shape %v has two -1", want)
			}
			infer = i
		case d < 0:
			n.fail("shape %v", want)
		default:
			shape[i] = int(d)
		}
	}
	if infer >= 0 {
		rest := 1
		for i, d := range shape {
			if i != infer {
				rest *= d
			}
		}
		if rest == 0 || sizeOf(dims)%rest != 0 {
			n.fail("cannot reshape %v to %v", dims, want)
		}
		shape[infer] = sizeOf(dims) / rest
	}
	if sizeOf(shape) != sizeOf(dims) {
		n.fail("cannot reshape %v (%d values) to %v", dims, sizeOf(dims), shape)
	}
	if in[0].static != nil {
		return []*value{{static: in[0].static.withShape(shape)}}
	}
	return []*value{{node: Reshape(b.nchw(in[0]), shape...)}}
}

func opTranspose(b *builder, n *graphNode, in []*value) []*value {
	r := rankOf(in[0])
	var perm []int
	for _, p := range n.attrInts("perm", nil) {
		perm = append(perm, n.axis(p, r))
	}
	if perm == nil {
		for a := r - 1; a >= 0; a-- {
			perm = append(perm, a)
		}
	}
	if in[0].static != nil {
		return []*value{{static: transposeStatic(in[0].static, perm)}}
	}
	if r == 4 && slices.Equal(perm, []int{0, 2, 3, 1}) {
		return []*value{{node: b.channelsLast(in[0])}}
	}
	return []*value{{node: TransposeAllAxes(b.nchw(in[0]), perm...)}}
}

// axesArg reads the axes of Squeeze and Unsqueeze: an attribute before
// opset 13, the second input from 13 on.
func (b *builder) axesArg(n *graphNode, in []*value) []int64 {
	if len(in) > 1 && in[1] != nil {
		return n.ints(in[1])
	}
	return n.attrInts("axes", nil)
}

// reshapeValue reshapes a static or computed value.
func (b *builder) reshapeValue(v *value, shape []int) *value {
	if v.static != nil {
		return &value{static: v.static.withShape(shape)}
	}
	return &value{node: Reshape(b.nchw(v), shape...)}
}

func opSqueeze(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	drop := map[int]bool{}
	for _, a := range b.axesArg(n, in) {
		ax := n.axis(a, len(dims))
		if dims[ax] != 1 {
			n.fail("cannot squeeze axis %d of size %d", ax, dims[ax])
		}
		drop[ax] = true
	}
	var shape []int
	for a, d := range dims {
		if len(drop) == 0 && d == 1 || drop[a] {
			continue
		}
		shape = append(shape, d)
	}
	return []*value{b.reshapeValue(in[0], shape)}
}

func opUnsqueeze(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	axes := b.axesArg(n, in)
	r := len(dims) + len(axes)
	insert := map[int]bool{}
	for _, a := range axes {
		insert[n.axis(a, r)] = true
	}
	shape := make([]int, 0, r)
	k := 0
	for a := range r {
		if insert[a] {
			shape = append(shape, 1)
		} else {
			shape = append(shape, dims[k])
			k++
		}
	}
	return []*value{b.reshapeValue(in[0], shape)}
}

func opConcat(b *builder, n *graphNode, in []*value) []*value {
	r := rankOf(in[0])
	axis := n.axis(n.attrInt("axis", 0), r)
	allStatic, anyNHWC := true, false
	for _, v := range in {
		allStatic = allStatic && v.static != nil
		anyNHWC = anyNHWC || v.nhwc != nil
	}
	if allStatic {
		ts := make([]*tensor, len(in))
		for i, v := range in {
			ts[i] = v.static
		}
		return []*value{{static: concatStatic(ts, axis)}}
	}
	nodes := make([]*Node, len(in))
	if r == 4 && anyNHWC {
		for i, v := range in {
			nodes[i] = b.channelsLast(v)
		}
		return []*value{{nhwc: Concatenate(nodes, []int{0, 3, 1, 2}[axis])}}
	}
	for i, v := range in {
		nodes[i] = b.nchw(v)
	}
	return []*value{{node: Concatenate(nodes, axis)}}
}

// opSlice takes starts, ends, axes and steps as inputs (opset 10 on) or
// attributes (before), clamped as numpy clamps them. Negative steps are
// converted for static values only (a reversal has no derivative rule on
// the pure-Go backend).
func opSlice(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	var starts, ends, axes, steps []int64
	if b.opsetAtLeast(10) {
		starts, ends = n.ints(in[1]), n.ints(in[2])
		if len(in) > 3 {
			axes = n.ints(in[3])
		}
		if len(in) > 4 {
			steps = n.ints(in[4])
		}
	} else {
		starts, ends, axes = n.attrInts("starts", nil), n.attrInts("ends", nil), n.attrInts("axes", nil)
	}
	if len(ends) != len(starts) {
		n.fail("%d starts and %d ends", len(starts), len(ends))
	}
	start := make([]int, len(dims))
	length := slices.Clone(dims)
	step := make([]int, len(dims))
	for a := range step {
		step[a] = 1
	}
	for i := range starts {
		a := i
		if axes != nil {
			a = n.axis(axes[i], len(dims))
		}
		s := int64(1)
		if steps != nil {
			s = steps[i]
		}
		if s == 0 {
			n.fail("step 0")
		}
		d := int64(dims[a])
		lo, hi := starts[i], ends[i]
		if lo < 0 {
			lo += d
		}
		if hi < 0 {
			hi += d
		}
		if s > 0 {
			lo, hi = max(0, min(lo, d)), max(0, min(hi, d))
			length[a] = int(max(0, (hi-lo+s-1)/s))
		} else {
			lo, hi = max(-1, min(lo, d-1)), max(-1, min(hi, d-1))
			length[a] = int(max(0, (lo-hi-s-1)/(-s)))
		}
		start[a], step[a] = int(lo), int(s)
	}
	if sizeOf(length) == 0 {
		n.fail("empty slice of %v", dims)
	}
	if in[0].static != nil {
		return []*value{{static: sliceStatic(in[0].static, start, length, step)}}
	}
	specs := make([]SliceAxisSpec, len(dims))
	for a := range dims {
		if step[a] < 0 {
			n.fail("negative step on a computed value (a reversal) is not converted")
		}
		specs[a] = AxisRange(start[a], start[a]+(length[a]-1)*step[a]+1).Stride(step[a])
	}
	return []*value{{node: Slice(b.nchw(in[0]), specs...)}}
}

// opGather takes static indices; on a computed tensor it is a
// concatenation of slices.
func opGather(b *builder, n *graphNode, in []*value) []*value {
	dims := dimsOf(in[0])
	axis := n.axis(n.attrInt("axis", 0), len(dims))
	idx := in[1].static
	if in[0].static != nil {
		return []*value{{static: gatherStatic(in[0].static, idx.asInts(), idx.shape, axis)}}
	}
	x := b.nchw(in[0])
	parts := make([]*Node, 0, idx.size())
	for _, i := range idx.asInts() {
		if i < 0 {
			i += int64(dims[axis])
		}
		if i < 0 || i >= int64(dims[axis]) {
			n.fail("index %d outside an axis of %d", i, dims[axis])
		}
		parts = append(parts, SliceAxis(x, axis, AxisElem(int(i))))
	}
	y := parts[0]
	if len(parts) > 1 {
		y = Concatenate(parts, axis)
	}
	return []*value{{node: Reshape(y, slices.Concat(dims[:axis], idx.shape, dims[axis+1:])...)}}
}

func opSplit(b *builder, n *graphNode, in []*value) []*value {
	x := b.nchw(in[0])
	dims := x.Shape().Dimensions
	axis := n.axis(n.attrInt("axis", 0), len(dims))
	sizes := n.attrInts("split", nil)
	if len(in) > 1 && in[1] != nil {
		sizes = n.ints(in[1])
	}
	if sizes == nil {
		k := int64(len(n.out))
		if num := n.attrInt("num_outputs", 0); num > 0 {
			k = num
		}
		per := (int64(dims[axis]) + k - 1) / k
		for left := int64(dims[axis]); left > 0; left -= per {
			sizes = append(sizes, min(per, left))
		}
	}
	out := make([]*value, 0, len(sizes))
	at := 0
	for _, s := range sizes {
		out = append(out, &value{node: SliceAxis(x, axis, AxisRange(at, at+int(s)))})
		at += int(s)
	}
	if at != dims[axis] {
		n.fail("split sizes %v do not add up to %d", sizes, dims[axis])
	}
	return out
}

func opExpand(b *builder, n *graphNode, in []*value) []*value {
	x := b.nchw(in[0])
	var want []int
	for _, d := range n.ints(in[1]) {
		want = append(want, int(d))
	}
	out, err := broadcastShapes(x.Shape().Dimensions, want)
	if err != nil {
		n.fail("%v", err)
	}
	return []*value{{node: broadcastTo(x, out)}}
}

// opPad pads with a constant (mode "constant" only) by concatenation, as
// the pure-Go backend has no Pad op; negative pads crop.
func opPad(b *builder, n *graphNode, in []*value) []*value {
	if mode := n.attrString("mode", "constant"); mode != "constant" {
		n.fail("mode %q is not converted (only constant)", mode)
	}
	var pads []int64
	fill := 0.0
	if b.opsetAtLeast(11) {
		pads = n.ints(in[1])
		if len(in) > 2 && in[2] != nil {
			fill = n.scalarArg(in[2])
		}
	} else {
		pads, fill = n.attrInts("pads", nil), n.attrFloat("value", 0)
	}
	x := in[0]
	r := rankOf(x)
	axes := make([]int, r)
	for a := range axes {
		axes[a] = a
	}
	if len(in) > 3 && in[3] != nil {
		axes = axes[:0]
		for _, a := range n.ints(in[3]) {
			axes = append(axes, n.axis(a, r))
		}
	}
	if len(pads) != 2*len(axes) {
		n.fail("%d pads for %d axes", len(pads), len(axes))
	}
	before, after := make([]int, r), make([]int, r)
	for i, a := range axes {
		before[a], after[a] = int(pads[i]), int(pads[len(axes)+i])
	}
	if r == 4 && x.nhwc != nil {
		perm := []int{0, 2, 3, 1} // NHWC axis k holds NCHW axis perm[k]
		bb, aa := make([]int, 4), make([]int, 4)
		for k, p := range perm {
			bb[k], aa[k] = before[p], after[p]
		}
		return []*value{{nhwc: padConstant(x.nhwc, bb, aa, fill)}}
	}
	return []*value{{node: padConstant(b.nchw(x), before, after, fill)}}
}

// padConstant adds before[a] and after[a] elements of value fill on each
// side of axis a (cropping for negative counts).
func padConstant(x *Node, before, after []int, fill float64) *Node {
	g := x.Graph()
	for a := range before {
		if before[a] < 0 || after[a] < 0 {
			d := x.Shape().Dimensions[a]
			x = SliceAxis(x, a, AxisRange(max(0, -before[a]), d-max(0, -after[a])))
		}
		parts := make([]*Node, 0, 3)
		block := func(k int) *Node {
			s := x.Shape().Clone()
			s.Dimensions[a] = k
			return BroadcastToShape(Scalar(g, x.DType(), fill), s)
		}
		if before[a] > 0 {
			parts = append(parts, block(before[a]))
		}
		parts = append(parts, x)
		if after[a] > 0 {
			parts = append(parts, block(after[a]))
		}
		if len(parts) > 1 {
			x = Concatenate(parts, a)
		}
	}
	return x
}
