package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/internal/cputime"
	"github.com/hessian-spectra/runner/nn"
)

// BenchOptions configures Bench. Zero values take the defaults in brackets.
type BenchOptions struct {
	// Models to measure [all four].
	Models []string
	// Batch is LeNet's training batch [256, the seed's].
	Batch int
	// SmallBatch is the batch of the VGG and ResNet measurements [16].
	SmallBatch int
	// HVPBatch is the batch of the Hessian-vector products [100: the
	// seed's per-class subset of 10 classes].
	HVPBatch int
	// EpochSize is the number of training images of the epoch estimate
	// [60000, FashionMNIST's training split].
	EpochSize int
	// Warmup calls precede the Repeats timed calls of each measurement [1, 5].
	Warmup, Repeats int
	// DType of weights and data [float32].
	DType dtypes.DType
	// Progress, if not nil, receives one line per measurement as it ends.
	Progress func(Measurement)
}

// BenchResult is what Bench measured, ready to be marshalled as JSON.
type BenchResult struct {
	Backend      string        `json:"backend"`
	GoVersion    string        `json:"go_version"`
	GOMAXPROCS   int           `json:"gomaxprocs"`
	DType        string        `json:"dtype"`
	Measurements []Measurement `json:"measurements"`
}

// Measurement is the timing of one graph executed repeatedly on random data.
type Measurement struct {
	// Model is the architecture; Name says what was run: "forward" (eval-mode
	// loss), "sgd_step" (train-mode forward, backward and an SGD update of
	// every parameter, one graph), "hvp_full" (Hessian of all parameters
	// times a vector, eval mode), "hvp_<param>" (one tensor's Hessian block),
	// or "epoch" (an estimate: ⌊EpochSize/Batch⌋ full steps and one partial).
	Model string `json:"model"`
	Name  string `json:"name"`
	Batch int    `json:"batch"`
	// Calls is the number of timed calls; MeanMs, MedianMs and MinMs their
	// mean, median and fastest wall time in milliseconds; FirstMs the first
	// call (graph building and compilation included).
	Calls    int     `json:"calls"`
	MeanMs   float64 `json:"mean_ms"`
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	FirstMs  float64 `json:"first_ms"`
	// CPUMs is the mean process CPU time (user + system, all threads) per
	// timed call; on a machine shared with other work it varies less than the
	// wall time. 0 where not measured.
	CPUMs float64 `json:"cpu_ms"`
	// ImagesPerSec is Batch / mean time.
	ImagesPerSec float64 `json:"images_per_s"`
}

func (o *BenchOptions) defaults() {
	if len(o.Models) == 0 {
		o.Models = Names()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Batch, 256)
	def(&o.SmallBatch, 16)
	def(&o.HVPBatch, 100)
	def(&o.EpochSize, 60000)
	def(&o.Warmup, 1)
	def(&o.Repeats, 5)
	if o.DType == dtypes.InvalidDType {
		o.DType = dtypes.Float32
	}
}

// Bench times LeNet's forward pass, SGD step, per-epoch cost and
// Hessian-vector products, and the SGD step of VGG11, VGG11_bn and ResNet18,
// on backend, with random weights and data (their values do not change the
// work done). It recovers GoMLX panics into errors.
func Bench(backend backends.Backend, opts BenchOptions) (res *BenchResult, err error) {
	opts.defaults()
	res = &BenchResult{
		Backend:    backend.String(),
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		DType:      opts.DType.String(),
	}
	add := func(m Measurement) {
		res.Measurements = append(res.Measurements, m)
		if opts.Progress != nil {
			opts.Progress(m)
		}
	}
	for _, name := range opts.Models {
		m, err := New(name, benchChannels(name), 10)
		if err != nil {
			return nil, err
		}
		w, err := m.Init(1, opts.DType)
		if err != nil {
			return nil, err
		}
		b := &bencher{backend: backend, m: m, w: w, opts: opts}
		if name != LeNet {
			meas, err := b.sgdStep(opts.SmallBatch)
			if err != nil {
				return nil, err
			}
			add(meas)
			continue
		}
		fwd, err := b.forward(opts.Batch)
		if err != nil {
			return nil, err
		}
		add(fwd)
		step, err := b.sgdStep(opts.Batch)
		if err != nil {
			return nil, err
		}
		add(step)
		full, rest := opts.EpochSize/opts.Batch, opts.EpochSize%opts.Batch
		epochMs := float64(full) * step.MeanMs
		if rest > 0 {
			tail, err := b.sgdStep(rest)
			if err != nil {
				return nil, err
			}
			add(tail)
			epochMs += tail.MeanMs
		}
		add(Measurement{Model: name, Name: "epoch", Batch: opts.EpochSize, Calls: 1, MeanMs: epochMs, MedianMs: epochMs, MinMs: epochMs,
			ImagesPerSec: float64(opts.EpochSize) / epochMs * 1e3})
		for _, target := range append([]string{""}, m.Layers()...) {
			h, err := b.hvp(opts.HVPBatch, target)
			if err != nil {
				return nil, err
			}
			add(h)
		}
	}
	return res, nil
}

// benchChannels is the input channel count the seed uses the model with most.
func benchChannels(name string) int {
	if name == LeNet {
		return 1 // MNIST, FashionMNIST
	}
	return 3
}

// bencher builds and times the graphs of one model.
type bencher struct {
	backend backends.Backend
	m       *Model
	w       *Weights
	opts    BenchOptions
}

// batch returns a random normalised input batch and labels.
func (b *bencher) batch(n int) (*tensors.Tensor, *tensors.Tensor) {
	rng := rand.New(rand.NewPCG(uint64(n), 5))
	x := make([]float64, n*b.m.inChannels*InputSize*InputSize)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(rng.IntN(b.m.classes))
	}
	return newTensor(x, b.opts.DType, []int{n, b.m.inChannels, InputSize, InputSize}), tensors.FromFlatDataAndDimensions(y, n)
}

func (b *bencher) args(extra ...*tensors.Tensor) []any {
	var args []any
	for _, t := range slices.Concat(b.w.Params, b.w.Buffers, extra) {
		args = append(args, t)
	}
	return args
}

// time runs exec on args Warmup+Repeats times and returns the timings.
func (b *bencher) time(exec *Exec, name string, batch int, args []any) (m Measurement, err error) {
	m = Measurement{Model: b.m.name, Name: name, Batch: batch, MinMs: math.Inf(1)}
	var total float64
	var cpu time.Duration
	var times []float64
	for i := range b.opts.Warmup + b.opts.Repeats {
		cpu0 := cputime.Used()
		start := time.Now()
		out, err := exec.Exec(args...)
		if err != nil {
			return m, fmt.Errorf("models: bench %s %s: %w", b.m.name, name, err)
		}
		for _, t := range out {
			_ = t.FinalizeAll()
		}
		ms := float64(time.Since(start).Microseconds()) / 1e3
		if i == 0 {
			m.FirstMs = ms
		}
		if i >= b.opts.Warmup {
			cpu += cputime.Used() - cpu0
			total += ms
			times = append(times, ms)
			m.MinMs = math.Min(m.MinMs, ms)
			m.Calls++
		}
	}
	m.MeanMs = total / float64(m.Calls)
	m.MedianMs = Median(times)
	m.CPUMs = cpu.Seconds() * 1e3 / float64(m.Calls)
	m.ImagesPerSec = float64(batch) / m.MeanMs * 1e3
	return m, nil
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or NaN for none; xs is sorted in place.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func (b *bencher) split(in []*Node) (params, bufs, rest []*Node) {
	np, nb := len(b.m.params), len(b.m.buffers)
	return in[:np], in[np : np+nb], in[np+nb:]
}

func (b *bencher) forward(n int) (Measurement, error) {
	exec, err := NewExec(b.backend, func(in []*Node) *Node {
		params, bufs, rest := b.split(in)
		logits, _ := b.m.Forward(params, bufs, rest[0], false)
		return nn.CrossEntropy(logits, rest[1])
	})
	if err != nil {
		return Measurement{}, err
	}
	x, y := b.batch(n)
	return b.time(exec, "forward", n, b.args(x, y))
}

// sgdStep times one training step: train-mode forward, gradients of every
// parameter, p ← p − lr·g, new running statistics.
func (b *bencher) sgdStep(n int) (Measurement, error) {
	exec, err := NewExec(b.backend, func(in []*Node) []*Node {
		params, bufs, rest := b.split(in)
		logits, newBufs := b.m.Forward(params, bufs, rest[0], true)
		loss := nn.CrossEntropy(logits, rest[1])
		grads := Gradient(loss, params...)
		out := []*Node{loss}
		for i, p := range params {
			out = append(out, Sub(p, Mul(rest[2], grads[i])))
		}
		return append(out, newBufs...)
	})
	if err != nil {
		return Measurement{}, err
	}
	x, y := b.batch(n)
	lr := newTensor([]float64{0.01}, b.opts.DType, nil)
	return b.time(exec, "sgd_step", n, b.args(x, y, lr))
}

// hvp times a Hessian-vector product in eval mode: of all parameters when
// target is "", else of the named tensor's block.
func (b *bencher) hvp(n int, target string) (Measurement, error) {
	idx := []int{}
	if target == "" {
		for i := range b.m.params {
			idx = append(idx, i)
		}
	} else {
		idx = append(idx, b.m.ParamIndex(target))
	}
	exec, err := NewExec(b.backend, func(in []*Node) []*Node {
		params, bufs, rest := b.split(in)
		logits, _ := b.m.Forward(params, bufs, rest[0], false)
		loss := nn.CrossEntropy(logits, rest[1])
		wrt := make([]*Node, len(idx))
		for i, j := range idx {
			wrt[i] = params[j]
		}
		g := Gradient(loss, wrt...)
		var gv *Node
		for i := range g {
			t := ReduceAllSum(Mul(g[i], rest[2+i]))
			if gv == nil {
				gv = t
			} else {
				gv = Add(gv, t)
			}
		}
		return Gradient(gv, wrt...)
	})
	if err != nil {
		return Measurement{}, err
	}
	x, y := b.batch(n)
	extra := []*tensors.Tensor{x, y}
	rng := rand.New(rand.NewPCG(3, 3))
	for _, j := range idx {
		e := b.m.state[b.m.params[j]]
		v := make([]float64, e.Size())
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		extra = append(extra, newTensor(v, b.opts.DType, e.Shape))
	}
	name := "hvp_full"
	if target != "" {
		name = "hvp_" + target
	}
	return b.time(exec, name, n, b.args(extra...))
}
