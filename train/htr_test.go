package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/nn"
	"github.com/hessian-spectra/runner/npz"
)

// tinyNet is x [N,4] → Linear(4,5) → BatchNorm1d(5) → tanh → Linear(5,3):
// smooth, so finite differences of any order are clean, and with batch norm
// in training mode, so the penalty is differentiated through batch
// statistics.
type tinyNet struct{}

var tinyShapes = [][]int{{5, 4}, {5}, {5}, {5}, {3, 5}, {3}}

func (tinyNet) Forward(params, bufs []*Node, x *Node, train bool) (*Node, []*Node) {
	h := nn.Linear(x, params[0], params[1])
	h, m, v := nn.BatchNorm(h, params[2], params[3], bufs[0], bufs[1], train, nn.BNMomentum, nn.BNEpsilon)
	return nn.Linear(Tanh(h), params[4], params[5]), []*Node{m, v}
}

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// htrCase is a network with float64 values for its params, buffers, batch
// and probes, and the exec that evaluates its loss, gradient and trace.
type htrCase struct {
	net    network
	shapes [][]int // param shapes
	params [][]float64
	bufs   []*tensors.Tensor
	x, y   *tensors.Tensor
	sel    []int
	probes [][]float64 // probe-major over sel
	gamma  float64
}

func (c *htrCase) tensorArgs(params [][]float64) []any {
	var args []any
	for i, p := range params {
		args = append(args, tensors.FromFlatDataAndDimensions(slices.Clone(p), c.shapes[i]...))
	}
	for _, b := range c.bufs {
		args = append(args, b)
	}
	args = append(args, c.x, c.y)
	for k, z := range c.probes {
		args = append(args, tensors.FromFlatDataAndDimensions(slices.Clone(z), c.shapes[c.sel[k%len(c.sel)]]...))
	}
	return args
}

// penalisedLoss is the test's own construction of the HTR objective
// F(θ) = L(θ) + γ·(1/K) Σₖ Σᵢ ⟨zₖᵢ, (∇²L zₖ)ᵢ⟩, with Hessian-vector products
// by double backpropagation, one probe at a time.
func (c *htrCase) penalisedLoss(t *testing.T) func(params [][]float64) float64 {
	np, nb := len(c.shapes), len(c.bufs)
	exec, err := NewExec(testBackend(t), func(in []*Node) *Node {
		params, bufs, x, y := in[:np], in[np:np+nb], in[np+nb], in[np+nb+1]
		z := in[np+nb+2:]
		logits, _ := c.net.Forward(params, bufs, x, true)
		loss := nn.CrossEntropy(logits, y)
		var wrt []*Node
		for _, j := range c.sel {
			wrt = append(wrt, params[j])
		}
		g := Gradient(loss, wrt...)
		k := len(z) / len(wrt)
		pen := ScalarZero(x.Graph(), x.DType())
		for p := range k {
			gz := ScalarZero(x.Graph(), x.DType())
			for i := range wrt {
				gz = Add(gz, ReduceAllSum(Mul(g[i], z[p*len(wrt)+i])))
			}
			hz := Gradient(gz, wrt...)
			for i := range wrt {
				pen = Add(pen, ReduceAllSum(Mul(hz[i], z[p*len(wrt)+i])))
			}
		}
		return Add(loss, MulScalar(pen, c.gamma/float64(k)))
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(params [][]float64) float64 {
		out, err := exec.Exec(c.tensorArgs(params)...)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float64](out[0])[0]
	}
}

// underTest runs the package's objective: loss, trace and the gradients of
// the penalised loss.
func (c *htrCase) underTest(t *testing.T) (loss, trace float64, grads [][]float64) {
	np, nb := len(c.shapes), len(c.bufs)
	exec, err := NewExec(testBackend(t), func(in []*Node) []*Node {
		params, bufs, x, y := in[:np], in[np:np+nb], in[np+nb], in[np+nb+1]
		l, tr, g, _ := objective(c.net, params, bufs, x, y, true, c.sel, in[np+nb+2:], c.gamma)
		return append([]*Node{l, tr}, g...)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(c.tensorArgs(c.params)...)
	if err != nil {
		t.Fatal(err)
	}
	loss = tensors.MustCopyFlatData[float64](out[0])[0]
	trace = tensors.MustCopyFlatData[float64](out[1])[0]
	for _, g := range out[2:] {
		grads = append(grads, tensors.MustCopyFlatData[float64](g))
	}
	return loss, trace, grads
}

// lossGrad returns ∇L (no penalty) by first-order autodiff.
func (c *htrCase) lossGrad(t *testing.T) func(params [][]float64) [][]float64 {
	np, nb := len(c.shapes), len(c.bufs)
	exec, err := NewExec(testBackend(t), func(in []*Node) []*Node {
		params, bufs, x, y := in[:np], in[np:np+nb], in[np+nb], in[np+nb+1]
		logits, _ := c.net.Forward(params, bufs, x, true)
		return Gradient(nn.CrossEntropy(logits, y), params...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(params [][]float64) [][]float64 {
		args := c.tensorArgs(params)
		out, err := exec.Exec(args[:np+nb+2]...)
		if err != nil {
			t.Fatal(err)
		}
		var g [][]float64
		for _, o := range out {
			g = append(g, tensors.MustCopyFlatData[float64](o))
		}
		return g
	}
}

// traceByFD is (1/K) Σₖ ⟨zₖ, H zₖ⟩ with H zₖ from central differences of
// first-order gradients: independent of double backpropagation.
func (c *htrCase) traceByFD(t *testing.T, eps float64) float64 {
	grad := c.lossGrad(t)
	k := len(c.probes) / len(c.sel)
	var sum float64
	for p := range k {
		plus, minus := clone2(c.params), clone2(c.params)
		for i, j := range c.sel {
			for e, z := range c.probes[p*len(c.sel)+i] {
				plus[j][e] += eps * z
				minus[j][e] -= eps * z
			}
		}
		gp, gm := grad(plus), grad(minus)
		for i, j := range c.sel {
			for e, z := range c.probes[p*len(c.sel)+i] {
				sum += z * (gp[j][e] - gm[j][e]) / (2 * eps)
			}
		}
	}
	return sum / float64(k)
}

func clone2(v [][]float64) [][]float64 {
	out := make([][]float64, len(v))
	for i := range v {
		out[i] = slices.Clone(v[i])
	}
	return out
}

func newTinyCase(sel []int, probes int, seed uint64) *htrCase {
	rng := rand.New(rand.NewPCG(seed, 1))
	c := &htrCase{net: tinyNet{}, shapes: tinyShapes, sel: sel, gamma: 0.5}
	for _, s := range tinyShapes {
		c.params = append(c.params, randVec(rng, size(s), 0.7))
	}
	c.bufs = []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(make([]float64, 5), 5),
		tensors.FromFlatDataAndDimensions([]float64{1, 1, 1, 1, 1}, 5),
	}
	c.x = tensors.FromFlatDataAndDimensions(randVec(rng, 8*4, 1), 8, 4)
	c.y = tensors.FromFlatDataAndDimensions([]int32{0, 1, 2, 0, 1, 2, 2, 1}, 8)
	for range probes {
		for _, j := range sel {
			z := make([]float64, size(tinyShapes[j]))
			for e := range z {
				z[e] = float64(1 - 2*rng.IntN(2))
			}
			c.probes = append(c.probes, z)
		}
	}
	return c
}

// TestHTRGradientMatchesFiniteDifferences checks, on a tiny smooth network
// with batch norm in training mode, in float64: the trace estimate against
// (1/K)Σ⟨z, Hz⟩ with Hz from finite differences of gradients, and every
// component of the penalised loss's gradient (a third derivative) against
// central differences of the penalised loss.
func TestHTRGradientMatchesFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name string
		sel  []int
	}{
		{"all", []int{0, 1, 2, 3, 4, 5}},
		{"weights", []int{0, 4}},
		{"bn gamma and last bias", []int{2, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTinyCase(tc.sel, 3, 7)
			_, trace, grads := c.underTest(t)
			if fd := c.traceByFD(t, 1e-5); !(math.Abs(trace-fd) <= 1e-7*math.Max(1, math.Abs(fd))) {
				t.Errorf("trace estimate %.12g, finite differences %.12g", trace, fd)
			}
			F := c.penalisedLoss(t)
			plain := c.lossGrad(t)(c.params)
			const h = 1e-5
			var maxErr, maxPen float64
			for i := range c.params {
				for e := range c.params[i] {
					plus, minus := clone2(c.params), clone2(c.params)
					plus[i][e] += h
					minus[i][e] -= h
					fd := (F(plus) - F(minus)) / (2 * h)
					maxErr = math.Max(maxErr, math.Abs(grads[i][e]-fd)/math.Max(1, math.Abs(fd)))
					maxPen = math.Max(maxPen, math.Abs(grads[i][e]-plain[i][e]))
				}
			}
			if !(maxErr <= 1e-7) {
				t.Errorf("penalised gradient vs central differences: max relative error %.3g", maxErr)
			}
			// The penalty must matter, or the check above proves nothing
			// about its derivative.
			if !(maxPen >= 1e-3) {
				t.Errorf("penalty changes the gradient by at most %.3g", maxPen)
			}
			t.Logf("trace %.6g, max FD error %.3g, penalty's share of the gradient up to %.3g", trace, maxErr, maxPen)
		})
	}
}

// TestHTRGradientOnLeNet checks the third derivative through LeNet's real
// layers (im2col convolutions, max-pooling, ReLU) on PyTorch-trained
// weights and four fixture images, along random directions. (Finite
// differences of F need a step small enough not to cross a ReLU or max-pool
// kink, where F jumps: with a step of 1e-6, one of the one-sided differences
// already disagrees; with 1e-7 both agree with the derivative to 1e-9.)
func TestHTRGradientOnLeNet(t *testing.T) {
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.ReadWeights("../testdata/lenet-fmnist/weights.npz", dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := npz.ReadFile("../testdata/lenet-fmnist/subset.npz")
	if err != nil {
		t.Fatal(err)
	}
	xa, _ := sub.Get("x")
	ya, _ := sub.Get("y")
	labels, _ := ya.Int64s()
	rng := rand.New(rand.NewPCG(3, 4))
	// Images 5, 35, 65, 95 (four classes), with a little noise so that no
	// max-pool window holds a tie (the padded border would).
	var xs []float64
	var ys []int32
	for _, i := range []int{5, 35, 65, 95} {
		for _, v := range xa.Float64s()[i*1024 : (i+1)*1024] {
			xs = append(xs, v+1e-3*rng.NormFloat64())
		}
		ys = append(ys, int32(labels[i]))
	}
	c := &htrCase{net: m, sel: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, gamma: 0.1,
		x: tensors.FromFlatDataAndDimensions(xs, 4, 1, 32, 32), y: tensors.FromFlatDataAndDimensions(ys, 4)}
	for i, e := range m.Params() {
		c.shapes = append(c.shapes, e.Shape)
		c.params = append(c.params, tensors.MustCopyFlatData[float64](w.Params[i]))
	}
	for range 2 {
		for _, s := range c.shapes {
			z := make([]float64, size(s))
			for e := range z {
				z[e] = float64(1 - 2*rng.IntN(2))
			}
			c.probes = append(c.probes, z)
		}
	}
	_, trace, grads := c.underTest(t)
	F := c.penalisedLoss(t)
	for d := range 2 {
		dir := make([][]float64, len(c.params))
		var analytic float64
		for i, p := range c.params {
			dir[i] = randVec(rng, len(p), 1)
			for e := range p {
				analytic += grads[i][e] * dir[i][e]
			}
		}
		// A step of 1e-6 already crosses ReLU kinks here, where the
		// Hessian (and so the penalty) jumps; 1e-7 does not.
		const h = 1e-7
		plus, minus := clone2(c.params), clone2(c.params)
		for i := range plus {
			for e := range plus[i] {
				plus[i][e] += h * dir[i][e]
				minus[i][e] -= h * dir[i][e]
			}
		}
		fd := (F(plus) - F(minus)) / (2 * h)
		if rel := math.Abs(analytic-fd) / math.Abs(fd); !(rel <= 1e-6) {
			t.Errorf("direction %d: ⟨∇F, d⟩ = %.12g, central difference %.12g (relative error %.3g)", d, analytic, fd, rel)
		} else {
			t.Logf("direction %d: ⟨∇F, d⟩ = %.12g, central difference %.12g (relative error %.3g); trace %.6g", d, analytic, fd, rel, trace)
		}
	}
}

func TestHTRSelectAndActive(t *testing.T) {
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		params []string
		want   []int
	}{
		{nil, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{[]string{"all"}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{[]string{"weights"}, []int{0, 2, 4, 6, 8}},
		{[]string{"fc3.bias", "conv1.weight"}, []int{0, 9}},
		{[]string{"weights", "fc3.bias"}, []int{0, 2, 4, 6, 8, 9}},
	} {
		got, err := HTR{Gamma: 1, Params: tc.params}.Select(m)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Select(%v) = %v, %v; want %v", tc.params, got, err, tc.want)
		}
	}
	_, err = HTR{Gamma: 1, Params: []string{"conv9.weight"}}.Select(m)
	if err == nil || !strings.Contains(err.Error(), `"conv9.weight"`) || !strings.Contains(err.Error(), "fc3.bias") {
		t.Errorf("unknown name: error %v, want one naming it and listing the parameters", err)
	}
	// The seed's schedule: from epoch index 15, steps 0, 50, 100, …
	h := SeedHTR()
	for _, tc := range []struct {
		epoch, step int
		want        bool
	}{{14, 0, false}, {15, 0, true}, {15, 1, false}, {15, 49, false}, {15, 50, true}, {99, 150, true}} {
		if got := h.Active(tc.epoch, tc.step); got != tc.want {
			t.Errorf("Active(%d, %d) = %v, want %v", tc.epoch, tc.step, got, tc.want)
		}
	}
	if (HTR{}).Active(20, 0) {
		t.Error("gamma 0 is active")
	}
}

// TestProbes checks the probes' distribution and determinism: Rademacher
// entries are ±1 with mean ≈ 0; Gaussian ones have mean ≈ 0 and variance ≈ 1;
// the same (seed, epoch, step) gives the same probes and another step others.
func TestProbes(t *testing.T) {
	shapes := [][]int{{100, 50}, {7}}
	values := func(h HTR, seed uint64, epoch, step int) []float64 {
		var out []float64
		for _, p := range drawProbes(h, seed, epoch, step, shapes, dtypes.Float64) {
			out = append(out, tensors.MustCopyFlatData[float64](p)...)
		}
		return out
	}
	r := HTR{Gamma: 1, Probes: 4, Distribution: Rademacher}
	v := values(r, 1, 2, 3)
	if len(v) != 4*5007 {
		t.Fatalf("%d values, want %d", len(v), 4*5007)
	}
	var sum float64
	for _, x := range v {
		if x != 1 && x != -1 {
			t.Fatalf("Rademacher entry %v", x)
		}
		sum += x
	}
	if mean := sum / float64(len(v)); math.Abs(mean) > 4/math.Sqrt(float64(len(v))) {
		t.Errorf("Rademacher mean %.4f", mean)
	}
	if !slices.Equal(v, values(r, 1, 2, 3)) {
		t.Error("same seed, epoch and step gave different probes")
	}
	if slices.Equal(v, values(r, 1, 2, 4)) || slices.Equal(v, values(r, 2, 2, 3)) {
		t.Error("another step or seed gave the same probes")
	}
	g := values(HTR{Gamma: 1, Probes: 4, Distribution: Gaussian}, 1, 2, 3)
	var s1, s2 float64
	for _, x := range g {
		s1 += x
		s2 += x * x
	}
	n := float64(len(g))
	if mean, vr := s1/n, s2/n-(s1/n)*(s1/n); !(math.Abs(mean) <= 0.03) || !(math.Abs(vr-1) <= 0.05) {
		t.Errorf("Gaussian probes: mean %.4f, variance %.4f", mean, vr)
	}
}
