package vec

import (
	"fmt"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/internal/cputime"

	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/floats"
)

// BenchmarkVec times the loops in L1 (4 Ki elements) and in memory (4 Mi)
// with the assembly and in Go, reporting elements per nanosecond (of
// wall-clock and of CPU time, for loaded machines); gonum's
// axpy, dot and sum run beside them for comparison.
func BenchmarkVec(b *testing.B) {
	benchVec[float32](b, "f32")
	benchVec[float64](b, "f64")
}

func benchVec[T Float](b *testing.B, typ string) {
	defer func(saved bool) { useAsm = saved }(useAsm)
	for _, n := range []int{4 << 10, 4 << 20} {
		x, y, d := make([]T, n), make([]T, n), make([]T, n)
		for i := range x {
			x[i], y[i] = T(i%7)-3, T(i%5)+1
		}
		var sink T
		ops := []struct {
			name string
			f    func()
		}{
			{"Add", func() { Add(d, x, y) }},
			{"Mul", func() { Mul(d, x, y) }},
			{"ReLU", func() { MaxScalar(d, x, 0) }},
			{"FMA", func() { FMA(d, x, y, d) }},
			{"Axpy", func() { Axpy(0.5, x, d) }},
			{"Dot", func() { sink += Dot(x, y) }},
			{"Sum", func() { sink += Sum(x) }},
			{"ReduceMax", func() { sink += ReduceMax(x) }},
			{"SumParallel", func() { sink += SumParallel(x) }},
		}
		for _, op := range ops {
			for _, impl := range []string{"asm", "go"} {
				if impl == "asm" && !asmSupported {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/n%d/%s", typ, op.name, n, impl), func(b *testing.B) {
					useAsm = impl == "asm"
					cpu0 := cputime.Used()
					for i := 0; i < b.N; i++ {
						op.f()
					}
					report(b, n, cpu0)
				})
			}
		}
		gonumOps := gonumVec(x, y, d)
		for _, name := range []string{"Axpy", "Dot", "Sum"} {
			if f := gonumOps[name]; f != nil {
				b.Run(fmt.Sprintf("%s/%s/n%d/gonum", typ, name, n), func(b *testing.B) {
					cpu0 := cputime.Used()
					for i := 0; i < b.N; i++ {
						f()
					}
					report(b, n, cpu0)
				})
			}
		}
		_ = sink
	}
}

// report reports elements per nanosecond of wall-clock and of CPU time
// (since cpu0) for b.N loops over n elements.
func report(b *testing.B, n int, cpu0 time.Duration) {
	elems := float64(n) * float64(b.N)
	b.ReportMetric(elems/float64(b.Elapsed().Nanoseconds()), "elem/ns")
	if cputime.Measured() {
		b.ReportMetric(elems/float64((cputime.Used()-cpu0).Nanoseconds()), "elem/cpu-ns")
	}
}

// gonumVec returns gonum's versions of the loops for the slices' type.
func gonumVec[T Float](x, y, d []T) map[string]func() {
	switch x := any(x).(type) {
	case []float32:
		y, d := any(y).([]float32), any(d).([]float32)
		return map[string]func(){
			"Axpy": func() { gonum.Implementation{}.Saxpy(len(x), 0.5, x, 1, d, 1) },
			"Dot":  func() { _ = gonum.Implementation{}.Sdot(len(x), x, 1, y, 1) },
		}
	case []float64:
		y, d := any(y).([]float64), any(d).([]float64)
		return map[string]func(){
			"Axpy": func() { gonum.Implementation{}.Daxpy(len(x), 0.5, x, 1, d, 1) },
			"Dot":  func() { _ = gonum.Implementation{}.Ddot(len(x), x, 1, y, 1) },
			"Sum":  func() { _ = floats.Sum(x) },
		}
	}
	return nil
}
