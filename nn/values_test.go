package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Forward values against plain Go loops written from PyTorch's definitions.

func at4(a arr, i, j, k, l int) float64 {
	d := a.dims
	return a.data[((i*d[1]+j)*d[2]+k)*d[3]+l]
}

// naiveConv is PyTorch's conv2d on NHWC x with OIHW weights.
func naiveConv(x, w arr, b []float64, stride, pad int) arr {
	n, h, wd, c := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	o, kh, kw := w.dims[0], w.dims[2], w.dims[3]
	ho, wo := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	out := arr{dims: []int{n, ho, wo, o}}
	for in := range n {
		for i := range ho {
			for j := range wo {
				for oc := range o {
					s := 0.0
					if b != nil {
						s = b[oc]
					}
					for ci := range c {
						for ki := range kh {
							for kj := range kw {
								y, xx := i*stride+ki-pad, j*stride+kj-pad
								if y < 0 || y >= h || xx < 0 || xx >= wd {
									continue
								}
								s += at4(x, in, y, xx, ci) * at4(w, oc, ci, ki, kj)
							}
						}
					}
					out.data = append(out.data, s)
				}
			}
		}
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func TestConv2DValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		x, w        []int
		stride, pad int
		bias        bool
	}{
		{[]int{2, 7, 6, 3}, []int{4, 3, 3, 3}, 1, 0, true},
		{[]int{2, 7, 6, 3}, []int{4, 3, 3, 3}, 2, 1, false},
		{[]int{3, 8, 8, 1}, []int{6, 1, 5, 5}, 1, 0, true},
		{[]int{2, 5, 5, 4}, []int{20, 4, 3, 3}, 1, 1, true},
		{[]int{2, 5, 5, 4}, []int{3, 4, 1, 1}, 2, 0, false},
	} {
		x, w, b := randArr(rng, 1, c.x...), randArr(rng, 1, c.w...), randArr(rng, 1, c.w[0])
		want := naiveConv(x, w, nil, c.stride, c.pad)
		inputs := []*tensors.Tensor{x.tensor(), w.tensor()}
		if c.bias {
			want = naiveConv(x, w, b.data, c.stride, c.pad)
			inputs = append(inputs, b.tensor())
		}
		got := run(t, func(in []*Node) []*Node {
			var bias *Node
			if c.bias {
				bias = in[2]
			}
			return []*Node{Conv2D(in[0], in[1], bias, c.stride, c.pad)}
		}, inputs...)[0]
		if d := maxAbsDiff(got, want.data); !(d <= 1e-12) {
			t.Errorf("conv x%v w%v stride %d pad %d: max |diff| %.3g from the direct convolution", c.x, c.w, c.stride, c.pad, d)
		}
	}
}

func TestPoolValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 2))
	x := randArr(rng, 1, 2, 5, 7, 3)
	got := run(t, func(in []*Node) []*Node {
		return []*Node{MaxPool2x2(in[0]), AvgPool(in[0], 2, 1), AvgPool(in[0], 3, 2)}
	}, x.tensor())
	var wantMax, wantAvg2, wantAvg3 []float64
	for n := range 2 {
		for i := range 2 {
			for j := range 3 {
				for c := range 3 {
					m := math.Inf(-1)
					for a := range 2 {
						for b := range 2 {
							m = math.Max(m, at4(x, n, 2*i+a, 2*j+b, c))
						}
					}
					wantMax = append(wantMax, m)
				}
			}
		}
	}
	avg := func(k, s int) (out []float64) {
		ho, wo := (5-k)/s+1, (7-k)/s+1
		for n := range 2 {
			for i := range ho {
				for j := range wo {
					for c := range 3 {
						sum := 0.0
						for a := range k {
							for b := range k {
								sum += at4(x, n, i*s+a, j*s+b, c)
							}
						}
						out = append(out, sum/float64(k*k))
					}
				}
			}
		}
		return out
	}
	wantAvg2, wantAvg3 = avg(2, 1), avg(3, 2)
	for i, want := range [][]float64{wantMax, wantAvg2, wantAvg3} {
		if d := maxAbsDiff(got[i], want); !(d <= 1e-14) {
			t.Errorf("pool %d: max |diff| %.3g", i, d)
		}
	}
}

// TestBatchNormValues checks training-mode output and running-stat updates
// against PyTorch's formulas evaluated in Go.
func TestBatchNormValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2))
	x := randArr(rng, 2, 3, 2, 2, 4)
	gamma, beta := randArr(rng, 1, 4), randArr(rng, 1, 4)
	rm, rv := randArr(rng, 1, 4), randArr(rng, 1, 4)
	for i := range rv.data {
		rv.data[i] = 1 + rv.data[i]*rv.data[i]
	}
	got := run(t, func(in []*Node) []*Node {
		y, m, v := BatchNorm(in[0], in[1], in[2], in[3], in[4], true, BNMomentum, BNEpsilon)
		ye, _, _ := BatchNorm(in[0], in[1], in[2], in[3], in[4], false, BNMomentum, BNEpsilon)
		return []*Node{y, m, v, ye}
	}, x.tensor(), gamma.tensor(), beta.tensor(), rm.tensor(), rv.tensor())
	const c, n = 4, 12
	var wantY, wantYe [c * n]float64
	for ch := range c {
		mean, sq := 0.0, 0.0
		for i := range n {
			mean += x.data[i*c+ch]
		}
		mean /= n
		for i := range n {
			sq += (x.data[i*c+ch] - mean) * (x.data[i*c+ch] - mean)
		}
		biased, unbiased := sq/n, sq/(n-1)
		for i := range n {
			wantY[i*c+ch] = (x.data[i*c+ch]-mean)/math.Sqrt(biased+BNEpsilon)*gamma.data[ch] + beta.data[ch]
			wantYe[i*c+ch] = (x.data[i*c+ch]-rm.data[ch])/math.Sqrt(rv.data[ch]+BNEpsilon)*gamma.data[ch] + beta.data[ch]
		}
		if d := math.Abs(got[1][ch] - (0.9*rm.data[ch] + 0.1*mean)); !(d <= 1e-14) {
			t.Errorf("running mean %d off by %.3g", ch, d)
		}
		if d := math.Abs(got[2][ch] - (0.9*rv.data[ch] + 0.1*unbiased)); !(d <= 1e-14) {
			t.Errorf("running var %d off by %.3g (want the unbiased batch variance)", ch, d)
		}
	}
	if d := maxAbsDiff(got[0], wantY[:]); !(d <= 1e-12) {
		t.Errorf("train-mode output off by %.3g", d)
	}
	if d := maxAbsDiff(got[3], wantYe[:]); !(d <= 1e-12) {
		t.Errorf("eval-mode output off by %.3g", d)
	}
}

func TestCrossEntropyAndCorrect(t *testing.T) {
	logits := arr{dims: []int{3, 4}, data: []float64{
		1, 2, 3, 4,
		100, -100, 0, 5, // large spread: stability
		2, 2, 1, 0, // tie between 0 and 1: argmax is 0
	}}
	labels := tensors.FromFlatDataAndDimensions([]int64{3, 2, 1}, 3)
	got := run(t, func(in []*Node) []*Node {
		return []*Node{CrossEntropy(in[0], in[1]), Correct(in[0], in[1])}
	}, logits.tensor(), labels)
	want := 0.0
	for i, y := range []int{3, 2, 1} {
		row := logits.data[4*i : 4*i+4]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - m)
		}
		want += math.Log(s) + m - row[y]
	}
	want /= 3
	if !(relErr(got[0][0], want, 1e-300) <= 1e-14) {
		t.Errorf("cross-entropy %.17g, want %.17g", got[0][0], want)
	}
	// Row 0 predicts 3 (right), row 1 predicts 0 (label 2), row 2 predicts 0 on the tie (label 1).
	if got[1][0] != 1 {
		t.Errorf("correct = %v, want 1", got[1][0])
	}
}

// TestMeanSquaredErrorValue checks the MSE against one-hot labels with a
// sum written out.
func TestMeanSquaredErrorValue(t *testing.T) {
	out := arr{dims: []int{2, 3}, data: []float64{0.5, -1, 2, 0, 1, 3}}
	labels := tensors.FromFlatDataAndDimensions([]int64{1, 2}, 2)
	got := run(t, func(in []*Node) []*Node { return []*Node{MeanSquaredError(in[0], in[1])} }, out.tensor(), labels)
	want := (0.5*0.5 + 2*2 + 2*2 + 0 + 1 + 2*2) / 6
	if e := relErr(got[0][0], want, 1e-300); !(e <= 1e-15) {
		t.Errorf("mse %.17g, want %.17g", got[0][0], want)
	}
}

// TestDotGeneralVJPMatchesStock compares the overriding DotGeneral and Dot
// rules with GoMLX's own (slow but independent) ones.
func TestDotGeneralVJPMatchesStock(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	cases := []struct {
		a, b           []int
		ac, ab, bc, bb []int
		useDot         bool
	}{
		{a: []int{3, 4}, b: []int{5, 4}, ac: []int{1}, bc: []int{1}},
		{a: []int{2, 3, 4, 5}, b: []int{5, 2, 6, 3}, ac: []int{3, 1}, ab: []int{0}, bc: []int{0, 3}, bb: []int{1}},
		{a: []int{4, 2, 3}, b: []int{3, 4, 2}, ac: []int{2}, ab: []int{0, 1}, bc: []int{0}, bb: []int{1, 2}},
		{a: []int{3, 4}, b: []int{4, 2}, useDot: true},
		{a: []int{3, 4}, b: []int{4}, useDot: true},
		{a: []int{4}, b: []int{4}, useDot: true},
	}
	for i, c := range cases {
		a, b := randArr(rng, 1, c.a...), randArr(rng, 1, c.b...)
		got := run(t, func(in []*Node) []*Node {
			var out *Node
			if c.useDot {
				out = Dot(in[0], in[1])
			} else {
				out = DotGeneral(in[0], c.ac, c.ab, in[1], c.bc, c.bb)
			}
			v := IotaFull(out.Graph(), out.Shape())
			v = AddScalar(MulScalar(Sin(v), 0.5), 0.1)
			mine := dotGeneralVJP
			stock := stockVJP[NodeTypeDotGeneral]
			if c.useDot {
				mine = dotVJP
				stock = stockVJP[NodeTypeDot]
			}
			res := mine(out, v)
			res = append(res, stock(out, []*Node{v}, shapes.Make(dtypes.Float64))...)
			return res
		}, a.tensor(), b.tensor())
		for k := range 2 {
			if d := maxAbsDiff(got[k], got[k+2]); !(d <= 1e-12) {
				t.Errorf("case %d input %d: overriding VJP differs from GoMLX's by %.3g", i, k, d)
			}
		}
	}
}

// TestSliceVJP compares the Pad-free slice adjoint with a scatter written in Go.
func TestSliceVJP(t *testing.T) {
	dims := []int{4, 9, 5}
	starts, limits, strides := []int{1, 2, 0}, []int{4, 9, 5}, []int{1, 3, 2}
	vDims := []int{3, 3, 3}
	v := arr{dims: vDims}
	for i := range 27 {
		v.data = append(v.data, float64(i+1))
	}
	got := run(t, func(in []*Node) []*Node {
		return []*Node{unslice(in[0], shapes.Make(dtypes.Float64, dims...), starts, limits, strides)}
	}, v.tensor())[0]
	want := make([]float64, 4*9*5)
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				a, b, c := starts[0]+i*strides[0], starts[1]+j*strides[1], starts[2]+k*strides[2]
				want[(a*9+b)*5+c] = v.data[(i*3+j)*3+k]
			}
		}
	}
	if d := maxAbsDiff(got, want); d != 0 {
		t.Errorf("unslice differs from the scatter by %g", d)
	}
}

// TestNodeFormats pins the node text that vjp.go parses.
func TestNodeFormats(t *testing.T) {
	g := NewGraph(backendT(t), "formats")
	a := Parameter(g, "a", shapes.Make(dtypes.Float32, 2, 3, 4))
	b := Parameter(g, "b", shapes.Make(dtypes.Float32, 4, 2, 5))
	ax := parseDotGeneral(DotGeneral(a, []int{2}, []int{0}, b, []int{0}, []int{1}))
	if !equalInts(ax.lhsContract, []int{2}) || !equalInts(ax.lhsBatch, []int{0}) || !equalInts(ax.rhsContract, []int{0}) || !equalInts(ax.rhsBatch, []int{1}) {
		t.Errorf("parsed DotGeneral axes %+v", ax)
	}
	s, l, st := parseSlice(Slice(a, AxisRange(1, 2), AxisRange().Stride(2), AxisRange(1, 4)))
	if !equalInts(s, []int{1, 0, 1}) || !equalInts(l, []int{2, 3, 4}) || !equalInts(st, []int{1, 2, 1}) {
		t.Errorf("parsed slice %v %v %v", s, l, st)
	}
	g.Finalize()
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMaxPoolTies checks PyTorch's tie rule: the gradient of a window whose
// maxima are equal goes to the first of them in row-major order.
func TestMaxPoolTies(t *testing.T) {
	// One image, one channel, 4×4: windows (0,0) all equal; (0,1) max at
	// (0,1) and (1,0) of the window; (1,0) max at (1,0) and (1,1); (1,1) unique at (1,1).
	x := arr{dims: []int{1, 4, 4, 1}, data: []float64{
		5, 5, 1, 7,
		5, 5, 7, 2,
		0, 1, 3, 3,
		4, 4, 3, 9,
	}}
	got := run(t, func(in []*Node) []*Node {
		y := MaxPool2x2(in[0])
		return []*Node{y, Gradient(ReduceAllSum(y), in[0])[0]}
	}, x.tensor())
	if want := []float64{5, 7, 4, 9}; maxAbsDiff(got[0], want) != 0 {
		t.Errorf("pooled %v, want %v", got[0], want)
	}
	wantGrad := []float64{
		1, 0, 0, 1,
		0, 0, 0, 0,
		0, 0, 0, 0,
		1, 0, 0, 1,
	}
	if maxAbsDiff(got[1], wantGrad) != 0 {
		t.Errorf("gradient %v, want %v (first maximum of each window)", got[1], wantGrad)
	}
}

// TestConvRecipesMatchGenericRule compares the gradient and a Hessian-vector
// product of a small conv net computed with the convolution adjoint recipes
// (recipes.go) and with the generic DotGeneral rule.
func TestConvRecipesMatchGenericRule(t *testing.T) {
	if b := backendT(t); b.String() != "go" {
		t.Skipf("convolution recipes are used on the pure-Go backend only, not on %s", b.String())
	}
	rng := rand.New(rand.NewPCG(6, 6))
	var params []*tensors.Tensor
	dims := [][]int{{4, 1, 3, 3}, {4}, {5, 4, 3, 3}, {5}, {3, 20}, {3}}
	for _, d := range dims {
		params = append(params, randArr(rng, 0.5, d...).tensor())
	}
	var vs []*tensors.Tensor
	for _, d := range dims {
		vs = append(vs, randArr(rng, 1, d...).tensor())
	}
	x := randArr(rng, 1, 3, 8, 8, 1).tensor()
	labels := tensors.FromFlatDataAndDimensions([]int32{0, 2, 1}, 3)
	fn := func(in []*Node) []*Node {
		p, v := in[:6], in[6:12]
		h := ReLU(MaxPool2x2(Conv2D(in[12], p[0], p[1], 1, 0))) // [3,3,3,4]
		h = ReLU(Conv2D(h, p[2], p[3], 1, 1))                   // [3,3,3,5] -> batched? L=9, O=5
		h = AvgPool(h, 2, 1)                                    // [3,2,2,5]
		loss := CrossEntropy(Linear(Reshape(h, 3, 20), p[4], p[5]), in[13])
		g := Gradient(loss, p...)
		hv := Gradient(innerProducts(g, v), p...)
		return append(g, hv...)
	}
	in := append(append(append([]*tensors.Tensor{}, params...), vs...), x, labels)
	withRecipes := run(t, fn, in...)
	recipesMu.Lock()
	recipesActive = false
	recipesMu.Unlock()
	defer func() {
		recipesMu.Lock()
		recipesActive = true
		recipesMu.Unlock()
	}()
	generic := run(t, fn, in...)
	for i := range withRecipes {
		if e := vecRelErr(withRecipes[i], generic[i], 1e-300); !(e <= 1e-13) {
			t.Errorf("output %d: recipes and the generic rule differ by %.2g", i, e)
		}
	}
	// Both convolutions must have used the batched product with a recipe.
	g := NewGraph(backendT(t), "check")
	xp := Parameter(g, "x", shapes.Make(dtypes.Float64, 3, 8, 8, 1))
	wp := Parameter(g, "w", shapes.Make(dtypes.Float64, 4, 1, 3, 3))
	y := Conv2D(xp, wp, nil, 1, 0)
	found := false
	recipesMu.Lock()
	for _, node := range g.Nodes() {
		if _, ok := recipes[recipeKey{g.GraphId(), node.Id()}]; ok {
			found = true
		}
	}
	recipesMu.Unlock()
	if !found || y.Shape().Dimensions[3] != 4 {
		t.Error("Conv2D on the pure-Go backend registered no recipe")
	}
	g.Finalize()
}
