package cpu

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// enode is a node of a fused element-wise expression. A leaf reads a view of
// a storage (with one stride per axis of the expression's shape); an inner
// node applies an element-wise operation to its children, which all have the
// expression's shape. Trees are immutable once built and may be shared.
type enode struct {
	op    backends.OpType // inner nodes
	dtype dtypes.DType
	kids  []*enode
	leaf  *view // leaves
	k     kfn   // inner nodes: the kernel
	nops  int   // inner nodes in the tree
}

func leafNode(v view, dt dtypes.DType) *enode { return &enode{leaf: &v, dtype: dt} }

func (e *enode) isLeaf() bool { return e.leaf != nil }

// mapLeaves returns e with every leaf view replaced by f(view), or false if f
// fails for some leaf.
func (e *enode) mapLeaves(f func(view) (view, bool)) (*enode, bool) {
	if e.isLeaf() {
		v, ok := f(*e.leaf)
		if !ok {
			return nil, false
		}
		return leafNode(v, e.dtype), true
	}
	kids := make([]*enode, len(e.kids))
	for i, k := range e.kids {
		nk, ok := k.mapLeaves(f)
		if !ok {
			return nil, false
		}
		kids[i] = nk
	}
	c := *e
	c.kids = kids
	return &c, true
}

// value is what the compiler knows of a node's result: its shape and the
// expression computing it (a single leaf once it is in memory), or a sum of
// boxed terms (regions.go), e being nil.
type value struct {
	shape shapes.Shape
	e     *enode
	terms []term
}

// fused reports whether v still has to be computed (a fused expression or a
// sum of terms), as opposed to being a view of memory.
func (v *value) fused() bool { return v.terms != nil || !v.e.isLeaf() }

func (v *value) dims() []int { return v.shape.Dimensions }

// Limits of fusion: a fused expression larger than this is materialised
// before it grows further.
const maxFusedOps = 24

// compiler turns a Builder's nodes into a program.
type compiler struct {
	b        *Builder
	noFuse   bool
	vals     []*value
	uses     []int // consumers of each live node (graph outputs count)
	storages []*storage
	steps    []step
	consts   []*Buffer

	transposedDot map[int]bool // DotGeneral nodes computed transposed (dot.go)

	zeros     map[dtypes.DType]*value // a scalar zero constant per dtype
	zeroConst map[int]bool            // constant storages known to be all zeros
}

// Compile turns the recorded computation into an Executable whose results are
// outputs. The Builder cannot be used afterwards.
func (b *Builder) Compile(outputs []backends.Op, shardings []*backends.ShardingSpec) (exe backends.Executable, err error) {
	if len(shardings) != 0 {
		return nil, fmt.Errorf("cpu backend: sharding is not supported")
	}
	outs, err := b.in(backends.OpTypeInvalid, outputs...)
	if err != nil {
		return nil, err
	}
	b.compiled = true
	defer func() {
		if r := recover(); r != nil {
			exe, err = nil, fmt.Errorf("cpu backend: compiling %q: %v", b.name, r)
		}
	}()
	c := &compiler{b: b, noFuse: b.backend.noFuse}
	return c.compile(outs)
}

func (c *compiler) newStorage(kind storageKind, dt dtypes.DType, size, index int) *storage {
	s := &storage{id: len(c.storages), kind: kind, dtype: dt, size: size, index: index, first: -1, last: -1}
	c.storages = append(c.storages, s)
	return s
}

// newDense returns a fresh storage for shape and its dense leaf.
func (c *compiler) newDense(shape shapes.Shape) (*value, *storage) {
	st := c.newStorage(inArena, shape.DType, shape.Size(), -1)
	return &value{shape: shape, e: leafNode(view{st, 0, denseStrides(shape.Dimensions)}, shape.DType)}, st
}

func (c *compiler) compile(outs []*node) (*Executable, error) {
	nodes := c.b.nodes
	live := liveNodes(nodes, outs)
	if !c.noFuse {
		c.transposedDot = transposedProducts(nodes, live, outs)
	}
	c.vals = make([]*value, len(c.b.nodes))
	c.uses = make([]int, len(c.b.nodes))
	for _, n := range nodes {
		if !live[n.id] {
			continue
		}
		for _, in := range n.inputs {
			c.uses[in.id]++
		}
	}
	for _, o := range outs {
		c.uses[o.id]++
	}
	for _, p := range c.b.params {
		st := c.newStorage(inParam, p.shape.DType, p.shape.Size(), p.param)
		c.vals[p.id] = &value{shape: p.shape, e: leafNode(view{st, 0, denseStrides(p.shape.Dimensions)}, p.shape.DType)}
	}
	for _, n := range nodes {
		if !live[n.id] || n.op == backends.OpTypeParameter {
			continue
		}
		v, err := c.lower(n)
		if err != nil {
			return nil, fmt.Errorf("cpu backend: %s %s: %w", n.op, n.shape, err)
		}
		if v.fused() && (c.uses[n.id] > 1 || c.noFuse || (v.terms == nil && v.e.nops > maxFusedOps)) {
			v = c.materialize(v)
		}
		c.vals[n.id] = v
	}
	outStorages := make([]*storage, len(outs))
	for i, o := range outs {
		outStorages[i] = c.output(i, c.vals[o.id])
	}
	return c.link(outs, outStorages)
}

// liveNodes marks the nodes the outputs depend on.
func liveNodes(nodes []*node, outs []*node) []bool {
	live := make([]bool, len(nodes))
	for _, o := range outs {
		live[o.id] = true
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if n == nil || !live[n.id] {
			continue
		}
		for _, in := range n.inputs {
			live[in.id] = true
		}
	}
	return live
}

// output makes v the i-th output: the storage holding it becomes an output
// buffer when v is all of an intermediate storage in row-major order, else v
// is evaluated into a new output storage.
func (c *compiler) output(i int, v *value) *storage {
	if v.terms == nil && v.e.isLeaf() {
		st := v.e.leaf.st
		if st.kind == inArena && v.e.leaf.isDense(v.dims()) {
			st.kind, st.index = inOutput, i
			return st
		}
	}
	st := c.newStorage(inOutput, v.shape.DType, v.shape.Size(), i)
	c.evalInto(v, view{st, 0, denseStrides(v.dims())})
	return st
}

// materialize evaluates v into a new dense storage, unless it already is one.
func (c *compiler) materialize(v *value) *value {
	if v.terms == nil && v.e.isLeaf() && v.e.leaf.isDense(v.dims()) {
		return v
	}
	nv, st := c.newDense(v.shape)
	c.evalInto(v, view{st, 0, denseStrides(v.dims())})
	return nv
}

// plain returns v as an expression: a sum of terms is materialised.
func (c *compiler) plain(v *value) *value {
	if v.terms != nil {
		return c.materialize(v)
	}
	return v
}

// materializeLayout evaluates v into a new storage whose memory order of v's
// axes is order (a permutation, outermost first) and returns the view of it
// with v's own axes.
func (c *compiler) materializeLayout(v *value, order []int) *value {
	st := c.newStorage(inArena, v.shape.DType, v.shape.Size(), -1)
	dst := view{st, 0, layoutStrides(v.dims(), order)}
	c.evalInto(v, dst)
	return &value{shape: v.shape, e: leafNode(dst, v.shape.DType)}
}

// lower computes the value of node n from its inputs' values, adding steps
// for the operations that cannot be fused.
func (c *compiler) lower(n *node) (*value, error) {
	in := make([]*value, len(n.inputs))
	for i, x := range n.inputs {
		in[i] = c.vals[x.id]
		if in[i] == nil {
			return nil, fmt.Errorf("input #%d (%s) has no value", i, x.op)
		}
	}
	// Operations that keep sums of terms symbolic (regions.go).
	switch n.op {
	case backends.OpTypeIdentity:
		return in[0], nil
	case backends.OpTypeConcatenate:
		if v := c.concatTerms(n, in); v != nil {
			return v, nil
		}
	case backends.OpTypeAdd:
		if v := c.addTerms(n, in[0], in[1]); v != nil {
			return v, nil
		}
	case backends.OpTypeSlice:
		if in[0].terms != nil {
			if v := c.sliceTerms(n, in[0]); v != nil {
				return v, nil
			}
		}
	}
	for i := range in {
		in[i] = c.plain(in[i])
	}
	if c.foldable(n, in) {
		if v := c.fold(n, in); v != nil {
			return v, nil
		}
	}
	switch n.op {
	case backends.OpTypeConstant:
		return c.constant(n.value), nil
	case backends.OpTypeIota:
		return c.constant(iotaBuffer(n.shape, n.ints[0])), nil
	case backends.OpTypeReshape, backends.OpTypeTranspose, backends.OpTypeSlice, backends.OpTypeReverse,
		backends.OpTypeBroadcast, backends.OpTypeBroadcastInDim:
		return c.viewOf(n, in[0]), nil
	case backends.OpTypeConvertDType:
		if n.shape.DType == in[0].shape.DType {
			return in[0], nil
		}
		k := convertKernel(in[0].shape.DType, n.shape.DType)
		if k == nil {
			return nil, fmt.Errorf("conversion from %s", in[0].shape.DType)
		}
		return c.elementwise(n, in, k), nil
	case backends.OpTypeWhere:
		return c.elementwise(n, in, whereKernel(n.shape.DType)), nil
	case backends.OpTypeClamp:
		return c.elementwise(n, in, clampKernel(n.shape.DType)), nil
	case backends.OpTypeConcatenate:
		return c.concatenate(n, in), nil
	case backends.OpTypePad:
		return c.pad(n, in), nil
	case backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct,
		backends.OpTypeReduceLogicalAnd, backends.OpTypeReduceLogicalOr:
		return c.reduce(n, in[0]), nil
	case backends.OpTypeArgMinMax:
		return c.argMinMax(n, in[0]), nil
	case backends.OpTypeDotGeneral:
		return c.dotGeneral(n, in[0], in[1]), nil
	}
	if len(in) == 1 {
		if k := unaryKernel(n.op, in[0].shape.DType); k != nil {
			return c.elementwise(n, in, k), nil
		}
	}
	if len(in) == 2 {
		if k := binaryKernel(n.op, in[0].shape.DType); k != nil {
			return c.elementwise(n, in, k), nil
		}
	}
	return nil, fmt.Errorf("not supported")
}

// constant wraps a constant buffer as a value.
func (c *compiler) constant(buf *Buffer) *value {
	st := c.newStorage(inConst, buf.shape.DType, buf.shape.Size(), len(c.consts))
	c.consts = append(c.consts, buf)
	return &value{shape: buf.shape, e: leafNode(view{st, 0, denseStrides(buf.shape.Dimensions)}, buf.shape.DType)}
}

// iotaBuffer computes an Iota at compile time.
func iotaBuffer(shape shapes.Shape, axis int) *Buffer {
	buf := newBuffer(shape)
	dims := shape.Dimensions
	inner := product(dims[axis+1:])
	n := shape.Size()
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = float64((i / inner) % dims[axis])
	}
	fillFromFloat64(buf, vals)
	return buf
}

// fillFromFloat64 sets buf's values from float64s.
func fillFromFloat64(buf *Buffer, vals []float64) {
	switch f := buf.flat.(type) {
	case []float32:
		for i, v := range vals {
			f[i] = float32(v)
		}
	case []float64:
		copy(f, vals)
	case []int32:
		for i, v := range vals {
			f[i] = int32(v)
		}
	case []int64:
		for i, v := range vals {
			f[i] = int64(v)
		}
	case []uint8:
		for i, v := range vals {
			f[i] = uint8(v)
		}
	case []bool:
		for i, v := range vals {
			f[i] = v != 0
		}
	}
}

// viewOf applies a data-movement-free operation to v: to every leaf of its
// expression. A view that cannot be expressed on some leaf (a reshape of
// non-contiguous data) materialises v first; so does a broadcast that would
// repeat a computation.
func (c *compiler) viewOf(n *node, v *value) *value {
	inDims := v.dims()
	var f func(view) (view, bool)
	switch n.op {
	case backends.OpTypeReshape:
		f = func(w view) (view, bool) { return w.reshape(inDims, n.shape.Dimensions) }
	case backends.OpTypeTranspose:
		f = func(w view) (view, bool) { return w.transpose(n.ints), true }
	case backends.OpTypeSlice:
		f = func(w view) (view, bool) { return w.slice(n.ints, n.ints3), true }
	case backends.OpTypeReverse:
		f = func(w view) (view, bool) { return w.reverse(inDims, n.ints), true }
	case backends.OpTypeBroadcast, backends.OpTypeBroadcastInDim:
		axes := n.ints
		if n.op == backends.OpTypeBroadcast {
			axes = make([]int, len(inDims))
			for i := range axes {
				axes[i] = len(n.ints) + i
			}
		}
		if v.fused() && n.shape.Size() > v.shape.Size() {
			v = c.materialize(v)
		}
		f = func(w view) (view, bool) { return w.broadcastInDim(inDims, n.shape.Dimensions, axes), true }
	}
	if e, ok := v.e.mapLeaves(f); ok {
		return &value{shape: n.shape, e: e}
	}
	v = c.materialize(v)
	e, ok := v.e.mapLeaves(f)
	if !ok {
		panic(fmt.Errorf("%s of dense %s failed", n.op, v.shape))
	}
	return &value{shape: n.shape, e: e}
}

// broadcastTo expresses operand v of an element-wise op with the op's shape
// (a scalar, or size-1 axes that are expanded).
func (c *compiler) broadcastTo(v *value, shape shapes.Shape) *value {
	if slices.Equal(v.dims(), shape.Dimensions) {
		return v
	}
	if v.fused() {
		v = c.materialize(v)
	}
	inDims := v.dims()
	axes := make([]int, len(inDims))
	for i := range axes {
		axes[i] = i
	}
	e, _ := v.e.mapLeaves(func(w view) (view, bool) {
		return w.broadcastInDim(inDims, shape.Dimensions, axes), true
	})
	out := shape.Clone()
	out.DType = v.shape.DType
	return &value{shape: out, e: e}
}

// elementwise fuses op k over the inputs' expressions.
func (c *compiler) elementwise(n *node, in []*value, k kfn) *value {
	e := &enode{op: n.op, dtype: n.shape.DType, nops: 1, k: k}
	for _, x := range in {
		x = c.broadcastTo(x, n.shape)
		e.kids = append(e.kids, x.e)
		e.nops += x.e.nops
	}
	return &value{shape: n.shape, e: e}
}

// evalInto adds the steps evaluating v into dst (a view with v's
// dimensions).
func (c *compiler) evalInto(v *value, dst view) {
	if v.terms != nil {
		c.evalTerms(v, dst)
		return
	}
	if v.shape.Size() == 0 {
		return
	}
	c.steps = append(c.steps, newEvalStep(v, dst))
}

// concatenate evaluates each operand into its part of a new storage.
func (c *compiler) concatenate(n *node, in []*value) *value {
	out, st := c.newDense(n.shape)
	if c.concatInto(*out.e.leaf, n.shape, n.ints[0], in) {
		return out
	}
	axis := n.ints[0]
	strides := out.e.leaf.strides
	pos := 0
	for _, x := range in {
		d := x.dims()[axis]
		if d > 0 {
			c.evalInto(x, view{st, pos * strides[axis], strides})
		}
		pos += d
	}
	return out
}

// concatInto writes the concatenation of parts along axis into dst (dense)
// in one pass (concat.go), when the parts are views and the axis is inner
// enough for that to pay; it reports whether it did.
func (c *compiler) concatInto(dst view, shape shapes.Shape, axis int, parts []*value) bool {
	dims := shape.Dimensions
	outer := product(dims[:axis])
	if c.noFuse || len(parts) < 2 || axis < 2 || product(dims[:axis-1]) < 4 || shape.Size()/outer > 1<<12 || !dst.isDense(dims) {
		return false
	}
	s := newConcatStep(dst, dims, axis, parts)
	if s == nil {
		return false
	}
	c.steps = append(c.steps, s)
	return true
}

// pad fills a new storage with the pad value and evaluates the operand into
// its (possibly interleaved) interior.
func (c *compiler) pad(n *node, in []*value) *value {
	out, st := c.newDense(n.shape)
	strides := out.e.leaf.strides
	fill := c.broadcastTo(in[1], n.shape)
	c.evalInto(fill, view{st, 0, strides})
	off := 0
	inner := make([]int, len(strides))
	for i, p := range n.pads {
		off += p.Start * strides[i]
		inner[i] = strides[i] * (p.Interior + 1)
	}
	if in[0].shape.Size() > 0 {
		c.evalInto(in[0], view{st, off, inner})
	}
	return out
}
