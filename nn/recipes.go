package nn

import (
	"runtime"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Convolution adjoint recipes.
//
// On the pure-Go backend a convolution's matrix product is batched over the
// images: y[n] = P[n]·Wᵀ with patches P [N, L, K] and the weights broadcast
// to [N, O, K] (see convBatched). The generic DotGeneral rule then computes
//
//	dP[n] = v[n]·W      contracting O, which W [N, O, K] holds in the middle
//	dW[n] = v[n]ᵀ·P[n]  contracting L, which v [N, L, O] and P [N, L, K] hold in the middle
//
// and simplego transposes every such operand (patches included: K·L values
// per image) with a slow element-by-element loop before multiplying. The
// recipe below computes the same adjoints from operands built directly in the
// layout the product wants: Wᵀ broadcast to [N, K, O], the output adjoint
// transposed to [N, O, L] (L/K times smaller than the patches), and the
// patches rebuilt from an NCHW copy of the input as [N, K, L] by slicing,
// which moves each value once instead of through a transposition (or, when
// the forward pass built them that way, reused). The
// results are equal to the generic rule's, and every op used has a closed
// VJP, so higher derivatives are unchanged.
//
// Recipes are keyed by graph and node id and hold only ids, never nodes, so
// they do not keep graphs alive; a graph's recipes are dropped when the graph
// is garbage collected.

// convRecipe records how Conv2D built one batched product.
type convRecipe struct {
	x, w           NodeId // NHWC input after padding; weights [O, K] in patch-column order
	pt             NodeId // channels-first patches [N, K, L] if the forward built them, else -1
	kh, kw, stride int
}

type recipeKey struct {
	graph GraphId
	node  NodeId
}

var (
	recipesMu     sync.Mutex
	recipes       = map[recipeKey]convRecipe{}
	recipeGraphs  = map[GraphId]bool{}
	recipesActive = true // tests switch recipes off to compare with the generic rule
)

// setConvRecipe registers the recipe of the product node y; pt may be nil.
func setConvRecipe(y, x, w, pt *Node, kh, kw, stride int) {
	g := y.Graph()
	r := convRecipe{x: x.Id(), w: w.Id(), pt: -1, kh: kh, kw: kw, stride: stride}
	if pt != nil {
		r.pt = pt.Id()
	}
	recipesMu.Lock()
	defer recipesMu.Unlock()
	recipes[recipeKey{g.GraphId(), y.Id()}] = r
	if !recipeGraphs[g.GraphId()] {
		recipeGraphs[g.GraphId()] = true
		runtime.AddCleanup(g, dropRecipes, g.GraphId())
	}
}

// dropRecipes forgets the recipes of a collected graph.
func dropRecipes(id GraphId) {
	recipesMu.Lock()
	defer recipesMu.Unlock()
	for k := range recipes {
		if k.graph == id {
			delete(recipes, k)
		}
	}
	delete(recipeGraphs, id)
}

func lookupConvRecipe(node *Node) (convRecipe, bool) {
	recipesMu.Lock()
	defer recipesMu.Unlock()
	if !recipesActive {
		return convRecipe{}, false
	}
	r, ok := recipes[recipeKey{node.Graph().GraphId(), node.Id()}]
	return r, ok
}

// adjoints returns [dP, dW broadcast over the batch] for output adjoint v
// [N, L, O] of the product y = DotGeneral(P [N,L,K], Wb [N,O,K]).
func (r convRecipe) adjoints(g *Graph, v *Node) []*Node {
	x, w := g.NodeById(r.x), g.NodeById(r.w)
	n, o := v.Shape().Dimensions[0], v.Shape().Dimensions[2]
	k := w.Shape().Dimensions[1]

	wt := Reshape(Transpose(w, 0, 1), 1, k, o)
	wtb := BroadcastToShape(wt, shapes.Make(w.DType(), n, k, o))
	dP := DotGeneral(v, []int{2}, []int{0}, wtb, []int{2}, []int{0}) // [N, L, K]

	vt := Transpose(v, 1, 2) // [N, O, L]
	var pt *Node
	if r.pt >= 0 {
		pt = g.NodeById(r.pt)
	} else {
		pt = im2colChannelsFirst(x, r.kh, r.kw, r.stride)
	}
	dW := DotGeneral(vt, []int{2}, []int{0}, pt, []int{2}, []int{0}) // [N, O, K]
	return []*Node{dP, dW}
}

// im2colChannelsFirst returns the patches of NHWC x as [N, kh·kw·C, Ho·Wo]:
// the transpose of Im2Col's per-image matrices, same column order (ki, kj, c),
// built from an NCHW copy of x so that each window is one contiguous run.
func im2colChannelsFirst(x *Node, kh, kw, stride int) *Node {
	n, h, wd, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	ho, wo := (h-kh)/stride+1, (wd-kw)/stride+1
	xc := x
	if c > 1 {
		xc = TransposeAllAxes(x, 0, 3, 1, 2) // [N, C, H, W]
	}
	xc = Reshape(xc, n, c, h, wd)
	parts := make([]*Node, 0, kh*kw)
	for ki := range kh {
		for kj := range kw {
			win := Slice(xc, AxisRange(), AxisRange(),
				AxisRange(ki, ki+(ho-1)*stride+1).Stride(stride),
				AxisRange(kj, kj+(wo-1)*stride+1).Stride(stride))
			parts = append(parts, Reshape(win, n, 1, c*ho*wo))
		}
	}
	return Reshape(Concatenate(parts, 1), n, kh*kw*c, ho*wo)
}
