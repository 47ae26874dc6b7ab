package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hessian-spectra/runner/internal/cputime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are LeNet's products at the training batch (256) and on the
// Hessian subset (100 images), then square sizes. With batch > 1 the case is
// a strided batch: 16 Hessian-vector probes through fc1 on the subset.
func benchShapes() []gemmCase {
	var out []gemmCase
	for _, N := range []int{256, 100} {
		out = append(out, lenetShapes(N)...)
	}
	for _, n := range []int{256, 512, 1024} {
		out = append(out, gemmCase{tA: blas.NoTrans, tB: blas.NoTrans, m: n, n: n, k: n, alpha: 1})
	}
	out = append(out,
		gemmCase{tA: blas.NoTrans, tB: blas.NoTrans, m: 100, n: 120, k: 400, alpha: 1, batch: 16},
		gemmCase{tA: blas.NoTrans, tB: blas.Trans, m: 100, n: 400, k: 120, alpha: 1, batch: 16},
	)
	return out
}

func (g gemmCase) benchName() string {
	s := fmt.Sprintf("%c%c_%dx%dx%d", g.tA, g.tB, g.m, g.n, g.k)
	if g.batch > 1 {
		s = fmt.Sprintf("batch%d_%s", g.batch, s)
	}
	return s
}

// BenchmarkSgemm and BenchmarkDgemm time each shape with the assembly
// kernels, the Go kernels and gonum, on all cores, reporting GFLOP/s and,
// for loaded machines, GFLOP per CPU-second of the process.
func BenchmarkSgemm(b *testing.B) { benchGemm[float32](b) }

// BenchmarkDgemm: see BenchmarkSgemm.
func BenchmarkDgemm(b *testing.B) { benchGemm[float64](b) }

func benchGemm[T element](b *testing.B) {
	defer func(saved bool) { useAsm = saved }(useAsm)
	for _, g := range benchShapes() {
		for _, impl := range []string{"asm", "go", "gonum"} {
			if impl == "asm" && !asmSupported {
				continue
			}
			if impl == "gonum" && g.batch > 1 {
				continue
			}
			b.Run(g.benchName()+"/"+impl, func(b *testing.B) {
				useAsm = impl == "asm"
				f := gemmFunc[T](impl)
				o := g.operands(rand.New(rand.NewPCG(1, 2)))
				a, bb, c := convert[T](o.a), convert[T](o.b), convert[T](o.c)
				batch := max(g.batch, 1)
				cpu0 := cputime.Used()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if batch > 1 && impl != "gonum" {
						gemmBatch(0, pickFor[T](), g.tA, g.tB, g.m, g.n, g.k, T(g.alpha), a, o.lda, o.strideA, bb, o.ldb, o.strideB, T(g.beta), c, o.ldc, o.strideC, batch)
						continue
					}
					for q := 0; q < batch; q++ {
						f(g.tA, g.tB, g.m, g.n, g.k, T(g.alpha), a[q*o.strideA:], o.lda, bb[q*o.strideB:], o.ldb, T(g.beta), c[q*o.strideC:], o.ldc)
					}
				}
				flops := 2 * float64(g.m) * float64(g.n) * float64(g.k) * float64(batch) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cputime.Measured() {
					b.ReportMetric(flops/(cputime.Used()-cpu0).Seconds()/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}

// gemmFunc returns the product function of an implementation for T.
func gemmFunc[T element](impl string) func(tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	var f any
	var z T
	switch _, f32 := any(z).(float32); {
	case impl == "gonum" && f32:
		f = gonum.Implementation{}.Sgemm
	case impl == "gonum":
		f = gonum.Implementation{}.Dgemm
	case f32:
		f = Sgemm
	default:
		f = Dgemm
	}
	return f.(func(blas.Transpose, blas.Transpose, int, int, int, T, []T, int, []T, int, T, []T, int))
}

// pickFor returns the kernel choice for T.
func pickFor[T element]() func(m, n int) *kernel[T] {
	var f any = kernels64
	var z T
	if _, ok := any(z).(float32); ok {
		f = kernels32
	}
	return f.(func(int, int) *kernel[T])
}
