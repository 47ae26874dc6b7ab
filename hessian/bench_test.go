package hessian

import (
	"context"
	"fmt"
	"testing"
)

// diagonal is the cheapest honest operator: one pass over the vectors, so
// that benchmarks measure the Lanczos side, which is what is left once a
// Hessian-vector product takes the operator's place.
type diagonal []float64

func (d diagonal) Dim() int { return len(d) }
func (d diagonal) Apply(_ context.Context, dst, src []float64) error {
	chunks(len(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = d[i] * src[i]
		}
	})
	return nil
}

func newDiagonal(n int) diagonal {
	d := make(diagonal, n)
	gaussian(d, newRand(0, 99))
	return d
}

// Parameter counts: LeNet (1 channel, 10 classes) and ResNet18 (CIFAR-10).
const (
	lenetDim    = 61_706
	resnet18Dim = 11_173_962
)

// BenchmarkLanczosStep is the cost of one Lanczos step on top of the
// operator (here a diagonal, one pass): plain recurrence at the LeNet and
// ResNet18 sizes, and with full reorthogonalisation averaged over a
// 128-step run (the cost grows with the step number) at the LeNet size.
func BenchmarkLanczosStep(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		n      int
		reorth Reorthogonalization
	}{{lenetDim, ReorthNone}, {resnet18Dim, ReorthNone}, {lenetDim, ReorthFull}} {
		b.Run(fmt.Sprintf("dim=%d/reorth=%v", c.n, c.reorth), func(b *testing.B) {
			op := newDiagonal(c.n)
			v := make([]float64, c.n)
			gaussianUnit(v, newRand(1, 1))
			steps := 0
			b.ResetTimer()
			if c.reorth == ReorthNone {
				r := newRecurrence(v, b.N+1, ReorthNone)
				for range b.N {
					src, dst := r.next()
					_ = op.Apply(ctx, dst, src)
					if err := r.accept(); err != nil {
						b.Fatal(err)
					}
				}
				steps = b.N
			} else {
				for range b.N {
					r := newRecurrence(append([]float64(nil), v...), 128, ReorthFull)
					for !r.done {
						src, dst := r.next()
						_ = op.Apply(ctx, dst, src)
						if err := r.accept(); err != nil {
							b.Fatal(err)
						}
					}
					steps += 128
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps)/1e6, "ms/step")
		})
	}
}

// BenchmarkDensityAssembly is the seed's density from finished runs: the
// eigendecompositions of the 64- and 128-step tridiagonals and the kernel
// sum on 1,024 points.
func BenchmarkDensityAssembly(b *testing.B) {
	ctx := context.Background()
	op := newSpectral(hessianLike(2000, 1), 2, 1)
	o := DefaultDensityOptions()
	bt, err := Lanczos(ctx, op, LanczosOptions{Steps: 64, Seed: 1, Stream: StreamBounds})
	if err != nil {
		b.Fatal(err)
	}
	pt, err := Lanczos(ctx, op, LanczosOptions{Steps: 128, Seed: 1, Stream: StreamProbe})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := assembleDensity(o, bt, []*Tridiagonal{pt}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeedEpochLanczosSide is everything but the Hessian-vector
// products of the seed's per-epoch workload on LeNet: densities of the full
// Hessian and of its 5 weight layers (192 products each, 1,152 in all),
// run in lockstep as one group of diagonal operators.
func BenchmarkSeedEpochLanczosSide(b *testing.B) {
	ctx := context.Background()
	dims := []int{lenetDim, 150, 2400, 48000, 10080, 840} // full, conv1, conv2, fc1, fc2, fc3 weights
	var ops []Operator
	for _, n := range dims {
		ops = append(ops, newDiagonal(n))
	}
	o := DefaultDensityOptions()
	reqs := make([]Request, len(ops))
	for i := range reqs {
		reqs[i].Density = &o
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Run(ctx, NewGroup(ops...), reqs, RunOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
