package train

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// quadStep runs steps optimizer steps on the quadratic loss Σᵢ cᵢ·pᵢ²/2,
// whose gradient is c·p, from p0, in float64, and returns p after each step.
func quadStep(t *testing.T, o Optimizer, c, p0 []float64, lr float64, steps int) [][]float64 {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	k := len(o.Slots())
	exec, err := NewExec(testBackend(t), func(in []*Node) []*Node {
		p, cc := in[0], in[1]
		state := in[2 : 2+k]
		scal := [numScalars]*Node{in[2+k], in[3+k]}
		loss := DivScalar(ReduceAllSum(Mul(cc, Mul(p, p))), 2)
		g := Gradient(loss, p)
		np, ns := o.update([]*Node{p}, g, state, scal)
		return append(np, ns...)
	})
	if err != nil {
		t.Fatal(err)
	}
	p := tensors.FromFlatDataAndDimensions(append([]float64(nil), p0...), len(p0))
	state := make([]*tensors.Tensor, k)
	for i := range state {
		state[i] = tensors.FromFlatDataAndDimensions(make([]float64, len(p0)), len(p0))
	}
	var out [][]float64
	for s := range steps {
		args := []any{p, tensors.FromFlatDataAndDimensions(c, len(c))}
		for _, st := range state {
			args = append(args, st)
		}
		for _, v := range o.scalars(lr, int64(s)) {
			args = append(args, v)
		}
		res, err := exec.Exec(args...)
		if err != nil {
			t.Fatal(err)
		}
		p, state = res[0], res[1:]
		v, err := tensors.CopyFlatData[float64](p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) || math.IsNaN(got[i]) {
			t.Errorf("%s[%d] = %.15g, want %.15g (diff %.3g)", what, i, got[i], want[i], d)
		}
	}
}

// The expected values below are worked out by hand from PyTorch's update
// rules (see Optimizer) for c = (3, 0.5), p₀ = (1, −2), lr 0.1.
var (
	quadC  = []float64{3, 0.5}
	quadP0 = []float64{1, -2}
)

func TestSGDMomentumAndWeightDecayByHand(t *testing.T) {
	o := SGD(0.1, 0.9)
	o.WeightDecay = 0.01
	got := quadStep(t, o, quadC, quadP0, 0.1, 2)
	// g₁ = (c+λ)p₀ = (3.01, −1.02); b₁ = g₁ (first step); p₁ = p₀ − 0.1·b₁.
	assertClose(t, "p1", got[0], []float64{0.699, -1.898}, 1e-13)
	// g₂ = (c+λ)p₁ = (2.10399, −0.96798); b₂ = 0.9·b₁ + g₂ = (4.81299, −1.88598);
	// p₂ = p₁ − 0.1·b₂.
	assertClose(t, "p2", got[1], []float64{0.217701, -1.709402}, 1e-13)
}

func TestSGDNesterovByHand(t *testing.T) {
	o := SGD(0.1, 0.9)
	o.WeightDecay, o.Nesterov = 0.01, true
	got := quadStep(t, o, quadC, quadP0, 0.1, 2)
	// b₁ = g₁ = (3.01, −1.02); d₁ = g₁ + 0.9·b₁ = (5.719, −1.938).
	assertClose(t, "p1", got[0], []float64{0.4281, -1.8062}, 1e-13)
	// g₂ = (1.288581, −0.921162); b₂ = 0.9·b₁ + g₂ = (3.997581, −1.839162);
	// d₂ = g₂ + 0.9·b₂ = (4.8864039, −2.5764078).
	assertClose(t, "p2", got[1], []float64{-0.06054039, -1.54855922}, 1e-13)
}

func TestSGDDampeningByHand(t *testing.T) {
	o := SGD(0.1, 0.9)
	o.Dampening = 0.5
	got := quadStep(t, o, quadC, quadP0, 0.1, 2)
	// The first step takes b₁ = g₁ = (3, −1) undamped.
	assertClose(t, "p1", got[0], []float64{0.7, -1.9}, 1e-13)
	// g₂ = (2.1, −0.95); b₂ = 0.9·b₁ + 0.5·g₂ = (3.75, −1.375).
	assertClose(t, "p2", got[1], []float64{0.325, -1.7625}, 1e-13)
}

func TestPlainSGDByHand(t *testing.T) {
	o := SGD(0.1, 0)
	o.WeightDecay = 0.01
	if len(o.Slots()) != 0 {
		t.Fatalf("plain SGD has state slots %v", o.Slots())
	}
	got := quadStep(t, o, quadC, quadP0, 0.1, 2)
	assertClose(t, "p1", got[0], []float64{0.699, -1.898}, 1e-13)
	// p₂ = p₁ − 0.1·(c+λ)p₁ = (0.699·0.699, −1.898·0.949).
	assertClose(t, "p2", got[1], []float64{0.488601, -1.801202}, 1e-13)
}

func TestAdamByHand(t *testing.T) {
	got := quadStep(t, Adam(0.1), quadC, quadP0, 0.1, 2)
	// Step 1: m = 0.1·g, v = 0.001·g², both bias corrections undo the
	// factors, so p₁ = p₀ − lr·g/(|g| + ε) with g = (3, −1).
	p1 := []float64{1 - 0.1*3/(3+1e-8), -2 + 0.1*1/(1+1e-8)}
	assertClose(t, "p1", got[0], p1, 1e-14)
	// Step 2, with g₂ = c·p₁, written out from PyTorch's formulas.
	var p2 []float64
	for i, g1 := range []float64{3, -1} {
		g2 := quadC[i] * p1[i]
		m := 0.9*(0.1*g1) + 0.1*g2
		v := 0.999*(0.001*g1*g1) + 0.001*g2*g2
		bc1, bc2 := 1-0.9*0.9, 1-0.999*0.999
		p2 = append(p2, p1[i]-0.1/bc1*m/(math.Sqrt(v)/math.Sqrt(bc2)+1e-8))
	}
	assertClose(t, "p2", got[1], p2, 1e-13)
}

func TestAdamWeightDecayIsCoupled(t *testing.T) {
	o := Adam(0.1)
	o.WeightDecay = 0.5
	got := quadStep(t, o, quadC, quadP0, 0.1, 1)
	// L2 enters the gradient before the moments: g = (c+λ)p₀ = (3.5, −2),
	// and the first step is lr·g/(|g|+ε) again.
	assertClose(t, "p1", got[0], []float64{1 - 0.1*3.5/(3.5+1e-8), -2 + 0.1*2/(2+1e-8)}, 1e-14)
}

func TestOptimizerValidate(t *testing.T) {
	bad := []Optimizer{
		{Name: "rmsprop", LR: 0.1},
		{Name: NameSGD, LR: -1},
		{Name: NameSGD, LR: 0.1, Nesterov: true},
		{Name: NameSGD, LR: 0.1, Momentum: 0.9, Dampening: 0.1, Nesterov: true},
		{Name: NameSGD, LR: 0.1, WeightDecay: -1},
		{Name: NameAdam, LR: 0.1, Beta1: 1, Beta2: 0.999},
		{Name: NameAdam, LR: math.NaN(), Beta1: 0.9, Beta2: 0.999},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	for _, o := range []Optimizer{SGD(0.1, 0), SGD(0.1, 0.9), Adam(1e-3)} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
