package models

import (
	"encoding/json"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/internal/cputime"
	"github.com/hessian-spectra/runner/nn"
)

// Benchmarks of the graphs Bench times, for `go test -bench` and pprof:
//
//	go test ./models -run '^$' -bench LeNetSGDStep -benchtime 10x -count 3
//	go test ./models -run '^$' -bench LeNetSGDStep -benchtime 10x -cpuprofile cpu.prof

func newBencher(b *testing.B, name string, dtype dtypes.DType) *bencher {
	m := mustNew(b, name, benchChannels(name), 10)
	w, err := m.Init(1, dtype)
	if err != nil {
		b.Fatal(err)
	}
	opts := BenchOptions{DType: dtype}
	opts.defaults()
	return &bencher{backend: backendT(b), m: m, w: w, opts: opts}
}

// runBench times exec on args per b.Loop iteration after one warm-up call
// (which builds and compiles the graph), reporting images/s.
func runBench(b *testing.B, exec *Exec, batch int, args []any) {
	run := func() {
		out, err := exec.Exec(args...)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range out {
			_ = t.FinalizeAll()
		}
	}
	run()
	cpu0 := cputime.Used()
	for b.Loop() {
		run()
	}
	b.ReportMetric((cputime.Used()-cpu0).Seconds()*1e3/float64(b.N), "cpu-ms/call")
	perCall := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(batch)/perCall, "images/s")
	b.ReportMetric(perCall*1e3, "ms/call")
}

func benchStep(b *testing.B, name string, batch int, dtype dtypes.DType) {
	bb := newBencher(b, name, dtype)
	exec, err := NewExec(bb.backend, func(in []*Node) []*Node {
		params, bufs, rest := bb.split(in)
		logits, newBufs := bb.m.Forward(params, bufs, rest[0], true)
		grads := Gradient(nn.CrossEntropy(logits, rest[1]), params...)
		out := []*Node{}
		for i, p := range params {
			out = append(out, Sub(p, Mul(rest[2], grads[i])))
		}
		return append(out, newBufs...)
	})
	if err != nil {
		b.Fatal(err)
	}
	x, y := bb.batch(batch)
	lr := newTensor([]float64{0.01}, dtype, nil)
	runBench(b, exec, batch, bb.args(x, y, lr))
	if name == LeNet && batch == 256 {
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*60000/256, "s/epoch")
	}
}

// BenchmarkLeNetSGDStep: forward, backward and SGD update at the seed's batch 256, 1×32×32.
func BenchmarkLeNetSGDStep(b *testing.B) { benchStep(b, LeNet, 256, dtypes.Float32) }

// BenchmarkLeNetSGDStep64 is the same step in float64.
func BenchmarkLeNetSGDStep64(b *testing.B) { benchStep(b, LeNet, 256, dtypes.Float64) }

func BenchmarkVGG11BNSGDStep(b *testing.B)  { benchStep(b, VGG11BN, 16, dtypes.Float32) }
func BenchmarkResNet18SGDStep(b *testing.B) { benchStep(b, ResNet18, 16, dtypes.Float32) }

func BenchmarkLeNetForward(b *testing.B) {
	bb := newBencher(b, LeNet, dtypes.Float32)
	exec, err := NewExec(bb.backend, func(in []*Node) *Node {
		params, bufs, rest := bb.split(in)
		logits, _ := bb.m.Forward(params, bufs, rest[0], false)
		return nn.CrossEntropy(logits, rest[1])
	})
	if err != nil {
		b.Fatal(err)
	}
	x, y := bb.batch(256)
	runBench(b, exec, 256, bb.args(x, y))
}

func benchHVP(b *testing.B, target string, dtype dtypes.DType) {
	bb := newBencher(b, LeNet, dtype)
	m, err := bb.hvp(100, target)
	if err != nil {
		b.Fatal(err)
	}
	_ = m
	b.ReportMetric(m.MeanMs, "ms/call")
}

// BenchmarkLeNetHVPFull is the all-parameter HVP on a 100-image batch
// (5 timed calls inside one benchmark op; use -benchtime 1x).
func BenchmarkLeNetHVPFull(b *testing.B) {
	for b.Loop() {
		benchHVP(b, "", dtypes.Float32)
	}
}

// BenchmarkLeNetHVPConv1 is the conv1.weight block HVP on 100 images.
func BenchmarkLeNetHVPConv1(b *testing.B) {
	for b.Loop() {
		benchHVP(b, "conv1.weight", dtypes.Float32)
	}
}

// TestBench runs Bench briefly and checks its JSON.
func TestBench(t *testing.T) {
	res, err := Bench(backendT(t), BenchOptions{Models: []string{LeNet}, Batch: 8, HVPBatch: 4, EpochSize: 20, Warmup: 1, Repeats: 1})
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back BenchResult
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range back.Measurements {
		names = append(names, m.Name)
		if !(m.MeanMs > 0) || !(m.ImagesPerSec > 0) || m.Model != LeNet {
			t.Errorf("measurement %+v", m)
		}
	}
	want := []string{"forward", "sgd_step", "sgd_step", "epoch", "hvp_full", "hvp_conv1.weight", "hvp_conv2.weight", "hvp_fc1.weight", "hvp_fc2.weight", "hvp_fc3.weight"}
	if len(names) != len(want) {
		t.Fatalf("measurements %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("measurement %d is %s, want %s", i, names[i], want[i])
		}
	}
	// The epoch estimate is 2 steps of 8 and one of 4.
	steps := back.Measurements[1].MeanMs*2 + back.Measurements[2].MeanMs
	if e := back.Measurements[3].MeanMs; !(e >= steps*0.999) || !(e <= steps*1.001) {
		t.Errorf("epoch estimate %.3f ms, want 2×%.3f + %.3f", e, back.Measurements[1].MeanMs, back.Measurements[2].MeanMs)
	}
	_ = tensors.FromShape
}
