package nn

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/backend"
)

// Test harness: a CPU backend (backend.ForTests: $GOMLX_BACKEND, else the
// default), float64 tensors from Go slices, and a finite-difference check of
// first, second and third derivatives.

var testBackend = sync.OnceValues(func() (backends.Backend, error) {
	return backend.Open(backend.ForTests())
})

func backendT(t testing.TB) backends.Backend {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	return b
}

// arr is a float64 array with its dimensions.
type arr struct {
	dims []int
	data []float64
}

func randArr(rng *rand.Rand, scale float64, dims ...int) arr {
	n := 1
	for _, d := range dims {
		n *= d
	}
	a := arr{dims: dims, data: make([]float64, n)}
	for i := range a.data {
		a.data[i] = scale * rng.NormFloat64()
	}
	return a
}

func (a arr) tensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), a.data...), a.dims...)
}

func (a arr) axpy(s float64, b arr) arr {
	c := arr{dims: a.dims, data: make([]float64, len(a.data))}
	for i := range c.data {
		c.data[i] = a.data[i] + s*b.data[i]
	}
	return c
}

// run executes fn once on the given inputs and returns every output as float64s.
func run(t testing.TB, fn func([]*Node) []*Node, inputs ...*tensors.Tensor) [][]float64 {
	t.Helper()
	e, err := NewExec(backendT(t), fn)
	if err != nil {
		t.Fatal(err)
	}
	args := make([]any, len(inputs))
	for i, in := range inputs {
		args[i] = in
	}
	outs, err := e.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float64, len(outs))
	for i, o := range outs {
		switch o.DType() {
		case dtypes.Float64:
			res[i] = tensors.MustCopyFlatData[float64](o)
		case dtypes.Float32:
			for _, v := range tensors.MustCopyFlatData[float32](o) {
				res[i] = append(res[i], float64(v))
			}
		case dtypes.Int64:
			for _, v := range tensors.MustCopyFlatData[int64](o) {
				res[i] = append(res[i], float64(v))
			}
		default:
			t.Fatalf("output %d has dtype %s", i, o.DType())
		}
	}
	return res
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// relErr is |a−b| / max(|a|, |b|, floor).
func relErr(a, b, floor float64) float64 {
	return math.Abs(a-b) / math.Max(math.Max(math.Abs(a), math.Abs(b)), floor)
}

// vecRelErr is ‖a−b‖ / max(‖a‖, ‖b‖, floor).
func vecRelErr(a, b []float64, floor float64) float64 {
	d, na, nb := 0.0, 0.0, 0.0
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	return math.Sqrt(d) / math.Max(math.Max(math.Sqrt(na), math.Sqrt(nb)), floor)
}

// derivs holds f, ∇f, H·u and ∇(vᵀHv) for one set of parameters.
type derivs struct {
	f     float64
	g     [][]float64
	hu    [][]float64
	vhv   float64
	grad3 [][]float64
}

// evalDerivs computes derivs of the scalar f(params, extra) with graph
// autodiff (gradient, Hessian-vector product, gradient of vᵀHv).
func evalDerivs(t testing.TB, f func(p, extra []*Node) *Node, params, u, v []arr, extra []*tensors.Tensor) derivs {
	t.Helper()
	np := len(params)
	fn := func(in []*Node) []*Node {
		p, uu, vv, ex := in[:np], in[np:2*np], in[2*np:3*np], in[3*np:]
		loss := f(p, ex)
		g := Gradient(loss, p...)
		gu, gv := innerProducts(g, uu), innerProducts(g, vv)
		hu := Gradient(gu, p...)
		hv := Gradient(gv, p...)
		vhv := innerProducts(hv, vv)
		t3 := Gradient(vhv, p...)
		out := []*Node{loss}
		out = append(out, g...)
		out = append(out, hu...)
		out = append(out, vhv)
		return append(out, t3...)
	}
	var in []*tensors.Tensor
	for _, group := range [][]arr{params, u, v} {
		for _, a := range group {
			in = append(in, a.tensor())
		}
	}
	in = append(in, extra...)
	res := run(t, fn, in...)
	return derivs{f: res[0][0], g: res[1 : 1+np], hu: res[1+np : 1+2*np], vhv: res[1+2*np][0], grad3: res[2+2*np:]}
}

func innerProducts(a, b []*Node) *Node {
	var s *Node
	for i := range a {
		term := ReduceAllSum(Mul(a[i], b[i]))
		if s == nil {
			s = term
		} else {
			s = Add(s, term)
		}
	}
	return s
}

func flat(xs [][]float64) []float64 {
	var out []float64
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

// checkDerivatives compares the autodiff derivatives of f at random params of
// the given shapes with central finite differences along a random direction u:
// g·u against Δf, H·u against Δg, and ∇(vᵀHv)·u against Δ(vᵀHv). scale sets
// the spread of the random parameters.
func checkDerivatives(t *testing.T, seed uint64, dims [][]int, scale float64, extra []*tensors.Tensor, f func(p, extra []*Node) *Node) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var params, u, v []arr
	for _, d := range dims {
		params = append(params, randArr(rng, scale, d...))
		u = append(u, randArr(rng, 1, d...))
		v = append(v, randArr(rng, 1, d...))
	}
	at := func(s float64) []arr {
		out := make([]arr, len(params))
		for i := range params {
			out[i] = params[i].axpy(s, u[i])
		}
		return out
	}
	const eps = 1e-6
	d0 := evalDerivs(t, f, params, u, v, extra)
	dp := evalDerivs(t, f, at(eps), u, v, extra)
	dm := evalDerivs(t, f, at(-eps), u, v, extra)

	uFlat := flat(func() [][]float64 {
		var o [][]float64
		for _, a := range u {
			o = append(o, a.data)
		}
		return o
	}())
	gu := dot(flat(d0.g), uFlat)
	fdGu := (dp.f - dm.f) / (2 * eps)
	if e := relErr(gu, fdGu, 1e-8); !(e <= 1e-7) {
		t.Errorf("first derivative: g·u = %.12g, finite difference %.12g (rel. err %.2g)", gu, fdGu, e)
	}
	hu := flat(d0.hu)
	gp, gm := flat(dp.g), flat(dm.g)
	fdHu := make([]float64, len(gp))
	for i := range gp {
		fdHu[i] = (gp[i] - gm[i]) / (2 * eps)
	}
	if e := vecRelErr(hu, fdHu, 1e-8); !(e <= 1e-7) {
		t.Errorf("second derivative: ‖H·u − Δg/Δ‖/‖H·u‖ = %.2g (‖H·u‖² = %.6g)", e, dot(hu, hu))
	}
	t3u := dot(flat(d0.grad3), uFlat)
	fdT3 := (dp.vhv - dm.vhv) / (2 * eps)
	t.Logf("rel. errors vs finite differences: 1st %.1e, 2nd %.1e, 3rd %.1e",
		relErr(gu, fdGu, 1e-8), vecRelErr(hu, fdHu, 1e-8), relErr(t3u, fdT3, 1e-6))
	if e := relErr(t3u, fdT3, 1e-6); !(e <= 1e-6) {
		t.Errorf("third derivative: ∇(vᵀHv)·u = %.12g, finite difference %.12g (rel. err %.2g)", t3u, fdT3, e)
	}
}
