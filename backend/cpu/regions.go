package cpu

import (
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Sums of boxed terms.
//
// Reverse-mode differentiation of a slice places the adjoint back into a
// tensor of zeros (nn's unslice: a concatenation with zero blocks), and the
// adjoints of the kh·kw window slices of an im2col convolution, or of the two
// halves of a max-pool window, are then summed. Materialising each padded
// term would write kh·kw full-size tensors, mostly zeros. Instead the
// compiler keeps such a value symbolically as a sum of terms, each a value
// that is zero outside a box: a concatenation with zero operands is a term
// list, a sum of term lists is their union, a slice intersects the boxes.
// Only when something else reads the value is it materialised: zeros where
// no box reaches, each term written into its box (added, where boxes
// overlap). That is col2im, derived from the graph.

// term is a value that is zero outside the box starting at lo with the
// value's dimensions.
type term struct {
	lo []int
	v  *value
}

// maxTerms bounds the terms of one value; beyond, it is materialised.
const maxTerms = 64

// zeroValue returns a constant 0 of shape's dtype, broadcast to shape.
func (c *compiler) zeroValue(shape shapes.Shape) *value {
	if c.zeros == nil {
		c.zeros = map[dtypes.DType]*value{}
	}
	z, ok := c.zeros[shape.DType]
	if !ok {
		z = c.constant(newBuffer(shapes.Make(shape.DType)))
		c.zeros[shape.DType] = z
	}
	return &value{shape: shape, e: leafNode(view{z.e.leaf.st, 0, make([]int, shape.Rank())}, shape.DType)}
}

// isZero reports whether v is known to be all zeros: a view of a constant
// whose values are all zero.
func (c *compiler) isZero(v *value) bool {
	if v.terms != nil || !v.e.isLeaf() || v.e.leaf.st.kind != inConst {
		return false
	}
	st := v.e.leaf.st
	if c.zeroConst == nil {
		c.zeroConst = map[int]bool{}
	}
	z, ok := c.zeroConst[st.id]
	if !ok {
		z = true
		for _, b := range c.consts[st.index].bytes() {
			if b != 0 {
				z = false
				break
			}
		}
		c.zeroConst[st.id] = z
	}
	return z
}

// termsOf returns v as a term list (a single full-box term for a plain value).
func termsOf(v *value) []term {
	if v.terms != nil {
		return v.terms
	}
	return []term{{lo: make([]int, v.shape.Rank()), v: v}}
}

// withTerms builds a value from terms: zero if there are none, the term
// itself if it is one covering everything.
func (c *compiler) withTerms(shape shapes.Shape, terms []term) *value {
	switch {
	case len(terms) == 0:
		return c.zeroValue(shape)
	case len(terms) == 1 && slices.Equal(terms[0].v.dims(), shape.Dimensions):
		return terms[0].v
	case len(terms) > maxTerms:
		return c.materialize(&value{shape: shape, terms: terms})
	}
	return &value{shape: shape, terms: terms}
}

// concatTerms is Concatenate when some operands are zero: the others become
// terms. It returns nil when no operand is zero.
func (c *compiler) concatTerms(n *node, in []*value) *value {
	zero := make([]bool, len(in))
	anyZero := false
	for i, x := range in {
		zero[i] = c.isZero(x)
		anyZero = anyZero || zero[i]
	}
	if !anyZero {
		return nil
	}
	axis := n.ints[0]
	var terms []term
	pos := 0
	for i, x := range in {
		if !zero[i] && x.shape.Size() > 0 {
			for _, t := range termsOf(x) {
				lo := slices.Clone(t.lo)
				lo[axis] += pos
				terms = append(terms, term{lo, t.v})
			}
		}
		pos += x.dims()[axis]
	}
	return c.withTerms(n.shape, terms)
}

// addTerms is Add when an operand is a term list or zero; nil otherwise.
func (c *compiler) addTerms(n *node, a, b *value) *value {
	if !slices.Equal(a.dims(), n.shape.Dimensions) || !slices.Equal(b.dims(), n.shape.Dimensions) {
		return nil
	}
	switch {
	case c.isZero(a):
		return b
	case c.isZero(b):
		return a
	case a.terms == nil && b.terms == nil:
		return nil
	}
	return c.withTerms(n.shape, slices.Concat(termsOf(a), termsOf(b)))
}

// sliceTerms slices a term list (unit strides only): boxes are intersected
// with the slice and their values sliced.
func (c *compiler) sliceTerms(n *node, v *value) *value {
	for _, s := range n.ints3 {
		if s != 1 {
			return nil
		}
	}
	starts, limits := n.ints, n.ints2
	var terms []term
	for _, t := range v.terms {
		td := t.v.dims()
		lo := make([]int, len(td))
		from, to := make([]int, len(td)), make([]int, len(td))
		empty := false
		for a := range td {
			l, h := max(t.lo[a], starts[a]), min(t.lo[a]+td[a], limits[a])
			if l >= h {
				empty = true
				break
			}
			lo[a] = l - starts[a]
			from[a], to[a] = l-t.lo[a], h-t.lo[a]
		}
		if empty {
			continue
		}
		tv := t.v
		if !slices.Equal(from, make([]int, len(td))) || !slices.Equal(to, td) {
			dims := make([]int, len(td))
			for a := range td {
				dims[a] = to[a] - from[a]
			}
			sn := &node{op: backends.OpTypeSlice, shape: shapes.Make(tv.shape.DType, dims...), ints: from, ints2: to, ints3: ones(len(td))}
			tv = c.viewOf(sn, tv)
		}
		terms = append(terms, term{lo, tv})
	}
	return c.withTerms(n.shape, terms)
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// boxesDisjoint reports whether no two terms' boxes overlap, and whether
// together they cover a shape of the given size.
func boxesDisjoint(terms []term, size int) (disjoint, covering bool) {
	total := 0
	for i, t := range terms {
		total += t.v.shape.Size()
		for _, u := range terms[:i] {
			overlap := true
			for a := range t.lo {
				if t.lo[a] >= u.lo[a]+u.v.dims()[a] || u.lo[a] >= t.lo[a]+t.v.dims()[a] {
					overlap = false
					break
				}
			}
			if overlap {
				return false, false
			}
		}
	}
	return true, total == size
}

// tilesAxis reports whether the terms lie side by side along one axis (each
// spans every other axis whole): then the value is the concatenation along
// that axis of the terms and of zeros in the gaps, returned in order.
func (c *compiler) tilesAxis(v *value) (int, []*value) {
	dims := v.dims()
	axis := -1
	for _, t := range v.terms {
		for a, d := range t.v.dims() {
			if d == dims[a] {
				continue
			}
			if axis >= 0 && axis != a {
				return -1, nil
			}
			axis = a
		}
	}
	if axis < 0 {
		return -1, nil
	}
	terms := slices.Clone(v.terms)
	slices.SortFunc(terms, func(a, b term) int { return a.lo[axis] - b.lo[axis] })
	var parts []*value
	pos := 0
	gap := func(to int) {
		if to > pos {
			z := v.shape.Clone()
			z.Dimensions[axis] = to - pos
			parts = append(parts, c.zeroValue(z))
		}
	}
	for _, t := range terms {
		gap(t.lo[axis])
		parts = append(parts, t.v)
		pos = t.lo[axis] + t.v.dims()[axis]
	}
	gap(dims[axis])
	return axis, parts
}

// evalTerms writes a term list into dst (a view with the value's
// dimensions): zeros unless the boxes tile it, then each term into its box,
// added to what is there when boxes overlap.
func (c *compiler) evalTerms(v *value, dst view) {
	disjoint, covering := boxesDisjoint(v.terms, v.shape.Size())
	if !disjoint && !c.noFuse {
		if s := newAccumStep(v, dst); s != nil {
			c.steps = append(c.steps, s)
			return
		}
	}
	if disjoint && !c.noFuse {
		if axis, parts := c.tilesAxis(v); axis >= 0 && c.concatInto(dst, v.shape, axis, parts) {
			return
		}
	}
	if !covering {
		c.evalInto(c.zeroValue(v.shape), dst)
	}
	for _, t := range v.terms {
		box := view{dst.st, dst.off, dst.strides}
		for a, l := range t.lo {
			box.off += l * dst.strides[a]
		}
		tv := t.v
		if !disjoint {
			sum := &enode{op: backends.OpTypeAdd, dtype: tv.shape.DType, k: binaryKernel(backends.OpTypeAdd, tv.shape.DType)}
			plain := c.plain(tv)
			sum.kids = []*enode{leafNode(box, tv.shape.DType), plain.e}
			sum.nops = 1 + plain.e.nops
			tv = &value{shape: tv.shape, e: sum}
		}
		c.evalInto(tv, box)
	}
}
