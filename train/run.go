package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// Output says where Run writes and reports. Every field may be left zero.
type Output struct {
	// Dir receives the train artifact's files (docs/ARTIFACTS.md):
	// metrics.csv, rewritten after every epoch, and checkpoints/. Each file
	// appears by rename, complete. "" writes nothing.
	Dir string
	// RunDir receives timings.csv, the wall times, which describe the run
	// rather than its results (stage.Env.RunDir); "" puts it in Dir.
	RunDir string
	// Log receives one line per epoch.
	Log io.Writer
	// Progress receives, per epoch, a unit "epoch E/N" with one step per
	// training batch, then a unit "evaluate E/N" with one step per
	// evaluation batch of both splits.
	Progress Progress
	// Scratch, with Dir, makes the run resumable (stage.Env.Scratch): the
	// files grow there, with the trainer's state after every completed
	// epoch, and move into Dir at the end. A Run that finds such a state
	// continues after its epoch and writes the same files as a run that was
	// never interrupted (timings.csv aside).
	Scratch string
}

// Result is what Run measured.
type Result struct {
	// Metrics has one row per completed epoch.
	Metrics []Metrics
	// Timings has one row per completed epoch.
	Timings []Timing
	// Checkpoints lists the epochs checkpointed (0 = initialisation).
	Checkpoints []int
}

// Run trains t for its configured epochs on data (train split) and evaluates
// after every epoch on both splits, writing the artifact files into out.Dir.
// It stops at the first error: a *DivergedError for a NaN or infinite loss,
// ctx.Err() when ctx is cancelled (checked between steps).
func Run(ctx context.Context, t *Trainer, data *datasets.Dataset, out Output) (res *Result, err error) {
	defer recoverInto(&err, "train: run")
	r := &runState{t: t, data: data, out: out, res: &Result{}, files: out.files()}
	res = r.res // what was done, also when a panic ends the run
	start, err := r.begin()
	if err != nil {
		return r.res, err
	}
	for e := start; e < t.cfg.Epochs; e++ {
		if err := r.epoch(ctx, e); err != nil {
			return r.res, err
		}
	}
	return r.res, r.files.finish(out)
}

// files says where a run's files grow and where they end.
type files struct {
	// work is where metrics.csv and checkpoints/ grow: Dir, or the
	// scratch dir of a resumable run; "" writes nothing.
	work string
	// runDir is where timings.csv ends, timingsDir where it grows (work,
	// when resumable).
	runDir, timingsDir string
	resumable          bool
}

// runDir is where timings.csv ends: RunDir, else Dir.
func (out Output) runDir() string {
	if out.RunDir == "" {
		return out.Dir
	}
	return out.RunDir
}

func (out Output) files() files {
	f := files{work: out.Dir, runDir: out.runDir(), resumable: out.Dir != "" && out.Scratch != ""}
	if f.resumable {
		f.work = out.Scratch
	}
	f.timingsDir = f.runDir
	if f.resumable {
		f.timingsDir = f.work
	}
	return f
}

// finish moves a resumable run's files out of the scratch dir.
func (f files) finish(out Output) error {
	if !f.resumable {
		return nil
	}
	for _, m := range []struct{ name, to string }{{MetricsFile, out.Dir}, {TimingsFile, f.runDir}, {CheckpointsDir, out.Dir}} {
		if err := os.Rename(filepath.Join(f.work, m.name), filepath.Join(m.to, m.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("train: moving %s out of the scratch dir: %w", m.name, err)
		}
	}
	return nil
}

// runState is one Run in progress.
type runState struct {
	t     *Trainer
	data  *datasets.Dataset
	out   Output
	res   *Result
	files files
}

func (r *runState) logf(format string, args ...any) {
	if r.out.Log != nil {
		fmt.Fprintf(r.out.Log, format+"\n", args...)
	}
}

// begin resumes an interrupted run, or checkpoints the initialisation; it
// returns the first epoch to train (0-based).
func (r *runState) begin() (int, error) {
	cfg := r.t.cfg
	start := 0
	if r.files.resumable {
		var err error
		if start, err = resume(r.t, r.files.work, r.res); err != nil {
			return 0, err
		}
		if start > 0 {
			r.logf("resuming after epoch %d/%d, from the state an interrupted run left", start, cfg.Epochs)
		}
	}
	if start == 0 && cfg.SnapshotEvery > 0 {
		if err := r.checkpoint(0); err != nil {
			return 0, err
		}
	}
	r.logf("%s: %d parameters in %d tensors, %s, %d training and %d test images, batch %d, %d epochs, seed %d",
		cfg.Model.Name(), cfg.Model.ParamCount(), len(cfg.Model.Params()), strings.ToLower(cfg.DType.String()), r.data.Train.N, r.data.Test.N,
		cfg.BatchSize, cfg.Epochs, cfg.Seed)
	return start, nil
}

// checkpoint writes the weights after epoch (0: the initialisation).
func (r *runState) checkpoint(epoch int) error {
	if r.files.work != "" {
		if err := r.t.WriteCheckpoint(r.files.work, epoch); err != nil {
			return err
		}
	}
	r.res.Checkpoints = append(r.res.Checkpoints, epoch)
	return nil
}

// epoch trains epoch e (0-based), evaluates, and records the epoch: its
// rows, its log line, its checkpoint and, when resumable, the state after
// it.
func (r *runState) epoch(ctx context.Context, e int) error {
	cfg := r.t.cfg
	st, err := r.t.TrainEpoch(ctx, r.data.Train, e, r.out.Progress)
	if err != nil {
		if d := (*DivergedError)(nil); errors.As(err, &d) {
			r.logf("epoch %d/%d stopped at step %d: %s is %v (lr %g, %d optimizer steps so far)",
				d.Epoch, cfg.Epochs, d.Step, d.What, d.Value, d.LR, r.t.Steps())
		}
		return err
	}
	evalStart := time.Now()
	tr, te, err := r.evaluate(ctx, e)
	if err != nil {
		return err
	}
	evalSeconds := time.Since(evalStart).Seconds()
	row := Metrics{Epoch: e + 1, LR: st.LR, TrainLoss: tr.Loss, TrainAcc: tr.Accuracy,
		TestLoss: te.Loss, TestAcc: te.Accuracy, Penalty: st.MeanTrace}
	r.res.Metrics = append(r.res.Metrics, row)
	r.res.Timings = append(r.res.Timings, Timing{Epoch: e + 1, TrainSeconds: st.Seconds, EvalSeconds: evalSeconds})
	if w := r.files.work; w != "" {
		if err := WriteMetrics(filepath.Join(w, MetricsFile), r.res.Metrics); err != nil {
			return err
		}
		if err := WriteTimings(filepath.Join(r.files.timingsDir, TimingsFile), r.res.Timings); err != nil {
			return err
		}
	}
	penalty := ""
	if st.Penalised > 0 {
		penalty = fmt.Sprintf("  trace %.6g (%d penalised steps)", st.MeanTrace, st.Penalised)
	}
	r.logf("epoch %d/%d  lr %g  batch loss %.6g  train loss %.6g acc %.4f  test loss %.6g acc %.4f%s  %.1f s + eval %.1f s",
		e+1, cfg.Epochs, st.LR, st.MeanLoss, tr.Loss, tr.Accuracy, te.Loss, te.Accuracy, penalty, st.Seconds, evalSeconds)
	if last := e+1 == cfg.Epochs; last || (cfg.SnapshotEvery > 0 && (e+1)%cfg.SnapshotEvery == 0) {
		if err := r.checkpoint(e + 1); err != nil {
			return err
		}
	}
	if r.files.resumable {
		return r.t.saveResume(r.files.work, e+1)
	}
	return nil
}

// evaluate evaluates the model after epoch e on both splits, as one
// progress unit.
func (r *runState) evaluate(ctx context.Context, e int) (tr, te Evaluation, err error) {
	p := r.out.Progress
	if p != nil {
		p.Start(fmt.Sprintf("evaluate %d/%d", e+1, r.t.cfg.Epochs), r.t.evalBatches(r.data.Train.N)+r.t.evalBatches(r.data.Test.N))
	}
	if tr, err = r.t.evaluate(ctx, r.data.Train, p); err != nil {
		return tr, te, fmt.Errorf("train: epoch %d: training split: %w", e+1, err)
	}
	if te, err = r.t.evaluate(ctx, r.data.Test, p); err != nil {
		return tr, te, fmt.Errorf("train: epoch %d: test split: %w", e+1, err)
	}
	if p != nil {
		p.Finish()
	}
	return tr, te, nil
}

// resume restores the state a resumable run left in work, if any, and the
// rows and checkpoints written up to it; it returns the number of epochs
// already completed (0 when there is nothing to resume).
func resume(t *Trainer, work string, res *Result) (int, error) {
	st, ok, err := loadResume(work)
	if err != nil || !ok {
		return 0, err
	}
	if st.Epoch > t.cfg.Epochs {
		return 0, fmt.Errorf("train: resumable state after epoch %d of a %d-epoch run; delete %s to start over", st.Epoch, t.cfg.Epochs, work)
	}
	if err := t.restore(filepath.Join(work, resumeDir), st.Epoch, st.Steps); err != nil {
		return 0, err
	}
	metrics, err := readMetrics(filepath.Join(work, MetricsFile))
	if err != nil {
		return 0, err
	}
	timings, err := readTimings(filepath.Join(work, TimingsFile))
	if err != nil {
		return 0, err
	}
	if len(metrics) < st.Epoch || len(timings) < st.Epoch {
		return 0, fmt.Errorf("train: resumable state after epoch %d, but %s has %d rows", st.Epoch, MetricsFile, len(metrics))
	}
	// Rows and checkpoints past the state were written by an epoch that did
	// not complete its record: it runs again.
	res.Metrics, res.Timings = metrics[:st.Epoch], timings[:st.Epoch]
	epochs, err := Checkpoints(work)
	if err != nil {
		return 0, err
	}
	for _, e := range epochs {
		if e <= st.Epoch {
			res.Checkpoints = append(res.Checkpoints, e)
			continue
		}
		os.Remove(CheckpointPath(work, e))
		os.Remove(OptimizerPath(work, e))
	}
	return st.Epoch, nil
}

// Metrics is one row of metrics.csv: the state after epoch Epoch (1-based,
// the number of completed epochs).
type Metrics struct {
	Epoch int
	// LR is the learning rate used during the epoch.
	LR float64
	// Losses are mean cross-entropies against the labels and accuracies
	// fractions, on the full splits in eval mode after the epoch.
	TrainLoss, TrainAcc, TestLoss, TestAcc float64
	// Penalty is the mean HTR trace estimate over the epoch's penalised
	// steps; NaN (an empty cell) when none.
	Penalty float64
}

// Timing is one row of timings.csv: wall times in seconds.
type Timing struct {
	Epoch        int
	TrainSeconds float64
	EvalSeconds  float64
}

// Artifact file names.
const (
	MetricsFile    = "metrics.csv"
	TimingsFile    = "timings.csv"
	CheckpointsDir = "checkpoints"
)

// MetricsHeader is the header row of metrics.csv.
const MetricsHeader = "epoch,lr,train_loss,train_acc,test_loss,test_acc,penalty"

// WriteMetrics writes rows as metrics.csv to path (atomically). Numbers are
// written in the shortest form that reads back to the same float64, so the
// same values always give the same bytes.
func WriteMetrics(path string, rows []Metrics) error {
	b := []byte(MetricsHeader + "\n")
	for _, r := range rows {
		b = fmt.Appendf(b, "%d,%s,%s,%s,%s,%s,%s\n", r.Epoch, num(r.LR), num(r.TrainLoss), num(r.TrainAcc),
			num(r.TestLoss), num(r.TestAcc), optNum(r.Penalty))
	}
	return atomicfile.WriteFile(path, b, 0o666)
}

// WriteTimings writes rows as timings.csv to path (atomically).
func WriteTimings(path string, rows []Timing) error {
	b := []byte("epoch,train_seconds,eval_seconds\n")
	for _, r := range rows {
		b = fmt.Appendf(b, "%d,%.3f,%.3f\n", r.Epoch, r.TrainSeconds, r.EvalSeconds)
	}
	return atomicfile.WriteFile(path, b, 0o666)
}

// num formats v as the shortest decimal that parses back to v; NaN and
// infinities as pandas reads them (NaN, inf, -inf).
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return fmt.Sprint(v)
}

// optNum is num, with NaN as an empty cell.
func optNum(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return num(v)
}
