package cpu

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Builder records a computation; Compile turns it into an Executable.
// Operations it does not implement return an error naming the operation.
type Builder struct {
	notimplemented.Builder

	backend  *Backend
	name     string
	nodes    []*node
	params   []*node
	compiled bool
	noFold   bool // compiling one folded node (fold.go)
}

var _ backends.Builder = (*Builder)(nil)

// node is one recorded operation: its type, inputs, inferred shape and
// parameters. Nodes are created after their inputs, so b.nodes is in
// topological order.
type node struct {
	id     int
	op     backends.OpType
	shape  shapes.Shape
	inputs []*node
	b      *Builder

	ints  []int // axes, permutation, broadcast axes, prefix dims, slice starts, iota axis
	ints2 []int // slice limits
	ints3 []int // slice strides
	dot   *dotAxes
	pads  []backends.PadAxis
	flag  bool    // ArgMinMax: isMin
	value *Buffer // Constant
	param int     // Parameter index
	name  string  // Parameter name
}

// dotAxes are the axes of a DotGeneral.
type dotAxes struct {
	lhsContract, lhsBatch, rhsContract, rhsBatch []int
}

func newBuilder(b *Backend, name string) *Builder {
	bl := &Builder{backend: b, name: name}
	bl.ErrFn = func(op backends.OpType) error {
		return fmt.Errorf("cpu backend: operation %s is not supported: %w", op, notimplemented.NotImplementedError)
	}
	return bl
}

// Name returns the computation's name.
func (b *Builder) Name() string { return b.name }

// supportedDTypes are the dtypes values may have.
var supportedDTypes = []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.Int32, dtypes.Int64, dtypes.Uint8, dtypes.Bool}

func checkDType(dt dtypes.DType) error {
	if slices.Contains(supportedDTypes, dt) {
		return nil
	}
	return fmt.Errorf("cpu backend: dtype %s is not supported (supported: float32, float64, int32, int64, uint8, bool)", dt)
}

func (b *Builder) newNode(op backends.OpType, shape shapes.Shape, inputs ...*node) (*node, error) {
	if err := checkDType(shape.DType); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	n := &node{id: len(b.nodes), op: op, shape: shape, inputs: inputs, b: b}
	b.nodes = append(b.nodes, n)
	return n, nil
}

// in converts ops to this builder's nodes.
func (b *Builder) in(op backends.OpType, ops ...backends.Op) ([]*node, error) {
	if b.compiled {
		return nil, fmt.Errorf("cpu backend: %s: builder %q was already compiled", op, b.name)
	}
	out := make([]*node, len(ops))
	for i, o := range ops {
		n, ok := o.(*node)
		if !ok || n == nil {
			return nil, fmt.Errorf("cpu backend: %s: input #%d (%T) is not a cpu backend op", op, i, o)
		}
		if n.b != b {
			return nil, fmt.Errorf("cpu backend: %s: input #%d belongs to another computation", op, i)
		}
		out[i] = n
	}
	return out, nil
}

// OpShape returns the shape of op.
func (b *Builder) OpShape(op backends.Op) (shapes.Shape, error) {
	n, ok := op.(*node)
	if !ok || n == nil {
		return shapes.Invalid(), fmt.Errorf("cpu backend: %T is not a cpu backend op", op)
	}
	return n.shape, nil
}

// Parameter adds the next input of the computation.
func (b *Builder) Parameter(name string, shape shapes.Shape, sharding *backends.ShardingSpec) (backends.Op, error) {
	if sharding != nil {
		return nil, fmt.Errorf("cpu backend: parameter %q: sharding is not supported", name)
	}
	if _, err := b.in(backends.OpTypeParameter); err != nil {
		return nil, err
	}
	n, err := b.newNode(backends.OpTypeParameter, shape)
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", name, err)
	}
	n.param, n.name = len(b.params), name
	b.params = append(b.params, n)
	return n, nil
}

// Constant adds a constant with a copy of flat's values.
func (b *Builder) Constant(flat any, dims ...int) (backends.Op, error) {
	if _, err := b.in(backends.OpTypeConstant); err != nil {
		return nil, err
	}
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("cpu backend: Constant: want a slice, got %T", flat)
	}
	dt := dtypes.FromGoType(v.Type().Elem())
	shape := shapes.Make(dt, dims...)
	if shape.Size() != v.Len() {
		return nil, fmt.Errorf("cpu backend: Constant: %d values for shape %s", v.Len(), shape)
	}
	n, err := b.newNode(backends.OpTypeConstant, shape)
	if err != nil {
		return nil, err
	}
	n.value = newBuffer(shape)
	reflect.Copy(reflect.ValueOf(n.value.flat), v)
	return n, nil
}

// Identity returns x.
func (b *Builder) Identity(x backends.Op) (backends.Op, error) {
	in, err := b.in(backends.OpTypeIdentity, x)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeIdentity, in[0].shape, in[0])
}

// Iota returns values counting along iotaAxis.
func (b *Builder) Iota(shape shapes.Shape, iotaAxis int) (backends.Op, error) {
	if _, err := b.in(backends.OpTypeIota); err != nil {
		return nil, err
	}
	if shape.Rank() == 0 || iotaAxis < 0 || iotaAxis >= shape.Rank() {
		return nil, fmt.Errorf("cpu backend: Iota: axis %d of shape %s", iotaAxis, shape)
	}
	n, err := b.newNode(backends.OpTypeIota, shape)
	if err != nil {
		return nil, err
	}
	n.ints = []int{iotaAxis}
	return n, nil
}

func (b *Builder) unary(op backends.OpType, x backends.Op) (backends.Op, error) {
	in, err := b.in(op, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.UnaryOp(op, in[0].shape)
	if err != nil {
		return nil, err
	}
	if !unarySupported(op, shape.DType) {
		return nil, fmt.Errorf("cpu backend: operation %s on %s is not supported", op, shape.DType)
	}
	return b.newNode(op, shape, in[0])
}

func (b *Builder) binary(op backends.OpType, x, y backends.Op) (backends.Op, error) {
	in, err := b.in(op, x, y)
	if err != nil {
		return nil, err
	}
	var shape shapes.Shape
	if shapeinference.ComparisonOperations.Has(op) {
		shape, err = shapeinference.ComparisonOp(op, in[0].shape, in[1].shape)
	} else {
		shape, err = shapeinference.BinaryOp(op, in[0].shape, in[1].shape)
	}
	if err != nil {
		return nil, err
	}
	if !binarySupported(op, in[0].shape.DType) {
		return nil, fmt.Errorf("cpu backend: operation %s on %s is not supported", op, in[0].shape.DType)
	}
	return b.newNode(op, shape, in[0], in[1])
}

// Abs is |x|.
func (b *Builder) Abs(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeAbs, x) }

// Neg is −x.
func (b *Builder) Neg(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeNeg, x) }

// Sign is −1, 0 or 1.
func (b *Builder) Sign(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSign, x) }

// Exp is eˣ.
func (b *Builder) Exp(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExp, x) }

// Expm1 is eˣ − 1.
func (b *Builder) Expm1(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExpm1, x) }

// Log is the natural logarithm.
func (b *Builder) Log(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog, x) }

// Log1p is log(1 + x).
func (b *Builder) Log1p(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog1p, x) }

// Sqrt is √x.
func (b *Builder) Sqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSqrt, x) }

// Rsqrt is 1/√x.
func (b *Builder) Rsqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRsqrt, x) }

// Tanh is the hyperbolic tangent.
func (b *Builder) Tanh(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeTanh, x) }

// Logistic is 1/(1+e⁻ˣ).
func (b *Builder) Logistic(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogistic, x)
}

// Sin is the sine.
func (b *Builder) Sin(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSin, x) }

// Cos is the cosine.
func (b *Builder) Cos(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeCos, x) }

// Erf is the error function.
func (b *Builder) Erf(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeErf, x) }

// Floor rounds down.
func (b *Builder) Floor(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeFloor, x) }

// Ceil rounds up.
func (b *Builder) Ceil(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeCeil, x) }

// Round rounds half to even.
func (b *Builder) Round(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRound, x) }

// LogicalNot negates booleans.
func (b *Builder) LogicalNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogicalNot, x)
}

// BitwiseNot flips the bits of integers.
func (b *Builder) BitwiseNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeBitwiseNot, x)
}

// IsFinite reports which values are neither infinite nor NaN.
func (b *Builder) IsFinite(x backends.Op) (backends.Op, error) {
	return b.predicate(backends.OpTypeIsFinite, x)
}

// IsNaN reports which values are NaN.
func (b *Builder) IsNaN(x backends.Op) (backends.Op, error) {
	return b.predicate(backends.OpTypeIsNaN, x)
}

func (b *Builder) predicate(op backends.OpType, x backends.Op) (backends.Op, error) {
	in, err := b.in(op, x)
	if err != nil {
		return nil, err
	}
	if !in[0].shape.DType.IsFloat() {
		return nil, fmt.Errorf("cpu backend: %s wants a float operand, got %s", op, in[0].shape)
	}
	shape := in[0].shape.Clone()
	shape.DType = dtypes.Bool
	return b.newNode(op, shape, in[0])
}

// Add is x + y.
func (b *Builder) Add(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeAdd, x, y)
}

// Sub is x − y.
func (b *Builder) Sub(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeSub, x, y)
}

// Mul is x · y.
func (b *Builder) Mul(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMul, x, y)
}

// Div is x / y.
func (b *Builder) Div(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeDiv, x, y)
}

// Rem is the remainder of x / y with the sign of x.
func (b *Builder) Rem(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeRem, x, y)
}

// Pow is xʸ.
func (b *Builder) Pow(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypePow, x, y)
}

// Max is the larger of x and y (NaN if either is).
func (b *Builder) Max(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMax, x, y)
}

// Min is the smaller of x and y (NaN if either is).
func (b *Builder) Min(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMin, x, y)
}

// LogicalAnd is x ∧ y.
func (b *Builder) LogicalAnd(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalAnd, x, y)
}

// LogicalOr is x ∨ y.
func (b *Builder) LogicalOr(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalOr, x, y)
}

// LogicalXor is x ⊕ y.
func (b *Builder) LogicalXor(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalXor, x, y)
}

// BitwiseAnd is x & y.
func (b *Builder) BitwiseAnd(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseAnd, x, y)
}

// BitwiseOr is x | y.
func (b *Builder) BitwiseOr(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseOr, x, y)
}

// BitwiseXor is x ^ y.
func (b *Builder) BitwiseXor(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseXor, x, y)
}

// Equal is x = y.
func (b *Builder) Equal(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqual, x, y)
}

// NotEqual is x ≠ y.
func (b *Builder) NotEqual(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqual, x, y)
}

// GreaterThan is x > y.
func (b *Builder) GreaterThan(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThan, x, y)
}

// GreaterOrEqual is x ≥ y.
func (b *Builder) GreaterOrEqual(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqual, x, y)
}

// LessThan is x < y.
func (b *Builder) LessThan(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThan, x, y)
}

// LessOrEqual is x ≤ y.
func (b *Builder) LessOrEqual(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqual, x, y)
}

// Where selects onTrue where condition holds, else onFalse; any of the three
// may be a scalar.
func (b *Builder) Where(condition, onTrue, onFalse backends.Op) (backends.Op, error) {
	in, err := b.in(backends.OpTypeWhere, condition, onTrue, onFalse)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.WhereOp(in[0].shape, in[1].shape, in[2].shape)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeWhere, shape, in...)
}

// Clamp is min(max(x, lo), hi).
func (b *Builder) Clamp(lo, x, hi backends.Op) (backends.Op, error) {
	in, err := b.in(backends.OpTypeClamp, lo, x, hi)
	if err != nil {
		return nil, err
	}
	for _, bound := range []*node{in[0], in[2]} {
		if bound.shape.DType != in[1].shape.DType || (!bound.shape.IsScalar() && !bound.shape.Equal(in[1].shape)) {
			return nil, fmt.Errorf("cpu backend: Clamp bounds %s and %s do not match x %s", in[0].shape, in[2].shape, in[1].shape)
		}
	}
	if !binarySupported(backends.OpTypeMax, in[1].shape.DType) {
		return nil, fmt.Errorf("cpu backend: Clamp on %s is not supported", in[1].shape.DType)
	}
	return b.newNode(backends.OpTypeClamp, in[1].shape, in...)
}

// ConvertDType converts x's values to dtype.
func (b *Builder) ConvertDType(x backends.Op, dtype dtypes.DType) (backends.Op, error) {
	in, err := b.in(backends.OpTypeConvertDType, x)
	if err != nil {
		return nil, err
	}
	shape := in[0].shape.Clone()
	shape.DType = dtype
	return b.newNode(backends.OpTypeConvertDType, shape, in[0])
}

// Reshape gives x new dimensions of the same total size.
func (b *Builder) Reshape(x backends.Op, dims ...int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeReshape, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ReshapeOp(in[0].shape, dims)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeReshape, shape, in[0])
}

// Transpose permutes x's axes: output axis i is input axis permutation[i].
func (b *Builder) Transpose(x backends.Op, permutation ...int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeTranspose, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.TransposeOp(in[0].shape, permutation)
	if err != nil {
		return nil, err
	}
	n, err := b.newNode(backends.OpTypeTranspose, shape, in[0])
	if err != nil {
		return nil, err
	}
	n.ints = slices.Clone(permutation)
	return n, nil
}

// Broadcast prefixes x with new axes of the given dimensions.
func (b *Builder) Broadcast(x backends.Op, prefixDims ...int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeBroadcast, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.BroadcastOp(in[0].shape, prefixDims)
	if err != nil {
		return nil, err
	}
	n, err := b.newNode(backends.OpTypeBroadcast, shape, in[0])
	if err != nil {
		return nil, err
	}
	n.ints = slices.Clone(prefixDims)
	return n, nil
}

// BroadcastInDim broadcasts x to outputShape, x's axis i becoming output axis
// broadcastAxes[i].
func (b *Builder) BroadcastInDim(x backends.Op, outputShape shapes.Shape, broadcastAxes []int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeBroadcastInDim, x)
	if err != nil {
		return nil, err
	}
	if err := shapeinference.BroadcastInDimOp(in[0].shape, outputShape, broadcastAxes); err != nil {
		return nil, err
	}
	n, err := b.newNode(backends.OpTypeBroadcastInDim, outputShape.Clone(), in[0])
	if err != nil {
		return nil, err
	}
	n.ints = slices.Clone(broadcastAxes)
	return n, nil
}

// Slice takes x[starts:limits:strides] on every axis.
func (b *Builder) Slice(x backends.Op, starts, limits, strides []int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeSlice, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.SliceOp(in[0].shape, starts, limits, strides)
	if err != nil {
		return nil, err
	}
	n, err := b.newNode(backends.OpTypeSlice, shape, in[0])
	if err != nil {
		return nil, err
	}
	n.ints, n.ints2, n.ints3 = slices.Clone(starts), slices.Clone(limits), slices.Clone(strides)
	if len(n.ints3) == 0 {
		n.ints3 = make([]int, len(starts))
	}
	for i, s := range n.ints3 {
		if s < 1 {
			n.ints3[i] = 1
		}
	}
	return n, nil
}

// Reverse reverses x along axes.
func (b *Builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeReverse, x)
	if err != nil {
		return nil, err
	}
	for _, a := range axes {
		if a < 0 || a >= in[0].shape.Rank() {
			return nil, fmt.Errorf("cpu backend: Reverse: axis %d of %s", a, in[0].shape)
		}
	}
	n, err := b.newNode(backends.OpTypeReverse, in[0].shape, in[0])
	if err != nil {
		return nil, err
	}
	n.ints = slices.Clone(axes)
	return n, nil
}

// Concatenate joins operands along axis.
func (b *Builder) Concatenate(axis int, operands ...backends.Op) (backends.Op, error) {
	in, err := b.in(backends.OpTypeConcatenate, operands...)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, fmt.Errorf("cpu backend: Concatenate of nothing")
	}
	ss := make([]shapes.Shape, len(in))
	for i, n := range in {
		ss[i] = n.shape
	}
	shape, err := shapeinference.ConcatenateOp(ss, axis)
	if err != nil {
		return nil, err
	}
	n, err := b.newNode(backends.OpTypeConcatenate, shape, in...)
	if err != nil {
		return nil, err
	}
	n.ints = []int{axis}
	return n, nil
}

// Pad pads x with fillValue (a scalar): Start before, End after and Interior
// between the values of each axis. Negative padding is not supported.
func (b *Builder) Pad(x, fillValue backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	in, err := b.in(backends.OpTypePad, x, fillValue)
	if err != nil {
		return nil, err
	}
	xs := in[0].shape
	if !in[1].shape.IsScalar() || in[1].shape.DType != xs.DType {
		return nil, fmt.Errorf("cpu backend: Pad: fill value %s for %s", in[1].shape, xs)
	}
	if len(axesConfig) > xs.Rank() {
		return nil, fmt.Errorf("cpu backend: Pad: %d axes configured for %s", len(axesConfig), xs)
	}
	pads := make([]backends.PadAxis, xs.Rank())
	copy(pads, axesConfig)
	shape := xs.Clone()
	for i, p := range pads {
		if p.Start < 0 || p.End < 0 || p.Interior < 0 {
			return nil, fmt.Errorf("cpu backend: Pad: negative padding %+v is not supported", p)
		}
		d := xs.Dimensions[i]
		shape.Dimensions[i] = p.Start + p.End + d + max(d-1, 0)*p.Interior
	}
	n, err := b.newNode(backends.OpTypePad, shape, in...)
	if err != nil {
		return nil, err
	}
	n.pads = pads
	return n, nil
}

func (b *Builder) reduce(op backends.OpType, x backends.Op, axes []int) (backends.Op, error) {
	in, err := b.in(op, x)
	if err != nil {
		return nil, err
	}
	if len(axes) == 0 {
		axes = make([]int, in[0].shape.Rank())
		for i := range axes {
			axes[i] = i
		}
	}
	shape, err := shapeinference.ReduceOp(in[0].shape, axes)
	if err != nil {
		return nil, err
	}
	shape.DType = in[0].shape.DType
	if !reduceSupported(op, shape.DType) {
		return nil, fmt.Errorf("cpu backend: operation %s on %s is not supported", op, shape.DType)
	}
	n, err := b.newNode(op, shape, in[0])
	if err != nil {
		return nil, err
	}
	n.ints = slices.Clone(axes)
	slices.Sort(n.ints)
	return n, nil
}

// ReduceSum sums x over axes (all axes if none).
func (b *Builder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceSum, x, axes)
}

// ReduceProduct multiplies x over axes.
func (b *Builder) ReduceProduct(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceProduct, x, axes)
}

// ReduceMax takes the maximum of x over axes (NaN if any is NaN).
func (b *Builder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMax, x, axes)
}

// ReduceMin takes the minimum of x over axes (NaN if any is NaN).
func (b *Builder) ReduceMin(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMin, x, axes)
}

// ReduceLogicalAnd is true where all values over axes are.
func (b *Builder) ReduceLogicalAnd(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalAnd, x, axes)
}

// ReduceLogicalOr is true where any value over axes is.
func (b *Builder) ReduceLogicalOr(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalOr, x, axes)
}

// ArgMinMax returns the index of the first smallest (isMin) or largest value
// of x along axis; NaN counts as the extreme.
func (b *Builder) ArgMinMax(x backends.Op, axis int, outputDType dtypes.DType, isMin bool) (backends.Op, error) {
	in, err := b.in(backends.OpTypeArgMinMax, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ArgMinMaxOp(in[0].shape, axis, outputDType)
	if err != nil {
		return nil, err
	}
	if !in[0].shape.DType.IsFloat() && !in[0].shape.DType.IsInt() {
		return nil, fmt.Errorf("cpu backend: ArgMinMax on %s is not supported", in[0].shape.DType)
	}
	if !outputDType.IsInt() {
		return nil, fmt.Errorf("cpu backend: ArgMinMax: output dtype %s is not an integer", outputDType)
	}
	n, err := b.newNode(backends.OpTypeArgMinMax, shape, in[0])
	if err != nil {
		return nil, err
	}
	n.ints, n.flag = []int{axis}, isMin
	return n, nil
}

// DotGeneral contracts lhs and rhs over the paired contracting axes, with
// paired batch axes; the output's axes are batch, lhs cross, rhs cross.
func (b *Builder) DotGeneral(lhs backends.Op, lhsContractingAxes, lhsBatchAxes []int, rhs backends.Op, rhsContractingAxes, rhsBatchAxes []int) (backends.Op, error) {
	in, err := b.in(backends.OpTypeDotGeneral, lhs, rhs)
	if err != nil {
		return nil, err
	}
	l, r := in[0].shape, in[1].shape
	if l.DType != r.DType {
		return nil, fmt.Errorf("cpu backend: DotGeneral of %s and %s", l, r)
	}
	if l.DType != dtypes.Float32 && l.DType != dtypes.Float64 {
		return nil, fmt.Errorf("cpu backend: DotGeneral on %s is not supported (float32 and float64 only)", l.DType)
	}
	if len(lhsContractingAxes) != len(rhsContractingAxes) || len(lhsBatchAxes) != len(rhsBatchAxes) {
		return nil, fmt.Errorf("cpu backend: DotGeneral: axes do not pair up")
	}
	ax := &dotAxes{slices.Clone(lhsContractingAxes), slices.Clone(lhsBatchAxes), slices.Clone(rhsContractingAxes), slices.Clone(rhsBatchAxes)}
	seen := [2]map[int]bool{{}, {}}
	for side, list := range [][][]int{{ax.lhsContract, ax.lhsBatch}, {ax.rhsContract, ax.rhsBatch}} {
		rank := []int{l.Rank(), r.Rank()}[side]
		for _, axes := range list {
			for i, a := range axes {
				if a < 0 {
					a += rank
					axes[i] = a
				}
				if a < 0 || a >= rank || seen[side][a] {
					return nil, fmt.Errorf("cpu backend: DotGeneral: bad or repeated axis %d for rank %d", a, rank)
				}
				seen[side][a] = true
			}
		}
	}
	var dims []int
	for i := range ax.lhsBatch {
		if l.Dimensions[ax.lhsBatch[i]] != r.Dimensions[ax.rhsBatch[i]] {
			return nil, fmt.Errorf("cpu backend: DotGeneral batch axes of %s and %s differ", l, r)
		}
		dims = append(dims, l.Dimensions[ax.lhsBatch[i]])
	}
	for i := range ax.lhsContract {
		if l.Dimensions[ax.lhsContract[i]] != r.Dimensions[ax.rhsContract[i]] {
			return nil, fmt.Errorf("cpu backend: DotGeneral contracting axes of %s and %s differ", l, r)
		}
	}
	for a := range l.Rank() {
		if !seen[0][a] {
			dims = append(dims, l.Dimensions[a])
		}
	}
	for a := range r.Rank() {
		if !seen[1][a] {
			dims = append(dims, r.Dimensions[a])
		}
	}
	n, err := b.newNode(backends.OpTypeDotGeneral, shapes.Make(l.DType, dims...), in[0], in[1])
	if err != nil {
		return nil, err
	}
	n.dot = ax
	return n, nil
}

// Dot is the vector, matrix-vector or matrix product.
func (b *Builder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	in, err := b.in(backends.OpTypeDot, lhs, rhs)
	if err != nil {
		return nil, err
	}
	l, r := in[0].shape.Rank(), in[1].shape.Rank()
	if l < 1 || l > 2 || r < 1 || r > 2 || (l == 1 && r == 2) {
		return nil, fmt.Errorf("cpu backend: Dot of ranks %d and %d", l, r)
	}
	return b.DotGeneral(lhs, []int{l - 1}, nil, rhs, []int{0}, nil)
}
