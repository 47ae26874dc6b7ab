package hessian

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/hessian-spectra/runner/internal/cputime"
)

// Benchmarks of Hessian-vector products on the PyTorch-made LeNet fixture:
// its 100-image subset, one batch, batch-norm-free eval mode, on the
// backend the tests use (pure Go, ops in sequence). Each reports wall and
// CPU milliseconds per product; CPU time is the steadier figure on a
// shared machine. They take minutes; run them one at a time, e.g.
//
//	go test ./hessian -run '^$' -bench 'HVP/float32' -benchtime 3x
//	go test ./hessian -run '^$' -bench SeedEpoch -benchtime 1x
//	go test ./hessian -run '^$' -bench PeakMemory -benchtime 1x

// benchTargets are the operators of the seed's per-epoch workload.
var benchTargets = []string{FullTarget, "conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"}

// dtypeName spells dt as specs do: float32, float64.
func dtypeName(dt dtypes.DType) string { return strings.ToLower(dt.String()) }

// benchHessian returns the fixture's Hessians with respect to targets.
func benchHessian(b *testing.B, dtype dtypes.DType, perPass int, targets ...string) *ModelHessian {
	b.Helper()
	w, d := lenetFixture(b, dtype)
	c := ModelClassifier(w, false)
	ts, err := c.Targets(targets...)
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewModelHessian(backendT(b), c, d, ts, ModelHessianOptions{VectorsPerPass: perPass})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	return h
}

// unitVectors returns k random unit vectors of dimension n and k buffers.
func unitVectors(n, k int) (src, dst [][]float64) {
	for i := range k {
		v := make([]float64, n)
		gaussianUnit(v, newRand(11, uint64(i)))
		src, dst = append(src, v), append(dst, make([]float64, n))
	}
	return src, dst
}

// BenchmarkHVP is one Hessian-vector product per LeNet layer and for the
// full network, alone (vectors=1) and 16 per graph execution (vectors=16,
// sharing one forward and first backward pass), in float32 and float64.
func BenchmarkHVP(b *testing.B) {
	ctx := context.Background()
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for _, target := range benchTargets {
			for _, k := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/vectors=%d", dtypeName(dt), target, k), func(b *testing.B) {
					h := benchHessian(b, dt, k, target)
					src, dst := unitVectors(h.Dim(0), k)
					op := h.Operator(0)
					if err := op.ApplyBatch(ctx, dst, src); err != nil { // compile
						b.Fatal(err)
					}
					b.ResetTimer()
					cpu := cputime.Used()
					for range b.N {
						if err := op.ApplyBatch(ctx, dst, src); err != nil {
							b.Fatal(err)
						}
					}
					n := float64(b.N * k)
					b.ReportMetric(float64(b.Elapsed().Microseconds())/n/1e3, "ms/hvp")
					b.ReportMetric(float64((cputime.Used()-cpu).Microseconds())/n/1e3, "cpu-ms/hvp")
				})
			}
		}
	}
}

// BenchmarkGradient is the loss and its gradient per target, the baseline
// of an HVP's cost: a forward and one backward pass.
func BenchmarkGradient(b *testing.B) {
	ctx := context.Background()
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for _, target := range benchTargets {
			b.Run(fmt.Sprintf("%s/%s", dtypeName(dt), target), func(b *testing.B) {
				h := benchHessian(b, dt, 1, target)
				if _, _, err := h.Gradient(ctx, 0); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				cpu := cputime.Used()
				for range b.N {
					if _, _, err := h.Gradient(ctx, 0); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1e3, "ms/grad")
				b.ReportMetric(float64((cputime.Used()-cpu).Microseconds())/float64(b.N)/1e3, "cpu-ms/grad")
			})
		}
	}
}

// BenchmarkSeedEpoch is the Hessian work of one epoch of the seed's
// training_eigenspectrum.py on LeNet: the seed's density (64 + 128
// products) of the full Hessian and of each of the 5 layers, 1,152
// products, in float32. "lockstep" runs the six operators as one group
// (every pass computes the next product of every active recurrence: 12,
// then 6, per forward pass); "separate" runs them one after another, each
// with its own lockstep width, as six lanczos stages do.
func BenchmarkSeedEpoch(b *testing.B) {
	ctx := context.Background()
	o := DefaultDensityOptions()
	for _, mode := range []string{"lockstep", "separate"} {
		b.Run(mode, func(b *testing.B) {
			h := benchHessian(b, dtypes.Float32, 16, benchTargets...)
			cpu := cputime.Used()
			for range b.N {
				if mode == "lockstep" {
					reqs := make([]Request, h.Len())
					for i := range reqs {
						reqs[i].Density = &o
					}
					if _, err := Run(ctx, h, reqs, RunOptions{MaxBatch: 2 * h.Len()}); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for i := range h.Len() {
					if _, err := Run(ctx, NewGroup(h.Operator(i)), []Request{{Density: &o}}, RunOptions{MaxBatch: LockstepWidth(h.Dim(i))}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/epoch")
			b.ReportMetric((cputime.Used()-cpu).Seconds()/float64(b.N), "cpu-s/epoch")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1152)/1e3, "ms/hvp")
		})
	}
}

// peakHeap runs f with the garbage collector at GOGC=5 and returns the
// largest heap in use (runtime.MemStats.HeapAlloc, sampled every 200 µs)
// above the heap in use before f, in bytes. The low GOGC keeps garbage out
// of the figure; buffers the backend pools count, as they are memory it
// holds.
func peakHeap(f func()) uint64 {
	old := debug.SetGCPercent(5)
	defer debug.SetGCPercent(old)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak - base
}

// BenchmarkPeakMemory measures, per target in float32, the peak heap of one
// Hessian-vector product (alone and 16 per pass) against that of one
// gradient, and reports their ratios.
func BenchmarkPeakMemory(b *testing.B) {
	ctx := context.Background()
	for _, target := range benchTargets {
		b.Run(target, func(b *testing.B) {
			h1 := benchHessian(b, dtypes.Float32, 1, target)
			h16 := benchHessian(b, dtypes.Float32, 16, target)
			s1, d1 := unitVectors(h1.Dim(0), 1)
			s16, d16 := unitVectors(h1.Dim(0), 16)
			run := func(f func() error) func() {
				return func() {
					if err := f(); err != nil {
						b.Fatal(err)
					}
				}
			}
			grad := run(func() error { _, _, err := h1.Gradient(ctx, 0); return err })
			hvp := run(func() error { return h1.Operator(0).ApplyBatch(ctx, d1, s1) })
			hvp16 := run(func() error { return h16.Operator(0).ApplyBatch(ctx, d16, s16) })
			grad()
			hvp()
			hvp16()
			b.ResetTimer()
			var g, hv, hv16 uint64
			for range b.N {
				g = max(g, peakHeap(grad))
				hv = max(hv, peakHeap(hvp))
				hv16 = max(hv16, peakHeap(hvp16))
			}
			b.ReportMetric(float64(g)/1e6, "grad-MB")
			b.ReportMetric(float64(hv)/1e6, "hvp-MB")
			b.ReportMetric(float64(hv16)/1e6, "hvp16-MB")
			b.ReportMetric(float64(hv)/float64(g), "hvp/grad")
			b.ReportMetric(float64(hv16)/float64(g), "hvp16/grad")
		})
	}
}
