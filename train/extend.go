package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"github.com/hessian-spectra/runner/npz"
)

// A run's first N epochs do not depend on how many epochs follow: the
// learning rate of an epoch, its shuffle (datasets.ShuffleOrder(n, seed,
// epoch)), its HTR probes (drawn from seed, epoch and step) and its batch-
// norm mode depend on the epoch's index only, and the state after it —
// weights, batch-norm statistics, optimizer state, step count — is all the
// next epoch reads. So a finished run of N epochs holds everything a longer
// run of the same configuration needs to continue after epoch N (its last
// checkpoint, which Run always writes with the optimizer state, and the
// step count, N times the steps of an epoch), and everything a shorter run
// of M ≤ N epochs writes, where the longer run checkpointed what the
// shorter one does. Extend and Derive build on that; the files they lead to
// are byte-identical to a run from nothing.

// Finished is the artifact of a finished run (Run's Output.Dir and
// RunDir) with the length and checkpointing it was run with.
type Finished struct {
	// Dir holds metrics.csv and checkpoints/; RunDir timings.csv ("": Dir).
	Dir, RunDir string
	// Epochs and SnapshotEvery are the run's configuration.
	Epochs, SnapshotEvery int
}

// SameSchedule reports whether two MultiStepLR milestone lists give the
// same learning rates in the first epochs epochs (with the same initial
// rate and gamma): the same milestones below epochs, counted with their
// multiplicity. Milestones at or after epochs change only later epochs.
func SameSchedule(a, b []int, epochs int) bool {
	below := func(ms []int) []int {
		var out []int
		for _, m := range ms {
			if m < epochs {
				out = append(out, m)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(below(a), below(b))
}

// Covers reports whether a run of f's length and checkpointing checkpoints
// every epoch that a run of epochs epochs with snapshot_every every
// checkpoints up to f's length: what Extend (epochs > f.Epochs) and Derive
// (epochs ≤ f.Epochs) need.
func (f Finished) Covers(epochs, every int) bool {
	have := CheckpointEpochs(f.Epochs, f.SnapshotEvery)
	for _, e := range CheckpointEpochs(epochs, every) {
		if e <= f.Epochs && !slices.Contains(have, e) {
			return false
		}
	}
	return true
}

func (f Finished) runDir() string {
	if f.RunDir == "" {
		return f.Dir
	}
	return f.RunDir
}

// Extend prepares the scratch dir of a resumable Run of cfg
// (Output.Scratch) so that Run continues after the last epoch of the
// finished run f instead of starting from nothing: it puts there f's
// metrics rows, wall times and the checkpoints cfg keeps up to f's length,
// and, last, the resumable state after f's last epoch (its final weights
// and optimizer state, and the step count f.Epochs·⌈trainImages/batch⌉).
//
// f must be a run of cfg but for Epochs (fewer) and SnapshotEvery, with the
// same learning rates in its epochs (SameSchedule), and must cover cfg's
// checkpoints (Covers); the caller decides that from the configurations.
// A scratch dir that already holds a state at or after f's last epoch (an
// extension interrupted earlier) is kept as it is. Files are hard-linked
// from f where possible (artifacts are read-only, and every file Run
// writes replaces its path by rename), copied otherwise.
func Extend(scratch string, f Finished, cfg Config, trainImages int) error {
	cfg.defaults()
	if f.Epochs < 1 || f.Epochs >= cfg.Epochs {
		return fmt.Errorf("train: extend: a run of %d epochs cannot extend one of %d", cfg.Epochs, f.Epochs)
	}
	if !f.Covers(cfg.Epochs, cfg.SnapshotEvery) {
		return fmt.Errorf("train: extend: the run of %d epochs lacks checkpoints this run keeps", f.Epochs)
	}
	if st, ok, err := loadResume(scratch); err == nil && ok && st.Epoch >= f.Epochs && st.Epoch <= cfg.Epochs {
		return nil
	}
	metrics, timings, err := f.rows(f.Epochs)
	if err != nil {
		return err
	}
	steps := int64(f.Epochs) * int64((trainImages+cfg.BatchSize-1)/cfg.BatchSize)
	if err := f.checkSteps(cfg, steps); err != nil {
		return err
	}
	// Start over: whatever an earlier attempt left is behind f. On failure,
	// leave the scratch dir empty, for a run from nothing.
	if err := clearDir(scratch); err != nil {
		return fmt.Errorf("train: extend: %w", err)
	}
	if err := f.seed(scratch, cfg, metrics, timings, steps); err != nil {
		_ = clearDir(scratch)
		return err
	}
	return nil
}

// seed writes the files of Extend into the empty scratch dir.
func (f Finished) seed(scratch string, cfg Config, metrics []Metrics, timings []Timing, steps int64) error {
	if err := WriteMetrics(filepath.Join(scratch, MetricsFile), metrics); err != nil {
		return err
	}
	if err := WriteTimings(filepath.Join(scratch, TimingsFile), timings); err != nil {
		return err
	}
	for _, e := range CheckpointEpochs(cfg.Epochs, cfg.SnapshotEvery) {
		if e <= f.Epochs {
			if err := f.linkCheckpoint(e, scratch); err != nil {
				return err
			}
		}
	}
	if err := f.linkCheckpoint(f.Epochs, filepath.Join(scratch, resumeDir)); err != nil {
		return err
	}
	// resume.json last: until it exists, the scratch dir holds no state.
	b, err := json.Marshal(resumeState{Epoch: f.Epochs, Steps: steps})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(scratch, resumeFile), b, 0o666)
}

// Derive writes into out.Dir (and out.RunDir) the files of a run of cfg
// that the finished run f of at least as many epochs already holds:
// metrics.csv, timings.csv and the checkpoints cfg keeps, taken from f —
// no training. f must be a run of cfg but for Epochs (as many or more) and
// SnapshotEvery, with the same learning rates in cfg's epochs
// (SameSchedule), and cover cfg's checkpoints (Covers). Nothing is written
// when a file of f is missing.
func Derive(f Finished, cfg Config, out Output) error {
	cfg.defaults()
	if cfg.Epochs < 1 || f.Epochs < cfg.Epochs {
		return fmt.Errorf("train: derive: a run of %d epochs cannot be derived from one of %d", cfg.Epochs, f.Epochs)
	}
	if !f.Covers(cfg.Epochs, cfg.SnapshotEvery) {
		return fmt.Errorf("train: derive: the run of %d epochs lacks checkpoints a run of %d keeps", f.Epochs, cfg.Epochs)
	}
	metrics, timings, err := f.rows(cfg.Epochs)
	if err != nil {
		return err
	}
	epochs := CheckpointEpochs(cfg.Epochs, cfg.SnapshotEvery)
	for _, e := range epochs {
		for _, p := range []string{CheckpointPath(f.Dir, e), OptimizerPath(f.Dir, e)} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("train: derive: %w", err)
			}
		}
	}
	if err := WriteMetrics(filepath.Join(out.Dir, MetricsFile), metrics); err != nil {
		return err
	}
	if err := WriteTimings(filepath.Join(out.runDir(), TimingsFile), timings); err != nil {
		return err
	}
	for _, e := range epochs {
		if err := f.linkCheckpoint(e, out.Dir); err != nil {
			return err
		}
	}
	return nil
}

// clearDir removes everything in dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// rows reads f's first n metrics rows and wall times. Wall times are not
// results: unreadable ones become NaN rows.
func (f Finished) rows(n int) ([]Metrics, []Timing, error) {
	metrics, err := readMetrics(filepath.Join(f.Dir, MetricsFile))
	if err != nil {
		return nil, nil, err
	}
	if len(metrics) < n {
		return nil, nil, fmt.Errorf("train: %s has %d rows, want %d", filepath.Join(f.Dir, MetricsFile), len(metrics), n)
	}
	for i, m := range metrics[:n] {
		if m.Epoch != i+1 {
			return nil, nil, fmt.Errorf("train: %s row %d is epoch %d", filepath.Join(f.Dir, MetricsFile), i+2, m.Epoch)
		}
	}
	timings, err := readTimings(filepath.Join(f.runDir(), TimingsFile))
	if err != nil || len(timings) < n {
		timings = make([]Timing, n)
		for i := range timings {
			timings[i] = Timing{Epoch: i + 1, TrainSeconds: math.NaN(), EvalSeconds: math.NaN()}
		}
	}
	return metrics[:n], timings[:n], nil
}

// checkSteps checks the step count against the one Adam's state records.
func (f Finished) checkSteps(cfg Config, steps int64) error {
	if cfg.Optimizer.Name != NameAdam {
		return nil
	}
	ar, err := npz.ReadFile(OptimizerPath(f.Dir, f.Epochs))
	if err != nil {
		return fmt.Errorf("train: extend: %w", err)
	}
	a, err := ar.Get("step")
	if err != nil {
		return fmt.Errorf("train: extend: %w", err)
	}
	if got, err := a.Int64s(); err != nil || len(got) != 1 || got[0] != steps {
		return fmt.Errorf("train: extend: the run's Adam state counts %v steps, its data and batch give %d", got, steps)
	}
	return nil
}

// linkCheckpoint puts f's checkpoint of epoch (weights and optimizer state)
// under dir/checkpoints/.
func (f Finished) linkCheckpoint(epoch int, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, CheckpointsDir), 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, p := range []func(string, int) string{CheckpointPath, OptimizerPath} {
		if err := linkOrCopy(p(f.Dir, epoch), p(dir, epoch)); err != nil {
			return fmt.Errorf("train: checkpoint of epoch %d: %w", epoch, err)
		}
	}
	return nil
}

// linkOrCopy makes dst a hard link to src, or a copy of it where links are
// impossible (another file system).
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	} else if errors.Is(err, os.ErrExist) {
		return err
	}
	return atomicfile.CopyFile(dst, src, 0o644)
}
