package hessian

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/nn"
)

// ModelHessianOptions configures NewModelHessian.
type ModelHessianOptions struct {
	// BatchSize is the number of examples per graph execution; 0 (or more
	// than N) puts all N in one batch. Products are summed over batches,
	// so the result does not depend on it, except in batch-norm train
	// mode, where each batch is normalised with its own statistics (as the
	// seed's loader does with its batch size).
	BatchSize int
	// VectorsPerPass is the largest number of products one graph execution
	// computes, sharing one forward and one first backward pass: products
	// of several targets, several vectors of one target, or both (0 means
	// 1). One graph is compiled per combination of targets that a call
	// needs, so a large value with many targets compiles many graphs.
	VectorsPerPass int
}

// LockstepWidth is a suggested ModelHessianOptions.VectorsPerPass (and
// RunOptions.MaxBatch) for an operator of dimension dim: up to 16 products
// per graph execution, fewer as dim grows so that the recurrences' vectors
// (about 4·width·dim float64 values) stay near 128 MiB; 1 from 4M
// parameters up (VGG11, ResNet18 full). Sharing pays most where the
// second backward pass is short: on LeNet's 100-image subset and the
// pure-Go backend, 16 products per pass cost about 0.06 (fc3), 0.15 (fc1,
// fc2), 0.5 (conv2), 0.7 (full) and 0.65–1 (conv1) times the CPU time of
// one product alone (BenchmarkHVP; noisy on a shared machine).
func LockstepWidth(dim int) int {
	return min(16, max(1, (1<<22)/max(dim, 1)))
}

// ModelHessian is the Hessian of a classifier's mean cross-entropy over a
// data set, with respect to one or more targets, as a Group of Operators
// (one per target, in the order given):
//
//	H v = (1/N) Σ_batches ∇θ ((∇θ Σ_{i∈batch} ℓᵢ) · v)
//
// — Pearlmutter's product by double backpropagation (SEED-SPEC §4.1), θ
// being the target's parameters, all others held fixed. A vector of the
// full target concatenates the parameters in Classifier order, each
// flattened row-major; a one-tensor target's vector is that tensor
// flattened.
//
// The graphs are built and compiled once per combination of targets in a
// call (and per batch shape) and reused for every product; the parameter
// values and the data batches are converted to tensors once. The products
// are summed over batches in float64, in batch order, so a result depends
// on the inputs only. Several products in one ApplyGroup call share a
// forward and first backward pass, VectorsPerPass at a time.
//
// A ModelHessian is not safe for concurrent use. Close releases its
// compiled graphs and data tensors.
type ModelHessian struct {
	backend backends.Backend
	c       *Classifier
	dtype   dtypes.DType
	targets []Target
	dims    []int
	n       int
	batches []dataBatch
	perPass int
	execs   map[string]*Exec

	loss     float64
	haveLoss bool
	products int
}

// dataBatch is one batch of examples, as tensors in the classifier's dtype.
type dataBatch struct {
	n    int
	x, y *tensors.Tensor
}

// NewModelHessian prepares the Hessians of c's mean loss over data with
// respect to each of targets (see Classifier.Target), on backend. The
// classifier's tensors are used, not copied, and must outlive the
// ModelHessian.
func NewModelHessian(backend backends.Backend, c *Classifier, data Data, targets []Target, o ModelHessianOptions) (*ModelHessian, error) {
	if backend == nil {
		return nil, fmt.Errorf("model hessian: no backend")
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("model hessian: %w", err)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("model hessian: no targets")
	}
	n, err := data.n()
	if err == nil {
		err = c.checkData(data)
	}
	if err != nil {
		return nil, fmt.Errorf("model hessian: %w", err)
	}
	if o.BatchSize < 0 || o.VectorsPerPass < 0 {
		return nil, fmt.Errorf("model hessian: batch size %d, vectors per pass %d: want ≥ 0", o.BatchSize, o.VectorsPerPass)
	}
	h := &ModelHessian{backend: backend, c: c, dtype: c.DType(), targets: targets, n: n,
		perPass: max(o.VectorsPerPass, 1), execs: map[string]*Exec{}}
	for _, t := range targets {
		if len(t.Params) == 0 || !slices.IsSorted(t.Params) || len(slices.Compact(slices.Clone(t.Params))) != len(t.Params) {
			return nil, fmt.Errorf("model hessian: target %q: parameter indices %v: want distinct ascending indices", t.Name, t.Params)
		}
		dim := 0
		for _, p := range t.Params {
			if p < 0 || p >= len(c.Values) {
				return nil, fmt.Errorf("model hessian: target %q: parameter %d of %d", t.Name, p, len(c.Values))
			}
			dim += c.Values[p].Size()
		}
		h.dims = append(h.dims, dim)
	}
	size := len(data.X) / n
	bs := o.BatchSize
	if bs == 0 || bs > n {
		bs = n
	}
	for lo := 0; lo < n; lo += bs {
		hi := min(lo+bs, n)
		b := dataBatch{n: hi - lo, y: tensors.FromFlatDataAndDimensions(slices.Clone(data.Y[lo:hi]), hi-lo)}
		b.x = floatTensor(data.X[lo*size:hi*size], h.dtype, append([]int{hi - lo}, data.Shape...))
		h.batches = append(h.batches, b)
	}
	return h, nil
}

// Close releases the compiled graphs and the data tensors (on device too).
// The ModelHessian must not be used afterwards.
func (h *ModelHessian) Close() {
	for _, e := range h.execs {
		e.Finalize()
	}
	h.execs = nil
	for _, b := range h.batches {
		b.x.FinalizeAll()
		b.y.FinalizeAll()
	}
	h.batches = nil
}

// Len returns the number of targets.
func (h *ModelHessian) Len() int { return len(h.targets) }

// Dim returns the dimension of target i: its number of parameter values.
func (h *ModelHessian) Dim(i int) int { return h.dims[i] }

// Target returns target i.
func (h *ModelHessian) Target(i int) Target { return h.targets[i] }

// N returns the number of examples the loss is averaged over.
func (h *ModelHessian) N() int { return h.n }

// DType returns the dtype the graphs compute in.
func (h *ModelHessian) DType() dtypes.DType { return h.dtype }

// Products returns the number of Hessian-vector products computed so far.
func (h *ModelHessian) Products() int { return h.products }

// Operator returns target i as an Operator, which is also a BatchOperator.
func (h *ModelHessian) Operator(i int) *TargetOperator {
	return &TargetOperator{h: h, i: i}
}

// TargetOperator is one target of a ModelHessian as an Operator.
type TargetOperator struct {
	h *ModelHessian
	i int
}

// Dim returns the target's dimension.
func (t *TargetOperator) Dim() int { return t.h.dims[t.i] }

// Apply sets dst = H src.
func (t *TargetOperator) Apply(ctx context.Context, dst, src []float64) error {
	return t.h.ApplyGroup(ctx, []int{t.i}, [][]float64{dst}, [][]float64{src})
}

// ApplyBatch sets dst[k] = H src[k] for every k, VectorsPerPass at a time.
func (t *TargetOperator) ApplyBatch(ctx context.Context, dst, src [][]float64) error {
	which := make([]int, len(src))
	for k := range which {
		which[k] = t.i
	}
	return t.h.ApplyGroup(ctx, which, dst, src)
}

// ApplyGroup sets dst[k] = H_{which[k]} src[k] for every k (see Group),
// VectorsPerPass products per graph execution. It checks ctx before every
// execution.
func (h *ModelHessian) ApplyGroup(ctx context.Context, which []int, dst, src [][]float64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hessian-vector product: %v", p)
		}
	}()
	if len(dst) != len(which) || len(src) != len(which) {
		return fmt.Errorf("hessian-vector product: %d targets, %d destinations, %d sources", len(which), len(dst), len(src))
	}
	for k, i := range which {
		if i < 0 || i >= len(h.targets) {
			return fmt.Errorf("hessian-vector product: target %d of %d", i, len(h.targets))
		}
		if len(dst[k]) != h.dims[i] || len(src[k]) != h.dims[i] {
			return fmt.Errorf("hessian-vector product of %s (dimension %d): vectors of length %d and %d", h.targets[i].Name, h.dims[i], len(dst[k]), len(src[k]))
		}
	}
	if h.execs == nil {
		return fmt.Errorf("hessian-vector product: the model hessian is closed")
	}
	for lo := 0; lo < len(which); lo += h.perPass {
		hi := min(lo+h.perPass, len(which))
		if err := h.pass(ctx, which[lo:hi], dst[lo:hi], src[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

// pass computes the products of one graph execution per batch. The slots
// are sorted by target so that one graph serves every order of a
// combination.
func (h *ModelHessian) pass(ctx context.Context, which []int, dst, src [][]float64) error {
	order := make([]int, len(which))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(a, b int) int { return which[a] - which[b] })
	slots := make([]int, len(which))
	for k, o := range order {
		slots[k] = which[o]
	}
	exec, err := h.exec("hvp", slots)
	if err != nil {
		return err
	}
	vs := make([]*tensors.Tensor, len(slots))
	defer func() {
		for _, v := range vs {
			if v != nil {
				v.FinalizeAll()
			}
		}
	}()
	for k, o := range order {
		vs[k] = floatTensor(src[o], h.dtype, []int{len(src[o])})
		clear(dst[o])
	}
	loss := 0.0
	for _, b := range h.batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		outs, err := exec.Exec(h.args(b, vs)...)
		if err != nil {
			return fmt.Errorf("hessian-vector product of %s: %w", h.names(slots), err)
		}
		loss += scalarOf(outs[0])
		for k, o := range order {
			addTo(dst[o], outs[1+k])
		}
		for _, t := range outs {
			t.FinalizeAll()
		}
	}
	h.loss, h.haveLoss = loss, true
	h.products += len(slots)
	return nil
}

// Loss returns the mean loss over the data at the classifier's values. It
// is a by-product of every product; before the first one it runs a
// forward pass.
func (h *ModelHessian) Loss(ctx context.Context) (float64, error) {
	if h.haveLoss {
		return h.loss, nil
	}
	loss, _, err := h.gradient(ctx, -1)
	if err != nil {
		return 0, err
	}
	h.loss, h.haveLoss = loss, true
	return loss, nil
}

// Gradient returns the mean loss and its gradient with respect to target
// i (a forward and one backward pass per batch).
func (h *ModelHessian) Gradient(ctx context.Context, i int) (float64, []float64, error) {
	if i < 0 || i >= len(h.targets) {
		return 0, nil, fmt.Errorf("gradient: target %d of %d", i, len(h.targets))
	}
	return h.gradient(ctx, i)
}

// gradient computes the loss and, for i ≥ 0, the gradient of target i.
func (h *ModelHessian) gradient(ctx context.Context, i int) (loss float64, grad []float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("gradient: %v", p)
		}
	}()
	if h.execs == nil {
		return 0, nil, fmt.Errorf("gradient: the model hessian is closed")
	}
	var slots []int
	if i >= 0 {
		slots = []int{i}
		grad = make([]float64, h.dims[i])
	}
	exec, err := h.exec("grad", slots)
	if err != nil {
		return 0, nil, err
	}
	for _, b := range h.batches {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		outs, err := exec.Exec(h.args(b, nil)...)
		if err != nil {
			return 0, nil, fmt.Errorf("gradient of %s: %w", h.names(slots), err)
		}
		loss += scalarOf(outs[0])
		if i >= 0 {
			addTo(grad, outs[1])
		}
		for _, t := range outs {
			t.FinalizeAll()
		}
	}
	return loss, grad, nil
}

// args lists the inputs of one execution: values, fixed, x, y, vectors.
func (h *ModelHessian) args(b dataBatch, vs []*tensors.Tensor) []any {
	args := make([]any, 0, len(h.c.Values)+len(h.c.Fixed)+2+len(vs))
	for _, t := range h.c.Values {
		args = append(args, t)
	}
	for _, t := range h.c.Fixed {
		args = append(args, t)
	}
	args = append(args, b.x, b.y)
	for _, v := range vs {
		args = append(args, v)
	}
	return args
}

// names lists the targets of slots, for messages.
func (h *ModelHessian) names(slots []int) string {
	if len(slots) == 0 {
		return "the loss"
	}
	var s []string
	for _, i := range slots {
		s = append(s, h.targets[i].Name)
	}
	return strings.Join(s, ", ")
}

// exec returns the compiled graph of one kind ("hvp": products for slots;
// "grad": the gradient of slots[0], or the loss alone for no slot).
func (h *ModelHessian) exec(kind string, slots []int) (*Exec, error) {
	key := fmt.Sprint(kind, slots)
	if e, ok := h.execs[key]; ok {
		return e, nil
	}
	var fn func(in []*Node) []*Node
	if kind == "hvp" {
		fn = h.hvpGraph(slots)
	} else {
		fn = h.gradGraph(slots)
	}
	e, err := NewExec(h.backend, fn)
	if err != nil {
		return nil, fmt.Errorf("building the %s graph of %s: %w", kind, h.names(slots), err)
	}
	e.SetMaxCache(max(8, 2*len(h.batches)))
	h.execs[key] = e
	return e, nil
}

// lossNode builds the batch's share of the mean loss, (n_b/N)·mean_b ℓ,
// whose sum over batches is the mean over all N examples.
func (h *ModelHessian) lossNode(in []*Node) (loss *Node, params []*Node, rest []*Node) {
	np, nf := len(h.c.Values), len(h.c.Fixed)
	params, fixed := in[:np], in[np:np+nf]
	x, y := in[np+nf], in[np+nf+1]
	logits := h.c.Logits(params, fixed, x)
	lossFn := h.c.Loss
	if lossFn == nil {
		lossFn = nn.CrossEntropy
	}
	loss = lossFn(logits, y)
	if nb := x.Shape().Dimensions[0]; nb != h.n {
		loss = MulScalar(loss, float64(nb)/float64(h.n))
	}
	return loss, params, in[np+nf+2:]
}

// gradGraph is the loss and, with one slot, the gradient of its target,
// flattened.
func (h *ModelHessian) gradGraph(slots []int) func(in []*Node) []*Node {
	return func(in []*Node) []*Node {
		loss, params, _ := h.lossNode(in)
		out := []*Node{loss}
		if len(slots) == 1 {
			t := h.targets[slots[0]]
			out = append(out, flatConcat(Gradient(loss, pick(params, t.Params)...)))
		}
		return out
	}
}

// hvpGraph is the loss and one product per slot: the gradient with respect
// to the union of the slots' parameters (one forward and one backward
// pass, shared), then for slot k the gradient of ⟨g_{T_k}, v_k⟩ with
// respect to T_k's parameters.
func (h *ModelHessian) hvpGraph(slots []int) func(in []*Node) []*Node {
	return func(in []*Node) []*Node {
		loss, params, vs := h.lossNode(in)
		var union []int
		for _, s := range slots {
			union = append(union, h.targets[s].Params...)
		}
		slices.Sort(union)
		union = slices.Compact(union)
		g := map[int]*Node{}
		for j, gj := range Gradient(loss, pick(params, union)...) {
			g[union[j]] = gj
		}
		out := []*Node{loss}
		for k, s := range slots {
			t := h.targets[s]
			var dot *Node
			off := 0
			for _, p := range t.Params {
				shape := params[p].Shape().Dimensions
				size := params[p].Shape().Size()
				v := vs[k]
				if len(t.Params) > 1 {
					v = Slice(v, AxisRange(off, off+size))
				}
				term := ReduceAllSum(Mul(g[p], Reshape(v, shape...)))
				off += size
				if dot == nil {
					dot = term
				} else {
					dot = Add(dot, term)
				}
			}
			out = append(out, flatConcat(Gradient(dot, pick(params, t.Params)...)))
		}
		return out
	}
}

// pick returns nodes[idx[0]], nodes[idx[1]], ….
func pick(nodes []*Node, idx []int) []*Node {
	out := make([]*Node, len(idx))
	for j, i := range idx {
		out[j] = nodes[i]
	}
	return out
}

// flatConcat flattens nodes and concatenates them into one vector.
func flatConcat(nodes []*Node) *Node {
	flat := make([]*Node, len(nodes))
	for i, n := range nodes {
		flat[i] = Reshape(n, n.Shape().Size())
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return Concatenate(flat, 0)
}

// floatTensor converts values to a tensor of dtype (float32 or float64) of
// the given shape.
func floatTensor[T float32 | float64](vals []T, dtype dtypes.DType, shape []int) *tensors.Tensor {
	if dtype == dtypes.Float32 {
		out := make([]float32, len(vals))
		for i, v := range vals {
			out[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(out, shape...)
	}
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = float64(v)
	}
	return tensors.FromFlatDataAndDimensions(out, shape...)
}

// addTo adds the values of the float32 or float64 tensor t to dst.
func addTo(dst []float64, t *tensors.Tensor) {
	t.MustConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			for i, v := range f {
				dst[i] += float64(v)
			}
		case []float64:
			for i, v := range f {
				dst[i] += v
			}
		default:
			panic(fmt.Errorf("output of dtype %s", t.DType()))
		}
	})
}

// scalarOf returns the value of a float32 or float64 scalar tensor.
func scalarOf(t *tensors.Tensor) float64 {
	var s [1]float64
	addTo(s[:], t)
	return s[0]
}
