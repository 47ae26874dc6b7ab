package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// The backends compared: GoMLX's pure-Go backend is the reference; the cpu
// backend runs fused, unfused, and with 1 and 3 workers (whose results must
// be bit-identical).
var testBackends = sync.OnceValue(func() map[string]backends.Backend {
	m := map[string]backends.Backend{}
	for _, cfg := range []string{"go:ops_sequential", "cpu", "cpu:nofuse", "cpu:workers=1", "cpu:workers=3"} {
		b, err := backends.NewWithConfig(cfg)
		if err != nil {
			panic(err)
		}
		m[cfg] = b
	}
	return m
})

// opCase is a graph function of float inputs of the given dimensions.
type opCase struct {
	name string
	dims [][]int
	fn   func(in []*Node) *Node
	// tol is the relative tolerance against the reference in float32
	// (float64: 1e-12); 0 means 2e-6.
	tol float64
}

func randTensor(rng *rand.Rand, dt dtypes.DType, dims []int) *tensors.Tensor {
	v := make([]float64, product(dims))
	for i := range v {
		v[i] = math.Round(rng.NormFloat64()*64) / 32 // some ties, exact in float32
	}
	return floatTensor(v, dt, dims)
}

func floatTensor(v []float64, dt dtypes.DType, dims []int) *tensors.Tensor {
	if dt == dtypes.Float32 {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	}
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), v...), dims...)
}

// values returns a tensor's values as float64s.
func values(t *tensors.Tensor) []float64 {
	var out []float64
	t.MustConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			for _, x := range f {
				out = append(out, float64(x))
			}
		case []float64:
			out = append(out, f...)
		case []int32:
			for _, x := range f {
				out = append(out, float64(x))
			}
		case []int64:
			for _, x := range f {
				out = append(out, float64(x))
			}
		case []bool:
			for _, x := range f {
				out = append(out, map[bool]float64{false: 0, true: 1}[x])
			}
		default:
			panic(fmt.Sprintf("values of %T", flat))
		}
	})
	return out
}

func run(t *testing.T, b backends.Backend, fn func(in []*Node) *Node, in []*tensors.Tensor) *tensors.Tensor {
	t.Helper()
	exec, err := NewExec(b, fn)
	if err != nil {
		t.Fatal(err)
	}
	args := make([]any, len(in))
	for i, x := range in {
		c, err := x.LocalClone() // a tensor may live on one backend only
		if err != nil {
			t.Fatal(err)
		}
		args[i] = c
	}
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatalf("%s: %v", b.String(), err)
	}
	return out[0]
}

// relErr is max |a−b| / max(max|b|, tiny); NaNs must match.
func relErr(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range a {
		if math.IsNaN(a[i]) || math.IsNaN(b[i]) {
			if math.IsNaN(a[i]) != math.IsNaN(b[i]) {
				return math.Inf(1)
			}
			continue
		}
		num = max(num, math.Abs(a[i]-b[i]))
		den = max(den, math.Abs(b[i]))
	}
	return num / max(den, 1e-300)
}

func bitsEqual(a, b *tensors.Tensor) bool { return sameBits(values(a), values(b)) }

// sameBits reports whether x and y hold the same float64s, bit for bit.
func sameBits(x, y []float64) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
			return false
		}
	}
	return true
}

// checkCases runs each case on every backend in float32 and float64 and
// compares with the reference (or with want, when given).
func checkCases(t *testing.T, cases []opCase, reference string) {
	bs := testBackends()
	for ci, c := range cases {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			t.Run(fmt.Sprintf("%s/%s", c.name, dt), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(ci), 3))
				in := make([]*tensors.Tensor, len(c.dims))
				for i, d := range c.dims {
					in[i] = randTensor(rng, dt, d)
				}
				want := values(run(t, bs[reference], c.fn, in))
				tol := c.tol
				if tol == 0 {
					tol = 2e-6
				}
				if dt == dtypes.Float64 {
					tol = 1e-12
				}
				var one *tensors.Tensor
				for _, name := range []string{"cpu", "cpu:nofuse", "cpu:workers=1", "cpu:workers=3"} {
					got := run(t, bs[name], c.fn, in)
					if e := relErr(values(got), want); !(e <= tol) {
						t.Errorf("%s: relative error %.3g > %.3g\n got %v\nwant %v", name, e, tol, head(values(got)), head(want))
					}
					switch name {
					case "cpu:workers=1":
						one = got
					case "cpu:workers=3":
						if !bitsEqual(one, got) {
							t.Errorf("1 and 3 workers give different bits")
						}
					}
				}
			})
		}
	}
}

func head(v []float64) []float64 { return v[:min(len(v), 12)] }

func TestElementwise(t *testing.T) {
	pos := func(x *Node) *Node { return AddScalar(Abs(x), 0.5) }
	unary := map[string]func(*Node) *Node{
		"Abs": Abs, "Neg": Neg, "Exp": Exp, "Expm1": Expm1, "Tanh": Tanh, "Logistic": Logistic, "Sign": Sign,
		"Floor": Floor, "Ceil": Ceil, "Sin": Sin, "Cos": Cos, "Erf": Erf,
		// Round's documented semantics (to even) and the reference's (away from
		// zero) differ on ties, which the inputs avoid.
		"Round": func(x *Node) *Node { return Round(AddScalar(x, 0.01)) },
		"Log":   func(x *Node) *Node { return Log(pos(x)) },
		"Log1p": func(x *Node) *Node { return Log1p(pos(x)) },
		"Sqrt":  func(x *Node) *Node { return Sqrt(pos(x)) },
		"Rsqrt": func(x *Node) *Node { return Rsqrt(pos(x)) },
	}
	var cases []opCase
	for name, f := range unary {
		cases = append(cases, opCase{name: name, dims: [][]int{{7, 33}}, fn: func(in []*Node) *Node { return f(in[0]) }})
	}
	binary := map[string]func(a, b *Node) *Node{
		"Add": Add, "Sub": Sub, "Mul": Mul, "Max": Max, "Min": Min,
		"Div": func(a, b *Node) *Node { return Div(a, pos(b)) },
		"Pow": func(a, b *Node) *Node { return Pow(pos(a), b) },
		"Rem": func(a, b *Node) *Node { return Mod(a, pos(b)) },
	}
	for name, f := range binary {
		cases = append(cases,
			opCase{name: name, dims: [][]int{{5, 9, 4}, {5, 9, 4}}, fn: func(in []*Node) *Node { return f(in[0], in[1]) }},
			opCase{name: name + " broadcast", dims: [][]int{{5, 9, 4}, {5, 1, 4}}, fn: func(in []*Node) *Node { return f(in[0], in[1]) }},
			opCase{name: name + " scalar", dims: [][]int{{5, 9, 4}, {}}, fn: func(in []*Node) *Node { return f(in[1], in[0]) }},
		)
	}
	cases = append(cases,
		opCase{"ReLU where", [][]int{{300, 70}}, func(in []*Node) *Node {
			return Where(GreaterThan(in[0], ScalarZero(in[0].Graph(), in[0].DType())), in[0], ScalarZero(in[0].Graph(), in[0].DType()))
		}, 0},
		opCase{"compare all", [][]int{{40, 3}, {40, 3}}, func(in []*Node) *Node {
			a, b := in[0], in[1]
			one := func(c *Node) *Node { return ConvertDType(c, a.DType()) }
			return Add(Add(Add(one(Equal(a, b)), MulScalar(one(NotEqual(a, b)), 2)), Add(MulScalar(one(LessThan(a, b)), 4), MulScalar(one(LessOrEqual(a, b)), 8))),
				Add(MulScalar(one(GreaterThan(a, b)), 16), MulScalar(one(GreaterOrEqual(a, b)), 32)))
		}, 0},
		opCase{"logical", [][]int{{40, 3}, {40, 3}}, func(in []*Node) *Node {
			p, q := GreaterThan(in[0], in[1]), GreaterThan(in[1], ScalarZero(in[1].Graph(), in[1].DType()))
			one := func(c *Node) *Node { return ConvertDType(c, in[0].DType()) }
			return Add(Add(one(LogicalAnd(p, q)), MulScalar(one(LogicalOr(p, q)), 2)), Add(MulScalar(one(LogicalXor(p, q)), 4), MulScalar(one(LogicalNot(p)), 8)))
		}, 0},
		opCase{"Clamp", [][]int{{6, 50}}, func(in []*Node) *Node {
			g := in[0].Graph()
			return Clamp(Scalar(g, in[0].DType(), -0.5), in[0], Scalar(g, in[0].DType(), 1))
		}, 0},
		opCase{"ConvertDType round trip", [][]int{{6, 50}}, func(in []*Node) *Node {
			return Add(ConvertDType(ConvertDType(MulScalar(in[0], 3), dtypes.Int32), in[0].DType()),
				ConvertDType(ConvertDType(ConvertDType(in[0], dtypes.Int64), dtypes.Float32), in[0].DType()))
		}, 0},
		opCase{"IsFinite IsNaN", [][]int{{6, 50}}, func(in []*Node) *Node {
			x := Log(in[0]) // NaN for negatives, -Inf for 0
			one := func(c *Node) *Node { return ConvertDType(c, in[0].DType()) }
			return Add(one(IsFinite(x)), MulScalar(one(IsNaN(x)), 2))
		}, 0},
		opCase{"long chain", [][]int{{64, 130}, {130}}, func(in []*Node) *Node {
			x := in[0]
			for i := range 30 {
				x = Add(Mul(Tanh(x), InsertAxes(in[1], 0)), MulScalar(x, 0.1*float64(i)))
			}
			return x
		}, 1e-5},
	)
	checkCases(t, cases, "go:ops_sequential")
}

func TestViewsAndReductions(t *testing.T) {
	cases := []opCase{
		{"transpose add", [][]int{{6, 7, 8}, {8, 6, 7}}, func(in []*Node) *Node { return Add(TransposeAllAxes(in[0], 2, 0, 1), in[1]) }, 0},
		{"strided slice exp", [][]int{{9, 12, 5}}, func(in []*Node) *Node {
			return Exp(Slice(in[0], AxisRange(1, 8).Stride(3), AxisRange(0, 12).Stride(5), AxisRange(4, 5)))
		}, 0},
		{"reshape of transpose", [][]int{{6, 10}}, func(in []*Node) *Node { return Reshape(Transpose(Tanh(in[0]), 0, 1), 5, 12) }, 0},
		{"broadcast of computed", [][]int{{4, 1, 3}}, func(in []*Node) *Node {
			return Mul(BroadcastToDims(Exp(in[0]), 4, 5, 3), BroadcastToDims(Reshape(in[0], 4, 1, 3), 4, 5, 3))
		}, 0},
		{"broadcast prefix", [][]int{{3, 2}}, func(in []*Node) *Node { return Exp(BroadcastPrefix(in[0], 4)) }, 0},
		{"sum axis 0", [][]int{{3000, 7}}, func(in []*Node) *Node { return ReduceSum(in[0], 0) }, 1e-5},
		{"sum axis 1", [][]int{{700, 90}}, func(in []*Node) *Node { return ReduceSum(Mul(in[0], in[0]), 1) }, 1e-5},
		{"sum middle", [][]int{{13, 200, 11}}, func(in []*Node) *Node { return ReduceSum(Exp(in[0]), 1) }, 1e-5},
		{"sum outer two", [][]int{{40, 30, 6}}, func(in []*Node) *Node { return ReduceSum(in[0], 0, 1) }, 1e-5},
		{"sum all", [][]int{{257, 300}}, func(in []*Node) *Node { return ReduceAllSum(in[0]) }, 1e-5},
		{"sum of transposed", [][]int{{50, 60}}, func(in []*Node) *Node { return ReduceSum(Transpose(in[0], 0, 1), 1) }, 1e-5},
		{"mean", [][]int{{8, 5, 5, 6}}, func(in []*Node) *Node { return ReduceMean(in[0], 0, 1, 2) }, 1e-5},
		{"max min", [][]int{{30, 17}}, func(in []*Node) *Node {
			return Add(ReduceMax(in[0], 1), MulScalar(ReduceMin(in[0], 1), 3))
		}, 0},
		{"max all large", [][]int{{600, 300}}, func(in []*Node) *Node { return ReduceAllMax(in[0]) }, 0},
		{"product", [][]int{{6, 5}}, func(in []*Node) *Node { return ReduceMultiply(AddScalar(in[0], 1), 0) }, 1e-5},
		{"argmax argmin", [][]int{{20, 9}}, func(in []*Node) *Node {
			return ConvertDType(Concatenate([]*Node{ArgMax(in[0], 1, dtypes.Int32), ArgMin(in[0], 0, dtypes.Int32)}, 0), in[0].DType())
		}, 0},
		{"one hot", [][]int{{16}}, func(in []*Node) *Node {
			labels := ConvertDType(Abs(MulScalar(in[0], 2)), dtypes.Int32)
			return OneHot(labels, 12, in[0].DType())
		}, 0},
		{"iota", [][]int{{2}}, func(in []*Node) *Node {
			return Add(Iota(in[0].Graph(), shapes.Make(in[0].DType(), 3, 4, 5), 1), ReduceAllSum(in[0]))
		}, 0},
	}
	checkCases(t, cases, "go:ops_sequential")
}

func TestProducts(t *testing.T) {
	cases := []opCase{
		{"matmul", [][]int{{33, 20}, {20, 17}}, func(in []*Node) *Node { return Dot(in[0], in[1]) }, 1e-5},
		{"A Bᵀ", [][]int{{33, 20}, {17, 20}}, func(in []*Node) *Node { return DotGeneral(in[0], []int{1}, nil, in[1], []int{1}, nil) }, 1e-5},
		{"Aᵀ B", [][]int{{20, 33}, {20, 17}}, func(in []*Node) *Node { return DotGeneral(in[0], []int{0}, nil, in[1], []int{0}, nil) }, 1e-5},
		{"Aᵀ Bᵀ", [][]int{{20, 33}, {17, 20}}, func(in []*Node) *Node { return DotGeneral(in[0], []int{0}, nil, in[1], []int{1}, nil) }, 1e-5},
		{"matrix vector", [][]int{{33, 20}, {20}}, func(in []*Node) *Node { return Dot(in[0], in[1]) }, 1e-5},
		{"transposed operand", [][]int{{20, 33}, {20, 17}}, func(in []*Node) *Node { return Dot(Transpose(in[0], 0, 1), in[1]) }, 1e-5},
		{"fused operand", [][]int{{33, 20}, {20, 17}}, func(in []*Node) *Node { return Dot(Tanh(in[0]), Exp(in[1])) }, 1e-5},
		{"batched", [][]int{{4, 6, 5}, {4, 5, 3}}, func(in []*Node) *Node {
			return DotGeneral(in[0], []int{2}, []int{0}, in[1], []int{1}, []int{0})
		}, 1e-5},
		{"batch in the middle, two contracting", [][]int{{2, 3, 4, 5}, {5, 2, 6, 3}}, func(in []*Node) *Node {
			return DotGeneral(in[0], []int{3, 1}, []int{0}, in[1], []int{0, 3}, []int{1})
		}, 1e-5},
		{"broadcast weights", [][]int{{8, 12, 7}, {5, 7}}, func(in []*Node) *Node {
			w := BroadcastToDims(Reshape(in[1], 1, 5, 7), 8, 5, 7)
			return DotGeneral(in[0], []int{2}, []int{0}, w, []int{2}, []int{0})
		}, 1e-5},
		{"large", [][]int{{300, 150}, {150, 260}}, func(in []*Node) *Node { return Dot(in[0], in[1]) }, 1e-5},
		{"weight gradient", [][]int{{3000, 6}, {3000, 25}}, func(in []*Node) *Node {
			return DotGeneral(in[0], []int{0}, nil, in[1], []int{0}, nil)
		}, 1e-5},
		{"split along k", [][]int{{20000, 6}, {20000, 25}}, func(in []*Node) *Node {
			return DotGeneral(in[0], []int{0}, nil, in[1], []int{0}, nil)
		}, 1e-5},
		{"split along columns", [][]int{{20, 300}, {2000, 300}}, func(in []*Node) *Node {
			return DotGeneral(in[0], []int{1}, nil, in[1], []int{1}, nil)
		}, 1e-5},
		{"split along rows, transposed", [][]int{{150, 600}, {150, 70}}, func(in []*Node) *Node {
			return DotGeneral(in[0], []int{0}, nil, in[1], []int{0}, nil)
		}, 1e-5},
	}
	checkCases(t, cases, "go:ops_sequential")
}

func TestDataMovement(t *testing.T) {
	cases := []opCase{
		{"concat axis 0", [][]int{{3, 4}, {5, 4}}, func(in []*Node) *Node { return Concatenate([]*Node{in[0], Exp(in[1])}, 0) }, 0},
		{"concat inner (im2col)", [][]int{{4, 9, 9, 2}}, func(in []*Node) *Node {
			var parts []*Node
			for ki := range 3 {
				for kj := range 3 {
					win := Slice(in[0], AxisRange(), AxisRange(ki, ki+7), AxisRange(kj, kj+7), AxisRange())
					parts = append(parts, Reshape(win, 4, 7, 7, 1, 2))
				}
			}
			return Concatenate(parts, 3)
		}, 0},
		{"zero padded sum (col2im)", [][]int{{4, 7, 7, 9, 2}}, func(in []*Node) *Node {
			g := in[0].Graph()
			var sum *Node
			for k := range 9 {
				ki, kj := k/3, k%3
				win := Reshape(Slice(in[0], AxisRange(), AxisRange(), AxisRange(), AxisRange(k, k+1), AxisRange()), 4, 7, 7, 2)
				// Place win at (ki, kj) in a 9×9 image of zeros.
				z := func(d ...int) *Node { return Zeros(g, shapes.Make(in[0].DType(), d...)) }
				rows := win
				if ki > 0 {
					rows = Concatenate([]*Node{z(4, ki, 7, 2), rows}, 1)
				}
				if 2-ki > 0 {
					rows = Concatenate([]*Node{rows, z(4, 2-ki, 7, 2)}, 1)
				}
				if kj > 0 {
					rows = Concatenate([]*Node{z(4, 9, kj, 2), rows}, 2)
				}
				if 2-kj > 0 {
					rows = Concatenate([]*Node{rows, z(4, 9, 2-kj, 2)}, 2)
				}
				if sum == nil {
					sum = rows
				} else {
					sum = Add(sum, rows)
				}
			}
			return Tanh(Slice(sum, AxisRange(), AxisRange(1, 8), AxisRange(0, 9), AxisRange()))
		}, 0},
		{"disjoint halves", [][]int{{10, 1, 6}, {10, 1, 6}}, func(in []*Node) *Node {
			z := ZerosLike(in[0])
			return Add(Concatenate([]*Node{in[0], z}, 1), Concatenate([]*Node{z, Neg(in[1])}, 1))
		}, 0},
		{"slice of concat", [][]int{{4, 3}, {4, 5}}, func(in []*Node) *Node {
			c := Concatenate([]*Node{ZerosLike(in[0]), in[1], ZerosLike(in[0])}, 1)
			return Mul(Slice(c, AxisRange(), AxisRange(2, 9)), Slice(c, AxisRange(), AxisRange(0, 7)))
		}, 0},
	}
	checkCases(t, cases, "go:ops_sequential")
}

// TestPadReverse checks the two operations the reference backend lacks
// against values computed here.
func TestPadReverse(t *testing.T) {
	b := testBackends()["cpu"]
	x := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	got := run(t, b, func(in []*Node) *Node {
		return Pad(in[0], Scalar(in[0].Graph(), dtypes.Float32, 9), backends.PadAxis{Start: 1}, backends.PadAxis{End: 1, Interior: 1})
	}, []*tensors.Tensor{x})
	want := []float64{9, 9, 9, 9, 9, 9, 1, 9, 2, 9, 3, 9, 4, 9, 5, 9, 6, 9}
	if relErr(values(got), want) != 0 || !slices.Equal(got.Shape().Dimensions, []int{3, 6}) {
		t.Errorf("Pad = %v %v, want [3 6] %v", got.Shape(), values(got), want)
	}
	got = run(t, b, func(in []*Node) *Node { return Add(Reverse(in[0], 1), Reverse(in[0], 0, 1)) }, []*tensors.Tensor{x})
	want = []float64{3 + 6, 2 + 5, 1 + 4, 6 + 3, 5 + 2, 4 + 1}
	if relErr(values(got), want) != 0 {
		t.Errorf("Reverse sums = %v, want %v", values(got), want)
	}
}

// TestUnsupported checks that an operation outside the supported set fails
// when the graph is built, with a one-line error naming it.
func TestUnsupported(t *testing.T) {
	b := testBackends()["cpu"]
	exec, err := NewExec(b, func(x, idx *Node) *Node { return Gather(x, idx) })
	if err == nil {
		_, err = exec.Exec(tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4}, 4, 1),
			tensors.FromFlatDataAndDimensions([]int32{2, 0}, 2, 1))
	}
	if err == nil {
		t.Fatal("Gather ran")
	}
	line := strings.SplitN(err.Error(), "\n", 2)[0]
	for _, want := range []string{"cpu backend", "Gather", "not supported"} {
		if !strings.Contains(line, want) {
			t.Errorf("first line of the error %q lacks %q", line, want)
		}
	}
}

// TestVecLoops checks the vectorised float loops of vec.go against the plain
// kernels of kernels.go: exactly for element-wise operations (NaN where an
// operand is NaN for Max), closely for sums (another order).
func TestVecLoops(t *testing.T) {
	plain := func(k kfn) func(d, a, b []float32) {
		return func(d, a, b []float32) {
			k(unsafe.Pointer(unsafe.SliceData(d)), unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b)), nil, len(d))
		}
	}
	rng := rand.New(rand.NewPCG(8, 8))
	for _, n := range []int{0, 1, 7, 8, 31, 1000} {
		x, y := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		if n > 3 {
			x[3] = float32(math.NaN())
		}
		for name, f := range map[string][2]func(d, a, b []float32){
			"add": {addF32, plain(kAdd[float32])}, "sub": {subF32, plain(kSub[float32])}, "mul": {mulF32, plain(kMul[float32])},
			"div": {divF32, plain(kDiv[float32])}, "max": {maxF32, plain(kMax[float32])},
		} {
			got, want := make([]float32, n), make([]float32, n)
			f[0](got, x, y)
			f[1](want, x, y)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Errorf("%s n=%d [%d]: %v, want %v", name, n, i, got[i], want[i])
				}
			}
		}
		if n > 3 {
			x[3] = 1
		}
		var plainSum float32
		for _, v := range x {
			plainSum += v
		}
		if s, w := float64(sumF32(x)), float64(plainSum); !(math.Abs(s-w) <= 1e-4*(1+math.Abs(w))) {
			t.Errorf("sum n=%d: %v, want %v", n, s, w)
		}
	}
}
