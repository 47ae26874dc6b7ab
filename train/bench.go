package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/models"
)

// BenchOptions configures Bench. Zero values take the defaults in brackets.
type BenchOptions struct {
	// Model, InChannels and Classes choose the network [LeNet, 1, 10].
	Model               string
	InChannels, Classes int
	// Batch is the training batch [256].
	Batch int
	// Warmup steps (the first compiles the graph) precede Steps timed ones [1, 5].
	Warmup, Steps int
	// DType of weights and data [float32].
	DType dtypes.DType
	// Optimizer [SGD(0.01, 0.9), the seed's eigenspectrum runs].
	Optimizer *Optimizer
	// HTRProbes > 0 also times penalised steps with that many probes over
	// all parameters (the seed's 10).
	HTRProbes int
	// Data, if set, also times one training epoch over Data.Train (at Batch)
	// and the evaluation of both splits that Run does after each epoch.
	Data *datasets.Dataset
	// Progress, if set, receives a line per measurement as it ends.
	Progress func(string)
}

// BenchResult is what Bench measured, ready to be marshalled as JSON.
type BenchResult struct {
	Backend    string `json:"backend"`
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Model      string `json:"model"`
	DType      string `json:"dtype"`
	Optimizer  string `json:"optimizer"`
	Batch      int    `json:"batch"`
	// Step is the training step: forward, backward and optimizer update.
	Step BenchTiming `json:"step"`
	// HTRStep is the penalised step (with HTRProbes probes), when timed.
	HTRStep   *BenchTiming `json:"htr_step,omitempty"`
	HTRProbes int          `json:"htr_probes,omitempty"`
	// Epoch is one training epoch over the data's training split, when timed.
	Epoch *EpochTiming `json:"epoch,omitempty"`
}

// BenchTiming is the timing of one kind of step.
type BenchTiming struct {
	// Steps is the number of timed steps; MeanMs, MedianMs and MinMs their
	// mean, median and fastest wall time; FirstMs the first step,
	// compilation included.
	Steps    int     `json:"steps"`
	MeanMs   float64 `json:"mean_ms"`
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	FirstMs  float64 `json:"first_ms"`
	// ImagesPerSec is Batch / MeanMs.
	ImagesPerSec float64 `json:"images_per_s"`
}

// EpochTiming is the timing of one real training epoch.
type EpochTiming struct {
	Images       int     `json:"images"`
	Steps        int     `json:"steps"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_s"`
	// EvalSeconds is the evaluation of the training and test splits after
	// the epoch (eval mode, batch 500), which Run adds to every epoch.
	EvalSeconds float64 `json:"eval_seconds"`
	EvalImages  int     `json:"eval_images"`
}

func (o *BenchOptions) defaults() {
	if o.Model == "" {
		o.Model = models.LeNet
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.InChannels, 1)
	def(&o.Classes, 10)
	def(&o.Batch, 256)
	def(&o.Warmup, 1)
	def(&o.Steps, 5)
	if o.DType == dtypes.InvalidDType {
		o.DType = dtypes.Float32
	}
	if o.Optimizer == nil {
		sgd := SGD(0.01, 0.9)
		o.Optimizer = &sgd
	}
}

// Bench times the training step of a model (random weights and data: their
// values do not change the work), optionally the HTR step and one real
// epoch, on backend. It recovers GoMLX panics into errors.
func Bench(ctx context.Context, backend backends.Backend, opts BenchOptions) (res *BenchResult, err error) {
	defer recoverInto(&err, "train: bench")
	opts.defaults()
	m, err := models.New(opts.Model, opts.InChannels, opts.Classes)
	if err != nil {
		return nil, err
	}
	res = &BenchResult{
		Backend: backend.String(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Model: m.Name(), DType: strings.ToLower(opts.DType.String()), Optimizer: opts.Optimizer.Name, Batch: opts.Batch,
	}
	report := func(what string, t BenchTiming) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf("%s %s batch %d: %.1f ms/step (min %.1f, first %.1f), %.0f images/s",
				m.Name(), what, opts.Batch, t.MeanMs, t.MinMs, t.FirstMs, t.ImagesPerSec))
		}
	}
	x, y := benchBatch(m, opts.Batch, opts.DType)
	defer func() { _, _ = x.FinalizeAll(), y.FinalizeAll() }()
	cfg := Config{Model: m, DType: opts.DType, Optimizer: *opts.Optimizer, BatchSize: opts.Batch, Epochs: 1, Seed: 1}
	if res.Step, err = timeSteps(ctx, backend, cfg, x, y, opts); err != nil {
		return nil, err
	}
	report("step", res.Step)
	if opts.HTRProbes > 0 {
		hc := cfg
		hc.HTR = HTR{Gamma: 1e-3, Freq: 1, Probes: opts.HTRProbes, Distribution: Rademacher}
		t, err := timeSteps(ctx, backend, hc, x, y, opts)
		if err != nil {
			return nil, err
		}
		res.HTRStep, res.HTRProbes = &t, opts.HTRProbes
		report(fmt.Sprintf("HTR step (%d probes)", opts.HTRProbes), t)
	}
	if opts.Data != nil {
		tr, err := New(backend, cfg, nil)
		if err != nil {
			return nil, err
		}
		st, err := tr.TrainEpoch(ctx, opts.Data.Train, 0, nil)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		for _, s := range []*datasets.Split{opts.Data.Train, opts.Data.Test} {
			if _, err := tr.Evaluate(ctx, s); err != nil {
				return nil, err
			}
		}
		res.Epoch = &EpochTiming{Images: opts.Data.Train.N, Steps: st.Steps, Seconds: st.Seconds,
			ImagesPerSec: float64(opts.Data.Train.N) / st.Seconds,
			EvalSeconds:  time.Since(start).Seconds(), EvalImages: opts.Data.Train.N + opts.Data.Test.N}
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf("%s epoch of %d images: %.1f s (%.0f images/s); evaluation of %d images %.1f s",
				m.Name(), res.Epoch.Images, res.Epoch.Seconds, res.Epoch.ImagesPerSec, res.Epoch.EvalImages, res.Epoch.EvalSeconds))
		}
	}
	return res, nil
}

// timeSteps times Warmup+Steps training steps of a fresh trainer for cfg on
// the batch (x, y).
func timeSteps(ctx context.Context, backend backends.Backend, cfg Config, x, y *tensors.Tensor, opts BenchOptions) (BenchTiming, error) {
	tr, err := New(backend, cfg, nil)
	if err != nil {
		return BenchTiming{}, err
	}
	t := BenchTiming{MinMs: math.Inf(1)}
	var total float64
	var times []float64
	for i := range opts.Warmup + opts.Steps {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		start := time.Now()
		if _, err := tr.Step(x, y, 0, i); err != nil {
			return t, err
		}
		ms := float64(time.Since(start).Microseconds()) / 1e3
		if i == 0 {
			t.FirstMs = ms
		}
		if i >= opts.Warmup {
			total += ms
			times = append(times, ms)
			t.MinMs = math.Min(t.MinMs, ms)
			t.Steps++
		}
	}
	t.MeanMs = total / float64(t.Steps)
	t.MedianMs = models.Median(times)
	t.ImagesPerSec = float64(opts.Batch) / t.MeanMs * 1e3
	return t, nil
}

// benchBatch returns a seeded random batch of normalised-looking images and
// labels for m.
func benchBatch(m *models.Model, n int, dtype dtypes.DType) (x, y *tensors.Tensor) {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	v := make([]float64, n*m.InChannels()*models.InputSize*models.InputSize)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(rng.IntN(m.Classes()))
	}
	x, err := models.InputTensor(v, dtype, n, m.InChannels(), models.InputSize, models.InputSize)
	if err != nil {
		panic(err) // unreachable: the count matches the shape
	}
	return x, tensors.FromFlatDataAndDimensions(labels, n)
}
