package nn

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom: graph code reads as formulas.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// This file is the one place where the package changes GoMLX's global state:
// the reverse-mode rules (VJPs) of DotGeneral, Dot and Slice nodes.
//
// GoMLX keeps a node's parameters (contracting axes, slice starts, …) in
// unexported fields; the only public view of them is Node.String(), whose
// format is generated code of the pinned GoMLX version. The rules below parse
// it (parseDotGeneral, parseSlice) and panic with the text they could not
// parse, so a GoMLX upgrade that changes the format fails the tests loudly
// instead of computing wrong gradients.

// stockVJP keeps GoMLX's own rules for the overridden node types, for tests.
var stockVJP = map[NodeType]VJP{}

func init() {
	for _, t := range []NodeType{NodeTypeDotGeneral, NodeTypeDot, NodeTypeSlice} {
		stockVJP[t] = VJPRegistration[t]
	}
	VJPRegistration[NodeTypeDotGeneral] = singleOutput(dotGeneralVJP)
	VJPRegistration[NodeTypeDot] = singleOutput(dotVJP)
	VJPRegistration[NodeTypeSlice] = singleOutput(sliceVJP)
}

// singleOutput adapts a one-output rule to graph.VJP.
func singleOutput(fn func(node, v *Node) []*Node) VJP {
	return func(node *Node, vjps []*Node, _ shapes.Shape) []*Node { return fn(node, vjps[0]) }
}

// dotAxes are the axes of one DotGeneral node.
type dotAxes struct {
	lhsContract, lhsBatch, rhsContract, rhsBatch []int
}

var dotGeneralRE = regexp.MustCompile(`DotGeneral\(lhs=\[#\d+\], lhsContractingAxes=\[([0-9 ]*)\], lhsBatchAxes=\[([0-9 ]*)\], rhs=\[#\d+\], rhsContractingAxes=\[([0-9 ]*)\], rhsBatchAxes=\[([0-9 ]*)\]\)`)

// parseDotGeneral recovers the axes of a DotGeneral node.
func parseDotGeneral(node *Node) dotAxes {
	s := node.String()
	m := dotGeneralRE.FindStringSubmatch(s)
	if m == nil {
		panic(fmt.Errorf("nn: cannot read the axes of DotGeneral node %q (GoMLX's node format changed?)", s))
	}
	return dotAxes{parseInts(m[1], s), parseInts(m[2], s), parseInts(m[3], s), parseInts(m[4], s)}
}

var sliceRE = regexp.MustCompile(`Slice\(x=\[#\d+\], starts=\[([0-9 ]*)\], limits=\[([0-9 ]*)\], strides=\[([0-9 ]*)\]\)`)

// parseSlice recovers starts, limits and strides of a Slice node.
func parseSlice(node *Node) (starts, limits, strides []int) {
	s := node.String()
	m := sliceRE.FindStringSubmatch(s)
	if m == nil {
		panic(fmt.Errorf("nn: cannot read the bounds of Slice node %q (GoMLX's node format changed?)", s))
	}
	return parseInts(m[1], s), parseInts(m[2], s), parseInts(m[3], s)
}

// parseInts parses "1 2 3" (fmt's %v of []int without brackets).
func parseInts(field, context string) []int {
	var out []int
	for _, f := range strings.Fields(field) {
		v, err := strconv.Atoi(f)
		if err != nil {
			panic(fmt.Errorf("nn: bad integer %q in node %q", f, context))
		}
		out = append(out, v)
	}
	return out
}

// crossAxes lists, in increasing order, the axes of a rank-r operand that are
// neither contracted nor batch axes.
func crossAxes(rank int, contract, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// iotaFrom returns [start, start+1, …, start+n-1].
func iotaFrom(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

// dotGeneralVJP is the reverse-mode rule of out = DotGeneral(lhs, rhs): each
// input's adjoint is itself one DotGeneral of the output adjoint v with the
// other input, followed by a transposition back to the input's axis order
// (skipped when it is the identity). GoMLX's stock rule instead materialises
// the broadcast product [batch, lhs cross, rhs cross, contracted] and sums it.
func dotGeneralVJP(node, v *Node) []*Node {
	if r, ok := lookupConvRecipe(node); ok {
		return r.adjoints(node.Graph(), v)
	}
	ax := parseDotGeneral(node)
	in := node.Inputs()
	return dotGeneralAdjoints(in[0], in[1], ax, v)
}

// dotGeneralAdjoints returns the adjoints of lhs and rhs of DotGeneral(lhs,
// rhs) with the given axes for output adjoint v.
func dotGeneralAdjoints(lhs, rhs *Node, ax dotAxes, v *Node) []*Node {
	lhsCross := crossAxes(lhs.Rank(), ax.lhsContract, ax.lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), ax.rhsContract, ax.rhsBatch)
	nb := len(ax.lhsBatch)
	// Axes of v (and of the output): batch, lhs cross, rhs cross.
	vBatch := iotaFrom(0, nb)
	vLhs := iotaFrom(nb, len(lhsCross))
	vRhs := iotaFrom(nb+len(lhsCross), len(rhsCross))

	// d lhs: contract v's rhs-cross axes with rhs's cross axes. The result has
	// axes [batch, lhs cross, rhs contracted axes in increasing order].
	dl := DotGeneral(v, vRhs, vBatch, rhs, rhsCross, ax.rhsBatch)
	dl = backToOperandOrder(dl, lhs.Rank(), ax.lhsBatch, lhsCross, ax.lhsContract, ax.rhsContract)

	// d rhs: contract v's lhs-cross axes with lhs's cross axes: result axes
	// [batch, rhs cross, lhs contracted axes in increasing order].
	dr := DotGeneral(v, vLhs, vBatch, lhs, lhsCross, ax.lhsBatch)
	dr = backToOperandOrder(dr, rhs.Rank(), ax.rhsBatch, rhsCross, ax.rhsContract, ax.lhsContract)
	return []*Node{dl, dr}
}

// backToOperandOrder transposes the adjoint computed by dotGeneralAdjoints,
// whose axes are [batch…, cross…, partner's contracted axes sorted], into the
// operand's own axis order. contract[i] is the operand's axis paired with the
// partner's axis partner[i].
func backToOperandOrder(x *Node, rank int, batch, cross, contract, partner []int) *Node {
	sortedPartner := slices.Clone(partner)
	slices.Sort(sortedPartner)
	perm := make([]int, rank)
	for i, a := range batch {
		perm[a] = i
	}
	for j, a := range cross {
		perm[a] = len(batch) + j
	}
	for i, a := range contract {
		perm[a] = len(batch) + len(cross) + slices.Index(sortedPartner, partner[i])
	}
	for i, p := range perm {
		if i != p {
			return TransposeAllAxes(x, perm...)
		}
	}
	return x
}

// dotVJP is the reverse-mode rule of Dot (vector·vector, matrix·vector,
// matrix·matrix), expressed as the DotGeneral it is.
func dotVJP(node, v *Node) []*Node {
	in := node.Inputs()
	return dotGeneralAdjoints(in[0], in[1], dotAxes{lhsContract: []int{in[0].Rank() - 1}, rhsContract: []int{0}}, v)
}

// sliceVJP is the reverse-mode rule of Slice without Pad: the adjoint v is
// placed back into a zero tensor of the input's shape by concatenating zero
// blocks around it, axis by axis; a stride s along an axis interleaves s-1
// zeros after every element (a concatenation on a new axis of size s, then a
// reshape). Its own VJP is made of slices of the adjoint, so the rule is
// closed under repeated differentiation.
func sliceVJP(node, v *Node) []*Node {
	starts, limits, strides := parseSlice(node)
	x := node.Inputs()[0]
	return []*Node{unslice(v, x.Shape(), starts, limits, strides)}
}

// unslice is the adjoint of Slice(x, starts, limits, strides) for a tensor x of
// shape xShape: v at the sliced positions, zeros elsewhere.
func unslice(v *Node, xShape shapes.Shape, starts, limits, strides []int) *Node {
	g := v.Graph()
	for axis, dim := range xShape.Dimensions {
		n := v.Shape().Dimensions[axis]
		stride := strides[axis]
		if stride < 1 {
			stride = 1
		}
		if n == dim {
			continue // Full axis: nothing was cut.
		}
		if stride > 1 && n > 0 {
			// Interleave: [.., n, ..] -> [.., n, stride, ..] with v at offset 0 of the new axis.
			dims := v.Shape().Dimensions
			expanded := slices.Concat(dims[:axis+1], []int{1}, dims[axis+1:])
			zerosDims := slices.Concat(dims[:axis+1], []int{stride - 1}, dims[axis+1:])
			v = Concatenate([]*Node{Reshape(v, expanded...), Zeros(g, shapes.Make(v.DType(), zerosDims...))}, axis+1)
			merged := slices.Concat(dims[:axis], []int{n * stride}, dims[axis+1:])
			v = Reshape(v, merged...)
			// Keep only up to the original limit; the last element's trailing zeros may overrun.
			if keep := limits[axis] - starts[axis]; keep < n*stride {
				v = SliceAxis(v, axis, AxisRange(0, keep))
			}
		}
		before := starts[axis]
		after := dim - before - v.Shape().Dimensions[axis]
		parts := make([]*Node, 0, 3)
		if before > 0 {
			parts = append(parts, Zeros(g, withDim(v.Shape(), axis, before)))
		}
		parts = append(parts, v)
		if after > 0 {
			parts = append(parts, Zeros(g, withDim(v.Shape(), axis, after)))
		}
		if len(parts) > 1 {
			v = Concatenate(parts, axis)
		}
	}
	return v
}

// withDim returns s with dimension axis replaced by d.
func withDim(s shapes.Shape, axis, d int) shapes.Shape {
	c := s.Clone()
	c.Dimensions[axis] = d
	return c
}
