package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/models"
)

// Config describes one training run.
type Config struct {
	// Model is the architecture to train.
	Model *models.Model
	// DType of weights, optimizer state and data: Float32 (default) or Float64.
	DType dtypes.DType
	// Optimizer and its initial learning rate.
	Optimizer Optimizer
	// Schedule scales the learning rate per epoch.
	Schedule MultiStepLR
	// HTR is the Hessian-trace penalty (zero value: off).
	HTR HTR
	// BatchSize is the training batch [256]; the last batch of an epoch
	// keeps the remainder, as the seed's loaders do.
	BatchSize int
	// EvalBatchSize is the batch of the per-epoch evaluations [500]; it
	// changes only the order of float sums, not what is computed.
	EvalBatchSize int
	// Epochs is the number of training epochs.
	Epochs int
	// Seed drives the initialisation, the shuffling and the HTR probes.
	Seed uint32
	// SnapshotEvery > 0 checkpoints the initialisation (epoch 0) and every
	// SnapshotEvery epochs; the last epoch is always checkpointed (by Run).
	SnapshotEvery int
	// Legacy reproduces the seed's train/eval-mode bug (SEED-SPEC §8.1):
	// batch norm trains with batch statistics in the first epoch only, and
	// from the second epoch on uses its running statistics, frozen.
	Legacy bool
}

// defaults fills zero values with the defaults in brackets.
func (c *Config) defaults() {
	if c.DType == dtypes.InvalidDType {
		c.DType = dtypes.Float32
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.EvalBatchSize == 0 {
		c.EvalBatchSize = 500
	}
	if c.Schedule.Gamma == 0 && len(c.Schedule.Milestones) == 0 {
		c.Schedule.Gamma = 0.1
	}
	if c.HTR.Enabled() && c.HTR.Distribution == "" {
		c.HTR.Distribution = Rademacher
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Model == nil {
		return errors.New("train: no model")
	}
	if c.DType != dtypes.Float32 && c.DType != dtypes.Float64 {
		return fmt.Errorf("train: dtype %s: want float32 or float64", c.DType)
	}
	if c.BatchSize < 1 || c.EvalBatchSize < 1 {
		return fmt.Errorf("train: batch sizes %d and %d: want ≥ 1", c.BatchSize, c.EvalBatchSize)
	}
	if c.Epochs < 0 || c.SnapshotEvery < 0 {
		return fmt.Errorf("train: epochs %d, snapshot_every %d: want ≥ 0", c.Epochs, c.SnapshotEvery)
	}
	if err := c.Optimizer.Validate(); err != nil {
		return err
	}
	if err := c.Schedule.Validate(); err != nil {
		return err
	}
	return c.HTR.Validate()
}

// Trainer holds one run's state — weights, batch-norm statistics, optimizer
// state, the number of optimizer steps taken — and its compiled steps. It is
// not safe for concurrent use.
type Trainer struct {
	cfg     Config
	backend backends.Backend
	w       *models.Weights
	// state is the optimizer state, parameter-major (see Optimizer.update).
	state []*tensors.Tensor
	// steps counts the optimizer steps taken.
	steps  int64
	layout stepLayout
	// sel are the positions of the HTR-penalised parameters; shapes theirs.
	sel    []int
	shapes [][]int
	execs  map[stepKind]*Exec
	eval   *models.Evaluator
	// broken is set when a step failed after donating the weights' buffers:
	// the trainer has no valid weights any more.
	broken error
}

// New prepares a run of cfg on backend from init (copied; nil: the seed's
// initialisation of cfg.Model drawn from cfg.Seed). Graphs are compiled on
// first use.
func New(backend backends.Backend, cfg Config, init *models.Weights) (*Trainer, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.Model
	var w *models.Weights
	var err error
	if init == nil {
		w, err = m.Init(uint64(cfg.Seed), cfg.DType)
	} else {
		if init.Model != m {
			return nil, fmt.Errorf("train: initial weights are for %s, the run trains %s", init.Model.Name(), m.Name())
		}
		w, err = init.Convert(cfg.DType)
	}
	if err != nil {
		return nil, fmt.Errorf("train: %s: initial weights: %w", m.Name(), err)
	}
	t := &Trainer{cfg: cfg, backend: backend, w: w, execs: map[stepKind]*Exec{}}
	slots := cfg.Optimizer.Slots()
	for _, e := range m.Params() {
		for range slots {
			t.state = append(t.state, tensors.FromShape(shapes.Make(cfg.DType, e.Shape...)))
		}
	}
	t.layout = stepLayout{np: len(m.Params()), nb: len(m.Buffers()), ns: len(t.state)}
	if cfg.HTR.Enabled() {
		if t.sel, err = cfg.HTR.Select(m); err != nil {
			return nil, err
		}
		t.shapes = shapesOf(m, t.sel)
	}
	if t.eval, err = models.NewEvaluator(backend, m); err != nil {
		return nil, err
	}
	return t, nil
}

// Config returns the run's configuration, defaults filled in.
func (t *Trainer) Config() Config { return t.cfg }

// Weights returns the current weights. They stay owned by the trainer: the
// next step replaces (and releases) their tensors, so copy them (Clone) to
// keep them.
func (t *Trainer) Weights() *models.Weights { return t.w }

// Steps returns the number of optimizer steps taken.
func (t *Trainer) Steps() int64 { return t.steps }

// TrainMode reports whether batch norm trains with batch statistics in epoch
// (0-based): always, except under Legacy after the first epoch.
func (t *Trainer) TrainMode(epoch int) bool { return !t.cfg.Legacy || epoch == 0 }

// StepResult is what one training step reports.
type StepResult struct {
	// Loss is the mini-batch loss L_B before the update (without penalty).
	Loss float64
	// Penalised tells whether HTR applied; Trace is then the Hutchinson
	// estimate of the Hessian trace (the penalty is HTR.Gamma·Trace).
	Penalised bool
	Trace     float64
}

// DivergedError is the error of a step whose loss or trace estimate is NaN
// or infinite.
type DivergedError struct {
	// Epoch and Step are 1-based: the epoch's number as metrics.csv counts
	// it, and the step's number within the epoch.
	Epoch, Step int
	// What is "loss" or "trace estimate"; Value is its value.
	What  string
	Value float64
	// LR is the learning rate of the epoch.
	LR float64
}

// Error says where training diverged: "epoch E step S: loss is NaN (lr …)".
func (e *DivergedError) Error() string {
	return fmt.Sprintf("epoch %d step %d: %s is %v (lr %g)", e.Epoch, e.Step, e.What, e.Value, e.LR)
}

// Step takes one optimizer step on the batch x [N, C, 32, 32] (in the run's
// dtype) with int32 labels y [N], as step (0-based) of epoch (0-based): at
// that epoch's learning rate, in its batch-norm mode, penalised when HTR is
// active there, with the probes of (seed, epoch, step). A NaN or infinite
// loss or trace estimate is a *DivergedError; the weights are then those the
// failed step produced.
func (t *Trainer) Step(x, y *tensors.Tensor, epoch, step int) (res StepResult, err error) {
	defer recoverInto(&err, "train: step")
	lr := t.cfg.Schedule.LR(t.cfg.Optimizer.LR, epoch)
	kind := stepKind{train: t.TrainMode(epoch), penalised: t.cfg.HTR.Active(epoch, step)}
	var probes []*tensors.Tensor
	if kind.penalised {
		probes = drawProbes(t.cfg.HTR, uint64(t.cfg.Seed), epoch, step, t.shapes, t.cfg.DType)
	}
	res, err = t.run(kind, x, y, lr, probes)
	for _, p := range probes {
		_ = p.FinalizeAll()
	}
	if err != nil {
		return res, fmt.Errorf("train: epoch %d step %d: %w", epoch+1, step+1, err)
	}
	diverged := func(what string, v float64) error {
		return &DivergedError{Epoch: epoch + 1, Step: step + 1, What: what, Value: v, LR: lr}
	}
	if !finite(res.Loss) {
		return res, diverged("loss", res.Loss)
	}
	if res.Penalised && !finite(res.Trace) {
		return res, diverged("trace estimate", res.Trace)
	}
	return res, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// exec returns the compiled step of kind, creating it on first use.
func (t *Trainer) exec(kind stepKind) (*Exec, error) {
	if e, ok := t.execs[kind]; ok {
		return e, nil
	}
	fn := stepGraph(t.cfg.Model, t.cfg.Optimizer, t.layout, kind, t.sel, t.cfg.HTR.Gamma)
	e, err := NewExec(t.backend, fn)
	if err != nil {
		return nil, err
	}
	name := "train step"
	if kind.penalised {
		name = "train step with HTR"
	}
	if !kind.train {
		name += " (eval mode)"
	}
	t.execs[kind] = e.WithName(name + " " + t.cfg.Model.Name())
	return t.execs[kind], nil
}

// run executes one compiled step with learning rate lr and probes (nil for a
// plain step), and replaces the weights and state with its results.
func (t *Trainer) run(kind stepKind, x, y *tensors.Tensor, lr float64, probes []*tensors.Tensor) (StepResult, error) {
	e, err := t.exec(kind)
	if err != nil {
		return StepResult{}, err
	}
	if t.broken != nil {
		return StepResult{}, t.broken
	}
	l := t.layout
	args := make([]any, 0, l.np+l.nb+l.ns+2+numScalars+len(probes))
	// Parameters, optimizer state and (in train mode) running statistics
	// are replaced by the step's results, so their buffers are donated: the
	// backend may update them in place instead of holding two copies.
	for _, ts := range []struct {
		ts     []*tensors.Tensor
		donate bool
	}{{t.w.Params, true}, {t.w.Buffers, kind.train}, {t.state, true}} {
		for _, v := range ts.ts {
			if !ts.donate {
				args = append(args, v)
				continue
			}
			d, err := DonateTensorBuffer(v, t.backend, 0)
			if err != nil {
				t.broken = fmt.Errorf("train: an earlier step failed while donating its inputs: %w", err)
				return StepResult{}, err
			}
			args = append(args, d)
		}
	}
	args = append(args, x, y)
	for _, s := range t.cfg.Optimizer.scalars(lr, t.steps) {
		args = append(args, scalar(s, t.cfg.DType))
	}
	for _, p := range probes {
		args = append(args, p)
	}
	out, err := e.Exec(args...)
	if err != nil {
		t.broken = fmt.Errorf("train: an earlier step failed, taking the weights it was given: %w", err)
		return StepResult{}, err
	}
	var res StepResult
	if res.Loss, err = scalarValue(out[0]); err != nil {
		return res, err
	}
	out = out[1:]
	if kind.penalised {
		res.Penalised = true
		if res.Trace, err = scalarValue(out[0]); err != nil {
			return res, err
		}
		out = out[1:]
	}
	replace(t.w.Params, out[:l.np])
	out = out[l.np:]
	if kind.train {
		old := slices.Clone(t.w.Buffers)
		if err := t.w.UpdateBuffers(out[:l.nb]); err != nil {
			return res, err
		}
		finalize(old)
		out = out[l.nb:]
	}
	replace(t.state, out)
	t.steps++
	return res, nil
}

// replace finalizes the tensors of dst and puts src in their place.
func replace(dst, src []*tensors.Tensor) {
	finalize(dst)
	copy(dst, src)
}

func finalize(ts []*tensors.Tensor) {
	for _, v := range ts {
		_ = v.FinalizeAll()
	}
}

// scalar returns a scalar tensor of dtype holding v.
func scalar(v float64, dtype dtypes.DType) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromScalar(v)
	}
	return tensors.FromScalar(float32(v))
}

// scalarValue reads a float scalar tensor and releases it.
func scalarValue(t *tensors.Tensor) (float64, error) {
	defer func() { _ = t.FinalizeAll() }()
	switch t.DType() {
	case dtypes.Float32:
		v, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return 0, err
		}
		return float64(v[0]), nil
	case dtypes.Float64:
		v, err := tensors.CopyFlatData[float64](t)
		if err != nil {
			return 0, err
		}
		return v[0], nil
	}
	return 0, fmt.Errorf("train: scalar of dtype %s", t.DType())
}

// Progress receives progress of long loops; stage.Progress satisfies it.
type Progress interface {
	// Start begins a unit of total steps named by what.
	Start(what string, total int)
	// Advance records n more steps done.
	Advance(n int)
	// Finish ends the unit.
	Finish()
}

// EpochStats summarises one training epoch.
type EpochStats struct {
	// Epoch is the 0-based epoch index; LR its learning rate.
	Epoch int
	LR    float64
	// Steps is the number of mini-batches.
	Steps int
	// MeanLoss is the mean of the mini-batch losses, weighted by batch
	// size, as the weights changed during the epoch.
	MeanLoss float64
	// Penalised counts the HTR steps; MeanTrace is the mean of their trace
	// estimates (NaN when there were none).
	Penalised int
	MeanTrace float64
	// Seconds is the wall time.
	Seconds float64
}

// TrainEpoch runs epoch (0-based) over split in the order
// datasets.ShuffleOrder(n, seed, epoch), reporting one progress step per
// batch (p may be nil). It returns ctx.Err() promptly when ctx is cancelled
// (checked between steps).
func (t *Trainer) TrainEpoch(ctx context.Context, split *datasets.Split, epoch int, p Progress) (st EpochStats, err error) {
	defer recoverInto(&err, "train: epoch")
	if err := t.checkSplit(split); err != nil {
		return st, err
	}
	start := time.Now()
	order := datasets.ShuffleOrder(split.N, t.cfg.Seed, epoch)
	bs := t.cfg.BatchSize
	st = EpochStats{Epoch: epoch, LR: t.cfg.Schedule.LR(t.cfg.Optimizer.LR, epoch), Steps: (split.N + bs - 1) / bs, MeanTrace: math.NaN()}
	if p != nil {
		p.Start(fmt.Sprintf("epoch %d/%d", epoch+1, t.cfg.Epochs), st.Steps)
		defer p.Finish()
	}
	var lossSum, traceSum float64
	for s := range st.Steps {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		idx := order[s*bs : min((s+1)*bs, split.N)]
		x, y := batchTensors(split, idx, t.cfg.DType)
		res, err := t.Step(x, y, epoch, s)
		_, _ = x.FinalizeAll(), y.FinalizeAll()
		if err != nil {
			return st, err
		}
		lossSum += res.Loss * float64(len(idx))
		if res.Penalised {
			st.Penalised++
			traceSum += res.Trace
		}
		if p != nil {
			p.Advance(1)
		}
	}
	if split.N > 0 {
		st.MeanLoss = lossSum / float64(split.N)
	}
	if st.Penalised > 0 {
		st.MeanTrace = traceSum / float64(st.Penalised)
	}
	st.Seconds = time.Since(start).Seconds()
	return st, nil
}

// Evaluation is a model's mean loss and accuracy on a split.
type Evaluation struct {
	// Loss is the mean cross-entropy against the labels.
	Loss float64
	// Accuracy is the fraction of images whose top logit is the label.
	Accuracy float64
	// N is the number of images.
	N int
}

// Evaluate computes the current weights' loss and accuracy on all of split
// in eval mode (batch norm with its running statistics), in batches of
// EvalBatchSize in dataset order.
func (t *Trainer) Evaluate(ctx context.Context, split *datasets.Split) (ev Evaluation, err error) {
	return t.evaluate(ctx, split, nil)
}

// evalBatches is the number of evaluation batches of a split of n images.
func (t *Trainer) evalBatches(n int) int { return (n + t.cfg.EvalBatchSize - 1) / t.cfg.EvalBatchSize }

// evaluate is Evaluate, advancing p (when not nil) by one per batch.
func (t *Trainer) evaluate(ctx context.Context, split *datasets.Split, p Progress) (ev Evaluation, err error) {
	defer recoverInto(&err, "train: evaluate")
	if err := t.checkSplit(split); err != nil {
		return ev, err
	}
	ev.N = split.N
	var lossSum float64
	var correct int
	idx := make([]int, 0, t.cfg.EvalBatchSize)
	for lo := 0; lo < split.N; lo += t.cfg.EvalBatchSize {
		if err := ctx.Err(); err != nil {
			return ev, err
		}
		idx = idx[:0]
		for i := lo; i < min(lo+t.cfg.EvalBatchSize, split.N); i++ {
			idx = append(idx, i)
		}
		x, y := batchTensors(split, idx, t.cfg.DType)
		r, err := t.eval.Evaluate(t.w, x, y)
		_, _ = x.FinalizeAll(), y.FinalizeAll()
		if err != nil {
			return ev, fmt.Errorf("train: evaluate images %d–%d: %w", lo, lo+len(idx)-1, err)
		}
		_ = r.Logits.FinalizeAll()
		lossSum += r.Loss * float64(len(idx))
		correct += r.Correct
		if p != nil {
			p.Advance(1)
		}
	}
	if split.N > 0 {
		ev.Loss = lossSum / float64(split.N)
		ev.Accuracy = float64(correct) / float64(split.N)
	}
	return ev, nil
}

// checkSplit verifies that split's images fit the model.
func (t *Trainer) checkSplit(s *datasets.Split) error {
	m := t.cfg.Model
	if s.C != m.InChannels() || s.H != models.InputSize || s.W != models.InputSize {
		return fmt.Errorf("train: images are %d×%d×%d, %s takes %d×%d×%d", s.C, s.H, s.W,
			m.Name(), m.InChannels(), models.InputSize, models.InputSize)
	}
	for i, c := range s.Y {
		if c < 0 || int(c) >= m.Classes() {
			return fmt.Errorf("train: image %d has label %d, the model has %d classes", i, c, m.Classes())
		}
	}
	return nil
}

// batchTensors copies the images of s at idx into an input tensor
// [n, C, H, W] of dtype, and their labels into an int32 tensor [n].
func batchTensors(s *datasets.Split, idx []int, dtype dtypes.DType) (x, y *tensors.Tensor) {
	n, size := len(idx), s.ImageLen()
	x = tensors.FromShape(shapes.Make(dtype, n, s.C, s.H, s.W))
	if dtype == dtypes.Float64 {
		tensors.MustMutableFlatData(x, func(flat []float64) {
			for i, j := range idx {
				for k, v := range s.Image(j) {
					flat[i*size+k] = float64(v)
				}
			}
		})
	} else {
		tensors.MustMutableFlatData(x, func(flat []float32) {
			for i, j := range idx {
				copy(flat[i*size:(i+1)*size], s.Image(j))
			}
		})
	}
	labels := make([]int32, n)
	for i, j := range idx {
		labels[i] = s.Y[j]
	}
	return x, tensors.FromFlatDataAndDimensions(labels, n)
}

// recoverInto turns a panic (GoMLX reports misuse by panicking) into *err.
func recoverInto(err *error, what string) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = fmt.Errorf("%s: %w", what, e)
		} else {
			*err = fmt.Errorf("%s: %v", what, r)
		}
	}
}
