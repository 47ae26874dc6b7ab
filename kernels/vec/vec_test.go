package vec

import (
	"fmt"
	"github.com/hessian-spectra/runner/kernels/internal/paths"
	"math"
	"math/rand/v2"
	"testing"
)

// eachPath runs f with the assembly (where the CPU has it) and with Go.
func eachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	paths.Each(t, asmSupported, &useAsm, f)
}

// sizes cover empty, below one vector, every remainder of the 4-vector loop
// and long slices.
var sizes = []int{0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4099}

// operand draws n values in [-2, 2), with NaN at nan (if ≥ 0 and < n) and
// exact zeros sprinkled in (SelectPositive's and Max's ties).
func operand(r *rand.Rand, n, nan int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = 4*r.Float64() - 2
		if i%11 == 5 {
			s[i] = 0
		}
	}
	if nan >= 0 && nan < n {
		s[nan] = math.NaN()
	}
	return s
}

func to[T Float](s []float64) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = T(v)
	}
	return out
}

// close reports whether got is want within tol·scale, NaN matching NaN.
func close(got, want, tol, scale float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	return got == want || math.Abs(got-want) <= tol*scale
}

type elementwise[T Float] struct {
	name string
	run  func(dst, x, y, z []T)
	ref  func(x, y, z float64) float64
}

func elementwiseOps[T Float]() []elementwise[T] {
	const alpha, s = 0.75, -0.5
	return []elementwise[T]{
		{"Add", func(d, x, y, _ []T) { Add(d, x, y) }, func(x, y, _ float64) float64 { return x + y }},
		{"Sub", func(d, x, y, _ []T) { Sub(d, x, y) }, func(x, y, _ float64) float64 { return x - y }},
		{"Mul", func(d, x, y, _ []T) { Mul(d, x, y) }, func(x, y, _ float64) float64 { return x * y }},
		{"Div", func(d, x, y, _ []T) { Div(d, x, y) }, func(x, y, _ float64) float64 { return x / y }},
		{"Max", func(d, x, y, _ []T) { Max(d, x, y) }, func(x, y, _ float64) float64 {
			if math.IsNaN(x) || math.IsNaN(y) {
				return math.NaN()
			}
			return math.Max(x, y)
		}},
		{"SelectPositive", func(d, x, y, _ []T) { SelectPositive(d, x, y) }, func(c, x, _ float64) float64 {
			if c > 0 {
				return x
			}
			return 0
		}},
		{"Scale", func(d, x, _, _ []T) { Scale(d, alpha, x) }, func(x, _, _ float64) float64 { return alpha * x }},
		{"AddScalar", func(d, x, _, _ []T) { AddScalar(d, x, s) }, func(x, _, _ float64) float64 { return x + s }},
		{"ReLU", func(d, x, _, _ []T) { MaxScalar(d, x, 0) }, func(x, _, _ float64) float64 {
			if math.IsNaN(x) {
				return x
			}
			return math.Max(x, 0)
		}},
		{"MaxScalarNaN", func(d, x, _, _ []T) { MaxScalar(d, x, T(math.NaN())) }, func(_, _, _ float64) float64 { return math.NaN() }},
		{"FMA", func(d, x, y, z []T) { FMA(d, x, y, z) }, func(x, y, z float64) float64 { return x*y + z }},
		{"Axpy", func(d, x, _, z []T) { copy(d, z); Axpy(alpha, x, d) }, func(x, _, z float64) float64 { return z + alpha*x }},
	}
}

// TestElementwise compares every elementwise function with float64 loops
// over all sizes, with and without a NaN, into a fresh dst and in place.
func TestElementwise(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		testElementwise[float32](t, 0x1p-23)
		testElementwise[float64](t, 0x1p-52)
	})
}

func testElementwise[T Float](t *testing.T, eps float64) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, op := range elementwiseOps[T]() {
		for _, n := range sizes {
			for _, nan := range []int{-1, n / 2, n - 1} {
				x64, y64, z64 := operand(r, n, nan), operand(r, n, -1), operand(r, n, -1)
				if op.name == "SelectPositive" || op.name == "Max" {
					y64 = operand(r, n, n/3) // NaN in the second operand too
				}
				x, y, z := to[T](x64), to[T](y64), to[T](z64)
				for _, inPlace := range []bool{false, true} {
					dst := make([]T, n)
					if inPlace && op.name != "Axpy" {
						dst = append([]T(nil), x...)
						op.run(dst, dst, y, z)
					} else {
						op.run(dst, x, y, z)
					}
					for i := range dst {
						xi, yi, zi := float64(x[i]), float64(y[i]), float64(z[i])
						want := op.ref(xi, yi, zi)
						scale := math.Abs(want) + math.Abs(xi*yi) + math.Abs(zi)
						if !close(float64(dst[i]), want, 2*eps, scale) {
							t.Fatalf("%s %T n=%d nan=%d inPlace=%v: [%d] = %g, want %g (x %g y %g z %g)", op.name, x, n, nan, inPlace, i, dst[i], want, xi, yi, zi)
						}
					}
				}
			}
		}
	}
}

// TestReductions compares Sum, Dot, ReduceMax and their parallel forms with
// float64 loops, with a bound of n·eps·Σ|terms| for the sums.
func TestReductions(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		testReductions[float32](t, 0x1p-23)
		testReductions[float64](t, 0x1p-52)
	})
}

func testReductions[T Float](t *testing.T, eps float64) {
	r := rand.New(rand.NewPCG(3, 4))
	long := []int{3*Grain + 5, 2 * Grain}
	for _, n := range append(append([]int{}, sizes...), long...) {
		for _, nan := range []int{-1, n / 2, n - 1} {
			x, y := to[T](operand(r, n, nan)), to[T](operand(r, n, -1))
			var sum, abs, dot, dabs float64
			mx := math.Inf(-1)
			for i := range x {
				xi, yi := float64(x[i]), float64(y[i])
				sum += xi
				abs += math.Abs(xi)
				dot += xi * yi
				dabs += math.Abs(xi * yi)
				if math.IsNaN(xi) || math.IsNaN(mx) {
					mx = math.NaN()
				} else {
					mx = math.Max(mx, xi)
				}
			}
			tol := float64(n+1) * eps
			for _, c := range []struct {
				name       string
				got        T
				want, size float64
			}{
				{"Sum", Sum(x), sum, abs},
				{"SumParallel", SumParallel(x), sum, abs},
				{"Dot", Dot(x, y), dot, dabs},
				{"DotParallel", DotParallel(x, y), dot, dabs},
				{"ReduceMax", ReduceMax(x), mx, 0},
				{"ReduceMaxParallel", ReduceMaxParallel(x), mx, 0},
			} {
				if !close(float64(c.got), c.want, tol, c.size) && !(math.IsInf(c.want, -1) && math.IsInf(float64(c.got), -1)) {
					t.Errorf("%s %T n=%d nan=%d: %g, want %g", c.name, x, n, nan, c.got, c.want)
				}
			}
		}
	}
}

// TestShortInputPanics: an input shorter than dst is an error, not a read
// past its end.
func TestShortInputPanics(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		dst, short := make([]float32, 64), make([]float32, 63)
		for name, f := range map[string]func(){
			"Add":   func() { Add(dst, dst, short) },
			"FMA":   func() { FMA(dst, dst, dst, short) },
			"Scale": func() { Scale(dst, 2, short) },
			"Axpy":  func() { Axpy(2, short, dst) },
			"Dot":   func() { Dot(dst, short) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: no panic", name)
					}
				}()
				f()
			}()
		}
	})
}

// TestNoAllocations: the loops and the parallel reductions allocate nothing.
func TestNoAllocations(t *testing.T) {
	if paths.Race {
		t.Skip("sync.Pool drops items under -race")
	}
	x := make([]float64, 4*Grain)
	if n := testing.AllocsPerRun(50, func() {
		Add(x, x, x)
		_ = SumParallel(x)
		_ = ReduceMax(x)
	}); n >= 1 {
		t.Errorf("%g allocations per call", n)
	}
}

func ExampleMaxScalar() {
	x := []float32{-1, 2, -3, 4}
	MaxScalar(x, x, 0) // ReLU in place
	fmt.Println(x)
	// Output: [0 2 0 4]
}
