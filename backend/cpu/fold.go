package cpu

import (
	"github.com/gomlx/gomlx/backends"
)

// Constant folding: an operation whose inputs are all constants (dense, or a
// scalar broadcast) and whose result is small is computed once, at compile
// time, by compiling and running it alone; the program then holds its
// result as a constant. Views of constants stay views (they cost nothing),
// and so do results too large to be worth storing.

// maxFolded is the largest result, in values, that is folded.
const maxFolded = 1 << 12

// foldable reports whether n may be folded given its inputs' values.
func (c *compiler) foldable(n *node, in []*value) bool {
	switch n.op {
	case backends.OpTypeConstant, backends.OpTypeParameter, backends.OpTypeIota, backends.OpTypeIdentity,
		backends.OpTypeReshape, backends.OpTypeTranspose, backends.OpTypeSlice, backends.OpTypeReverse,
		backends.OpTypeBroadcast, backends.OpTypeBroadcastInDim:
		return false
	}
	if c.noFuse || c.b.noFold || len(in) == 0 || n.shape.Size() > maxFolded {
		return false
	}
	for _, v := range in {
		if v.terms != nil || !v.e.isLeaf() || v.e.leaf.st.kind != inConst || !(v.e.leaf.isDense(v.dims()) || isScalarView(v)) {
			return false
		}
	}
	return true
}

// isScalarView reports whether v is one value broadcast (all strides 0).
func isScalarView(v *value) bool {
	for _, s := range v.e.leaf.strides {
		if s != 0 {
			return false
		}
	}
	return true
}

// fold computes n from constant inputs and returns its value as a constant,
// or nil if that fails (the node is then compiled as usual).
func (c *compiler) fold(n *node, in []*value) (v *value) {
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	b := newBuilder(c.b.backend, c.b.name+"/fold")
	b.noFold = true // the node alone, computed as usual
	inputs := make([]*node, len(in))
	for i, x := range in {
		buf := c.consts[x.e.leaf.st.index]
		k, err := b.newNode(backends.OpTypeConstant, buf.shape)
		if err != nil {
			return nil
		}
		k.value = buf
		if !x.e.leaf.isDense(x.dims()) { // a scalar broadcast: take its value, broadcast again
			k.shape = x.shape.Clone()
			k.shape.Dimensions = nil
			k.value = newBuffer(k.shape)
			copy(k.value.bytes(), buf.bytes()[x.e.leaf.off*buf.shape.DType.Size():])
			bc, err := b.BroadcastInDim(k, x.shape, nil)
			if err != nil {
				return nil
			}
			k = bc.(*node)
		}
		inputs[i] = k
	}
	clone := *n
	clone.id, clone.b, clone.inputs = len(b.nodes), b, inputs
	b.nodes = append(b.nodes, &clone)
	exe, err := b.Compile([]backends.Op{&clone}, nil)
	if err != nil {
		return nil
	}
	out, err := exe.Execute(nil, nil, 0)
	if err != nil {
		return nil
	}
	return c.constant(out[0].(*Buffer))
}
