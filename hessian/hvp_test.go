package hessian

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/mat"

	"github.com/hessian-spectra/runner/nn"
)

// tinyNet is a small classifier in float64 whose Hessian can be formed by
// brute force, with its data.
type tinyNet struct {
	name   string
	c      *Classifier
	data   Data
	logits func(params [][]float64, x []float32) [][]float64 // pure Go, nil when not written
}

// randomValues returns tensors of the given shapes with N(0, scale²)
// entries.
func randomValues(rng *rand.Rand, scale float64, shapes ...[]int) []*tensors.Tensor {
	var out []*tensors.Tensor
	for _, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = scale * rng.NormFloat64()
		}
		out = append(out, tensors.FromFlatDataAndDimensions(v, s...))
	}
	return out
}

// randomData returns n examples of the given shape with N(0, 1) entries and
// labels in [0, classes).
func randomData(rng *rand.Rand, n, classes int, shape ...int) Data {
	d := Data{Shape: shape}
	size := 1
	for _, s := range shape {
		size *= s
	}
	for range n * size {
		d.X = append(d.X, float32(rng.NormFloat64()))
	}
	for range n {
		d.Y = append(d.Y, int32(rng.IntN(classes)))
	}
	return d
}

// tinyMLP is 4 → 5 → ReLU → 3 on 7 examples: 43 parameters.
func tinyMLP() tinyNet {
	rng := rand.New(rand.NewPCG(3, 1))
	c := &Classifier{
		Names:  []string{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"},
		Values: randomValues(rng, 0.8, []int{5, 4}, []int{5}, []int{3, 5}, []int{3}),
		Logits: func(p, _ []*Node, x *Node) *Node {
			return nn.Linear(nn.ReLU(nn.Linear(x, p[0], p[1])), p[2], p[3])
		},
	}
	goLogits := func(p [][]float64, x []float32) [][]float64 {
		var out [][]float64
		for i := 0; i < len(x); i += 4 {
			h := make([]float64, 5)
			for j := range h {
				h[j] = p[1][j]
				for k := range 4 {
					h[j] += p[0][j*4+k] * float64(x[i+k])
				}
				h[j] = max(h[j], 0)
			}
			z := make([]float64, 3)
			for j := range z {
				z[j] = p[3][j]
				for k := range 5 {
					z[j] += p[2][j*5+k] * h[k]
				}
			}
			out = append(out, z)
		}
		return out
	}
	return tinyNet{name: "mlp", c: c, data: randomData(rng, 7, 3, 4), logits: goLogits}
}

// tinyConv is a 3×3 convolution with 2 channels on 1×6×6 inputs, optional
// batch norm, ReLU, 2×2 max-pool and a linear layer to 3 classes, on 6
// examples: 47 parameters (51 with batch norm).
func tinyConv(bn, train bool) tinyNet {
	rng := rand.New(rand.NewPCG(4, 1))
	shapes := [][]int{{2, 1, 3, 3}, {2}, {3, 8}, {3}}
	names := []string{"conv.weight", "conv.bias", "fc.weight", "fc.bias"}
	if bn {
		shapes = slices.Insert(shapes, 2, []int{2}, []int{2})
		names = slices.Insert(names, 2, "bn.weight", "bn.bias")
	}
	c := &Classifier{Names: names, Values: randomValues(rng, 0.7, shapes...)}
	if bn {
		// γ near 1; running statistics that differ from the batch's.
		c.Values[2] = tensors.FromFlatDataAndDimensions([]float64{1.1, 0.8}, 2)
		c.Fixed = []*tensors.Tensor{
			tensors.FromFlatDataAndDimensions([]float64{0.1, -0.2}, 2),
			tensors.FromFlatDataAndDimensions([]float64{0.9, 1.3}, 2),
		}
	}
	c.Logits = func(p, fixed []*Node, x *Node) *Node {
		h := nn.Conv2D(nn.NCHWToNHWC(x), p[0], p[1], 1, 0) // [N,4,4,2]
		fc := 2
		if bn {
			h, _, _ = nn.BatchNorm(h, p[2], p[3], fixed[0], fixed[1], train, nn.BNMomentum, nn.BNEpsilon)
			fc = 4
		}
		h = nn.MaxPool2x2(nn.ReLU(h)) // [N,2,2,2]
		return nn.Linear(nn.FlattenNCHW(h), p[fc], p[fc+1])
	}
	name := "conv"
	if bn {
		name = fmt.Sprintf("conv+bn(train=%v)", train)
	}
	return tinyNet{name: name, c: c, data: randomData(rng, 6, 3, 1, 6, 6)}
}

// values returns the flat float64 values of each of the classifier's
// parameters.
func flatValues(c *Classifier) [][]float64 {
	var out [][]float64
	for _, t := range c.Values {
		out = append(out, tensors.MustCopyFlatData[float64](t))
	}
	return out
}

// directGradient builds, independently of ModelHessian, the mean loss and
// its gradient with respect to all parameters, as a function of their flat
// values (one batch, one graph).
func directGradient(t *testing.T, c *Classifier, d Data) func(p [][]float64) (float64, []float64) {
	t.Helper()
	np := len(c.Values)
	exec, err := NewExec(backendT(t), func(in []*Node) []*Node {
		params, fixed := in[:np], in[np:np+len(c.Fixed)]
		x, y := in[np+len(c.Fixed)], in[np+len(c.Fixed)+1]
		loss := nn.CrossEntropy(c.Logits(params, fixed, x), y)
		return append([]*Node{loss}, Gradient(loss, params...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exec.Finalize)
	x := floatTensor(d.X, dtypes.Float64, append([]int{len(d.Y)}, d.Shape...))
	y := tensors.FromFlatDataAndDimensions(d.Y, len(d.Y))
	return func(p [][]float64) (float64, []float64) {
		var args []any
		for i, v := range p {
			args = append(args, tensors.FromFlatDataAndDimensions(v, c.Values[i].Shape().Dimensions...))
		}
		for _, f := range c.Fixed {
			args = append(args, f)
		}
		outs, err := exec.Exec(append(args, x, y)...)
		if err != nil {
			t.Fatal(err)
		}
		var g []float64
		for _, o := range outs[1:] {
			g = append(g, tensors.MustCopyFlatData[float64](o)...)
		}
		return tensors.MustCopyFlatData[float64](outs[0])[0], g
	}
}

// shifted returns p with eps added to its flat entry j (counted across
// tensors).
func shifted(p [][]float64, j int, eps float64) [][]float64 {
	out := make([][]float64, len(p))
	for i := range p {
		out[i] = slices.Clone(p[i])
		if j >= 0 && j < len(p[i]) {
			out[i][j] += eps
		}
		j -= len(p[i])
	}
	return out
}

// assemble forms the matrix of op column by column, per products per
// call when op batches.
func assemble(t *testing.T, op Operator, per int) *mat.Dense {
	t.Helper()
	n := op.Dim()
	a := mat.NewDense(n, n, nil)
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		var src, dst [][]float64
		for j := lo; j < hi; j++ {
			e := make([]float64, n)
			e[j] = 1
			src, dst = append(src, e), append(dst, make([]float64, n))
		}
		var err error
		if b, ok := op.(BatchOperator); ok {
			err = b.ApplyBatch(context.Background(), dst, src)
		} else {
			for k := range src {
				if err = op.Apply(context.Background(), dst[k], src[k]); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		for k := range dst {
			a.SetCol(lo+k, dst[k])
		}
	}
	return a
}

// relDiff returns ‖a − b‖_F / ‖b‖_F.
func relDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(b, 2)
}

// TestHessianAgainstFiniteDifferences assembles, on tiny nets in float64,
// the full Hessian column by column from Hessian-vector products and
// compares it with central finite differences of gradients (computed by a
// graph of its own); checks its symmetry; and checks that each one-tensor
// operator is the matching diagonal block.
func TestHessianAgainstFiniteDifferences(t *testing.T) {
	for _, net := range []tinyNet{tinyMLP(), tinyConv(false, false), tinyConv(true, false), tinyConv(true, true)} {
		t.Run(net.name, func(t *testing.T) {
			c := net.c
			names := append([]string{FullTarget}, c.Names...)
			targets, err := c.Targets(names...)
			if err != nil {
				t.Fatal(err)
			}
			h, err := NewModelHessian(backendT(t), c, net.data, targets, ModelHessianOptions{VectorsPerPass: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			p := flatValues(c)
			grad := directGradient(t, c, net.data)
			n := h.Dim(0)

			// The loss: against a pure-Go forward pass where there is one,
			// and the gradient against differences of the loss.
			loss, err := h.Loss(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if net.logits != nil {
				want := 0.0
				for i, z := range net.logits(p, net.data.X) {
					m := slices.Max(z)
					s := 0.0
					for _, v := range z {
						s += math.Exp(v - m)
					}
					want += m + math.Log(s) - z[net.data.Y[i]]
				}
				want /= float64(len(net.data.Y))
				if !(math.Abs(loss-want) <= 1e-14) {
					t.Errorf("loss %.17g, pure Go %.17g", loss, want)
				}
			}
			l0, g0 := grad(p)
			if !(math.Abs(l0-loss) <= 1e-15) {
				t.Errorf("loss %.17g, direct graph %.17g", loss, l0)
			}
			_, g1, err := h.Gradient(context.Background(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if e := relDiff(mat.NewVecDense(n, g1), mat.NewVecDense(n, g0)); !(e <= 1e-14) {
				t.Errorf("gradient differs from the direct graph's: rel. %.2g", e)
			}
			const lossEps = 1e-5
			fdg := make([]float64, n)
			for j := range n {
				lp, _ := grad(shifted(p, j, lossEps))
				lm, _ := grad(shifted(p, j, -lossEps))
				fdg[j] = (lp - lm) / (2 * lossEps)
			}
			if e := relDiff(mat.NewVecDense(n, g0), mat.NewVecDense(n, fdg)); !(e <= 1e-8) {
				t.Errorf("gradient vs differences of the loss: rel. err %.2g", e)
			}

			// The Hessian against differences of gradients.
			hm := assemble(t, h.Operator(0), 4)
			const eps = 1e-6
			fd := mat.NewDense(n, n, nil)
			for j := range n {
				_, gp := grad(shifted(p, j, eps))
				_, gm := grad(shifted(p, j, -eps))
				for i := range n {
					fd.Set(i, j, (gp[i]-gm[i])/(2*eps))
				}
			}
			errFD := relDiff(hm, fd)
			if !(errFD <= 1e-7) {
				t.Errorf("H vs finite differences of gradients: rel. err %.2g", errFD)
			}
			errSym := relDiff(hm.T(), hm)
			if !(errSym <= 1e-14) {
				t.Errorf("‖H − Hᵀ‖/‖H‖ = %.2g", errSym)
			}

			// Each one-tensor operator is its diagonal block.
			off := 0
			worst := 0.0
			for i := range c.Values {
				b := assemble(t, h.Operator(1+i), 4)
				size := b.RawMatrix().Rows
				block := hm.Slice(off, off+size, off, off+size)
				e := relDiff(b, block)
				if mat.Norm(block, 2) == 0 {
					e = mat.Norm(b, 2)
				}
				if !(e <= 1e-13) {
					t.Errorf("%s operator differs from its diagonal block: rel. %.2g", c.Names[i], e)
				}
				worst = max(worst, e)
				off += size
			}
			t.Logf("n=%d  H vs FD %.2g  asymmetry %.2g  blocks %.2g  gradient vs FD %.2g", n, errFD, errSym, worst,
				relDiff(mat.NewVecDense(n, g0), mat.NewVecDense(n, fdg)))
			if h.Products() == 0 {
				t.Error("no products counted")
			}
		})
	}
}

// TestGroupAndBatchesAgree checks that products do not depend on how they
// are computed: one by one, several per pass, several targets per pass, or
// over data batches (eval mode, where batches do not change the loss).
func TestGroupAndBatchesAgree(t *testing.T) {
	net := tinyConv(true, false)
	c := net.c
	targets, err := c.Targets(FullTarget, "conv.weight", "fc.weight", "bn.bias")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref, err := NewModelHessian(backendT(t), c, net.data, targets, ModelHessianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	rng := newRand(5, 5)
	which := []int{2, 0, 1, 0, 3, 2, 1}
	src := make([][]float64, len(which))
	want := make([][]float64, len(which))
	for k, i := range which {
		src[k] = make([]float64, ref.Dim(i))
		gaussian(src[k], rng)
		want[k] = make([]float64, ref.Dim(i))
		if err := ref.Operator(i).Apply(ctx, want[k], src[k]); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []ModelHessianOptions{{VectorsPerPass: 3}, {VectorsPerPass: 7}, {BatchSize: 4, VectorsPerPass: 2}, {BatchSize: 1}} {
		h, err := NewModelHessian(backendT(t), c, net.data, targets, o)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([][]float64, len(which))
		for k, i := range which {
			dst[k] = make([]float64, h.Dim(i))
		}
		if err := h.ApplyGroup(ctx, which, dst, src); err != nil {
			t.Fatal(err)
		}
		for k := range dst {
			if e := relDiff(mat.NewVecDense(len(dst[k]), dst[k]), mat.NewVecDense(len(want[k]), want[k])); !(e <= 1e-14) {
				t.Errorf("%+v: product %d (%s) differs from one-by-one: rel. %.2g", o, k, targets[which[k]].Name, e)
			}
		}
		loss, err := h.Loss(ctx)
		if err != nil {
			t.Fatal(err)
		}
		refLoss, _ := ref.Loss(ctx)
		if !(math.Abs(loss-refLoss) <= 1e-15) {
			t.Errorf("%+v: loss %.17g, one batch %.17g", o, loss, refLoss)
		}
		h.Close()
	}
}

// TestTrainModeBatches checks that in batch-norm train mode each batch is
// normalised by its own statistics: the product over two batches is the
// mean of the two one-batch Hessians, weighted by batch size.
func TestTrainModeBatches(t *testing.T) {
	net := tinyConv(true, true)
	c := net.c
	ctx := context.Background()
	targets, _ := c.Targets(FullTarget)
	h, err := NewModelHessian(backendT(t), c, net.data, targets, ModelHessianOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	src := make([]float64, h.Dim(0))
	gaussian(src, newRand(6, 6))
	got := make([]float64, len(src))
	if err := h.Operator(0).Apply(ctx, got, src); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(src))
	for _, part := range []struct{ lo, hi int }{{0, 4}, {4, 6}} {
		d := Data{X: net.data.X[part.lo*36 : part.hi*36], Shape: net.data.Shape, Y: net.data.Y[part.lo:part.hi]}
		hp, err := NewModelHessian(backendT(t), c, d, targets, ModelHessianOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hv := make([]float64, len(src))
		if err := hp.Operator(0).Apply(ctx, hv, src); err != nil {
			t.Fatal(err)
		}
		axpy(want, float64(part.hi-part.lo)/6, hv)
		hp.Close()
	}
	if e := relDiff(mat.NewVecDense(len(got), got), mat.NewVecDense(len(want), want)); !(e <= 1e-14) {
		t.Errorf("train-mode product over batches 4+2 differs from the weighted one-batch products: rel. %.2g", e)
	}
	one, _ := NewModelHessian(backendT(t), c, net.data, targets, ModelHessianOptions{})
	defer one.Close()
	whole := make([]float64, len(src))
	if err := one.Operator(0).Apply(ctx, whole, src); err != nil {
		t.Fatal(err)
	}
	if e := relDiff(mat.NewVecDense(len(got), got), mat.NewVecDense(len(whole), whole)); !(e >= 1e-6) {
		t.Errorf("train mode: batches of 4 and one batch of 6 give the same product (rel. %.2g): batch statistics unused?", e)
	}
}

// TestEstimatorsOnTinyNet runs the spectral estimators on the tiny MLP's
// Hessian operator and compares them with the exact eigenvalues of its
// Hessian formed from finite differences of gradients.
func TestEstimatorsOnTinyNet(t *testing.T) {
	net := tinyMLP()
	c := net.c
	ctx := context.Background()
	targets, _ := c.Targets(FullTarget)
	h, err := NewModelHessian(backendT(t), c, net.data, targets, ModelHessianOptions{VectorsPerPass: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	op := h.Operator(0)
	n := op.Dim()
	grad := directGradient(t, c, net.data)
	p := flatValues(c)
	fd := mat.NewSymDense(n, nil)
	cols := make([][]float64, n)
	for j := range n {
		_, gp := grad(shifted(p, j, 1e-6))
		_, gm := grad(shifted(p, j, -1e-6))
		cols[j] = make([]float64, n)
		for i := range n {
			cols[j][i] = (gp[i] - gm[i]) / 2e-6
		}
	}
	for i := range n {
		for j := i; j < n; j++ {
			fd.SetSym(i, j, (cols[j][i]+cols[i][j])/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(fd, false) {
		t.Fatal("eigendecomposition failed")
	}
	lambda := eig.Values(nil) // ascending
	scale := math.Max(math.Abs(lambda[0]), math.Abs(lambda[n-1]))
	trace := 0.0
	for _, l := range lambda {
		trace += l
	}

	top, err := TopEigenvalues(ctx, op, TopKOptions{K: 3, Tol: 1e-10, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range top.Values {
		if want := lambda[n-1-i]; !(math.Abs(v-want) <= 1e-7*scale) {
			t.Errorf("top eigenvalue %d: %.12g, exact %.12g", i, v, want)
		}
	}

	o := DefaultDensityOptions()
	o.Seed, o.Reorthogonalize = 3, ReorthFull
	d, err := SpectralDensity(ctx, op, o)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Bounds.Breakdown {
		t.Errorf("a %d-step range run on dimension %d did not break down", d.Bounds.Steps(), n)
	}
	if !(d.LB <= lambda[0]+1e-7*scale) || !(d.UB >= lambda[n-1]-1e-7*scale) {
		t.Errorf("density bounds [%g, %g] do not cover the spectrum [%g, %g]", d.LB, d.UB, lambda[0], lambda[n-1])
	}
	// With reorthogonalisation and n < 64 steps, the runs break down on an
	// invariant space, and the probe's Ritz values are eigenvalues.
	for _, r := range d.Probes[0].Values {
		k, _ := slices.BinarySearch(lambda, r)
		dist := math.Inf(1)
		for _, j := range []int{k - 1, k} {
			if j >= 0 && j < n {
				dist = math.Min(dist, math.Abs(lambda[j]-r))
			}
		}
		if !(dist <= 1e-6*scale) {
			t.Errorf("Ritz value %.10g is %.2g from the nearest eigenvalue", r, dist)
		}
	}

	tr, err := HutchinsonTrace(ctx, op, TraceOptions{Probes: 400, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(tr.Estimate-trace) <= 4*tr.StdErr) {
		t.Errorf("trace %.6g ± %.2g, exact %.6g", tr.Estimate, tr.StdErr, trace)
	}
	t.Logf("top %v exact %v; bounds [%.4g, %.4g] spectrum [%.4g, %.4g]; trace %.5g ± %.2g exact %.5g",
		top.Values, []float64{lambda[n-1], lambda[n-2], lambda[n-3]}, d.LB, d.UB, lambda[0], lambda[n-1], tr.Estimate, tr.StdErr, trace)
}

// TestLeNetFixture checks, on the PyTorch-made LeNet fixture, the mean loss
// against PyTorch's in both dtypes, and in float64 that each layer operator
// is the diagonal block of the full one (on a vector zero outside the
// layer) and that the full operator is symmetric.
func TestLeNetFixture(t *testing.T) {
	ctx := context.Background()
	w32, d := lenetFixture(t, dtypes.Float32)
	h32, err := NewModelHessian(backendT(t), ModelClassifier(w32, false), d, []Target{{Name: "fc3.weight", Params: []int{8}}}, ModelHessianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h32.Close()
	l32, err := h32.Loss(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(l32-fixtureLoss) <= 1e-6) {
		t.Errorf("float32 loss %.10g, PyTorch %.16g", l32, fixtureLoss)
	}

	w, d := lenetFixture(t, dtypes.Float64)
	c := ModelClassifier(w, false)
	names := append([]string{FullTarget}, w.Model.Layers()...)
	targets, err := c.Targets(names...)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewModelHessian(backendT(t), c, d, targets, ModelHessianOptions{VectorsPerPass: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	loss, err := h.Loss(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(loss-fixtureLoss) <= 1e-12) {
		t.Errorf("float64 loss %.16g, PyTorch %.16g", loss, fixtureLoss)
	}

	// u, v random; one group call: H u, H v, and each layer's H on v's
	// block; the full product of v restricted to a layer (vl: v zero
	// outside layer l) is compared with the layer product.
	rng := newRand(7, 7)
	n := h.Dim(0)
	u, v := make([]float64, n), make([]float64, n)
	gaussianUnit(u, rng)
	gaussianUnit(v, rng)
	which := []int{0, 0}
	src := [][]float64{u, v}
	offsets := map[int]int{}
	off := 0
	for i, e := range w.Model.Params() {
		offsets[i] = off
		off += e.Size()
	}
	for l := 1; l < len(targets); l++ {
		p := targets[l].Params[0]
		vl := make([]float64, n)
		copy(vl[offsets[p]:offsets[p]+h.Dim(l)], v[offsets[p]:])
		which = append(which, 0, l)
		src = append(src, vl, slices.Clone(v[offsets[p]:offsets[p]+h.Dim(l)]))
	}
	dst := make([][]float64, len(which))
	for k, i := range which {
		dst[k] = make([]float64, h.Dim(i))
	}
	if err := h.ApplyGroup(ctx, which, dst, src); err != nil {
		t.Fatal(err)
	}
	a, b := dot(v, dst[0]), dot(u, dst[1])
	if !(math.Abs(a-b) <= 1e-12*math.Abs(a)) {
		t.Errorf("vᵀHu = %.16g, uᵀHv = %.16g", a, b)
	}
	var report []string
	for l := 1; l < len(targets); l++ {
		p := targets[l].Params[0]
		full, layer := dst[2*l], dst[2*l+1]
		block := full[offsets[p] : offsets[p]+h.Dim(l)]
		e := relDiff(mat.NewVecDense(len(layer), layer), mat.NewVecDense(len(block), block))
		if !(e <= 1e-12) {
			t.Errorf("%s: layer product differs from the full product's block: rel. %.2g", targets[l].Name, e)
		}
		report = append(report, fmt.Sprintf("%s %.1g", targets[l].Name, e))
	}
	t.Logf("loss %.16g (PyTorch %.16g); asymmetry %.2g; blocks: %s", loss, fixtureLoss, math.Abs(a-b)/math.Abs(a), strings.Join(report, ", "))
}

// TestModelHessianErrors checks that misuse is an error naming the problem.
func TestModelHessianErrors(t *testing.T) {
	net := tinyMLP()
	c := net.c
	ctx := context.Background()
	if _, err := c.Target("fc9.weight"); err == nil || !strings.Contains(err.Error(), "fc9.weight") || !strings.Contains(err.Error(), "fc1.bias") {
		t.Errorf("unknown target: %v", err)
	}
	targets, _ := c.Targets(FullTarget, "fc2.bias")
	bad := net.data
	bad.Y = bad.Y[:3]
	if _, err := NewModelHessian(backendT(t), c, bad, targets, ModelHessianOptions{}); err == nil || !strings.Contains(err.Error(), "examples") {
		t.Errorf("mismatched data: %v", err)
	}
	if _, err := NewModelHessian(backendT(t), c, net.data, []Target{{Name: "x", Params: []int{1, 1}}}, ModelHessianOptions{}); err == nil {
		t.Error("repeated parameter index accepted")
	}
	// A classifier that says what it takes refuses other data.
	declared := *c
	declared.Input, declared.Classes = []int{4}, 3
	if h, err := NewModelHessian(backendT(t), &declared, net.data, targets, ModelHessianOptions{}); err != nil {
		t.Errorf("data it takes: %v", err)
	} else {
		h.Close()
	}
	declared.Input = []int{2, 2}
	if _, err := NewModelHessian(backendT(t), &declared, net.data, targets, ModelHessianOptions{}); err == nil ||
		!strings.Contains(err.Error(), "examples of shape [4], but the network takes [2 2]") {
		t.Errorf("examples of the wrong shape: %v", err)
	}
	declared.Input, declared.Classes = []int{-1}, 2 // any size, but two logits only
	label2 := net.data
	label2.Y = slices.Clone(net.data.Y)
	label2.Y[0] = 2
	if _, err := NewModelHessian(backendT(t), &declared, label2, targets, ModelHessianOptions{}); err == nil ||
		!strings.Contains(err.Error(), "but the network has 2 outputs") {
		t.Errorf("a label without a logit: %v", err)
	}
	mixed := *c
	mixed.Values = slices.Clone(c.Values)
	mixed.Values[1] = tensors.FromFlatDataAndDimensions(make([]float32, 5), 5)
	if _, err := NewModelHessian(backendT(t), &mixed, net.data, targets, ModelHessianOptions{}); err == nil || !strings.Contains(err.Error(), "fc1.bias") {
		t.Errorf("mixed dtypes: %v", err)
	}
	broken := *c
	broken.Logits = func(p, _ []*Node, x *Node) *Node { return nn.Linear(x, p[2], p[3]) } // 4 inputs into a 5-wide layer
	h, err := NewModelHessian(backendT(t), &broken, net.data, targets, ModelHessianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	v := make([]float64, h.Dim(0))
	if err := h.Operator(0).Apply(ctx, v, v); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("a graph that cannot be built: %v", err)
	}
	if err := h.Operator(1).Apply(ctx, v, v); err == nil || !strings.Contains(err.Error(), "dimension 3") {
		t.Errorf("wrong vector length: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	good, _ := NewModelHessian(backendT(t), c, net.data, targets, ModelHessianOptions{})
	defer good.Close()
	if err := good.Operator(0).Apply(cancelled, v, v); err != context.Canceled {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestLinearSoftmaxClosedForm compares the Hessian of a linear softmax
// classifier, assembled from products, with its closed form
// H = (1/N) Σᵢ Jᵢᵀ (diag pᵢ − pᵢpᵢᵀ) Jᵢ, where pᵢ are the softmax
// probabilities and Jᵢ = ∂zᵢ/∂θ the Jacobian of the logits.
func TestLinearSoftmaxClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	const k, in, n = 4, 3, 9
	c := &Classifier{
		Names:  []string{"weight", "bias"},
		Values: randomValues(rng, 1, []int{k, in}, []int{k}),
		Logits: func(p, _ []*Node, x *Node) *Node { return nn.Linear(x, p[0], p[1]) },
	}
	d := randomData(rng, n, k, in)
	targets, _ := c.Targets(FullTarget)
	h, err := NewModelHessian(backendT(t), c, d, targets, ModelHessianOptions{VectorsPerPass: 5, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got := assemble(t, h.Operator(0), 4)

	p := flatValues(c)
	dim := k*in + k
	want := mat.NewDense(dim, dim, nil)
	for i := range n {
		x := d.X[i*in : (i+1)*in]
		z := make([]float64, k)
		for r := range k {
			z[r] = p[1][r]
			for j := range in {
				z[r] += p[0][r*in+j] * float64(x[j])
			}
		}
		m := slices.Max(z)
		s := 0.0
		for r := range z {
			z[r] = math.Exp(z[r] - m)
			s += z[r]
		}
		prob := mat.NewDense(k, k, nil)
		for r := range k {
			for q := range k {
				v := -z[r] * z[q] / (s * s)
				if r == q {
					v += z[r] / s
				}
				prob.Set(r, q, v)
			}
		}
		jac := mat.NewDense(k, dim, nil) // ∂z_r/∂W[r,j] = x_j, ∂z_r/∂b_r = 1
		for r := range k {
			for j := range in {
				jac.Set(r, r*in+j, float64(x[j]))
			}
			jac.Set(r, k*in+r, 1)
		}
		var sj, jsj mat.Dense
		sj.Mul(prob, jac)
		jsj.Mul(jac.T(), &sj)
		want.Add(want, &jsj)
	}
	want.Scale(1/float64(n), want)
	if mat.Norm(want, 2) == 0 {
		t.Fatal("closed form is zero")
	}
	e := relDiff(got, want)
	if !(e <= 1e-14) {
		t.Errorf("Hessian vs closed form: rel. err %.2g", e)
	}
	t.Logf("Hessian vs closed form: rel. err %.2g", e)
}

// TestModelClassifierChecksTheData: a model's classifier declares what it
// takes, so that the wrong images or labels fail before any graph is built.
func TestModelClassifierChecksTheData(t *testing.T) {
	w, d := lenetFixture(t, dtypes.Float32)
	c := ModelClassifier(w, false)
	if !slices.Equal(c.Input, []int{1, 32, 32}) || c.Classes != 10 {
		t.Fatalf("LeNet's classifier takes %v with %d classes", c.Input, c.Classes)
	}
	target := []Target{{Name: "fc3.weight", Params: []int{8}}}
	rgb := Data{X: make([]float32, 2*3*32*32), Shape: []int{3, 32, 32}, Y: []int32{0, 1}}
	if _, err := NewModelHessian(backendT(t), c, rgb, target, ModelHessianOptions{}); err == nil ||
		!strings.Contains(err.Error(), "examples of shape [3 32 32], but the network takes [1 32 32]") {
		t.Errorf("colour images: %v", err)
	}
	many := d
	many.Y = slices.Clone(d.Y)
	many.Y[3] = 10
	if _, err := NewModelHessian(backendT(t), c, many, target, ModelHessianOptions{}); err == nil ||
		!strings.Contains(err.Error(), "labels 0…10, but the network has 10 outputs (labels 0…9)") {
		t.Errorf("label 10: %v", err)
	}
}
