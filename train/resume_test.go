package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestResumeGivesTheSameFiles interrupts a run in its second epoch, runs
// it again on the same scratch dir, and checks that the files equal those
// of a run never interrupted, byte for byte: the state kept after each
// epoch (weights, batch-norm counters, optimizer state, step count) is all
// the run depends on. For SGD with momentum and for Adam (whose bias
// correction counts steps).
func TestResumeGivesTheSameFiles(t *testing.T) {
	data := sampleData(t, 128, 64)
	for name, opt := range map[string]Optimizer{"sgd": SGD(0.05, 0.9), "adam": Adam(1e-3)} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Model: lenet(t), Optimizer: opt, Epochs: 3, BatchSize: 64, SnapshotEvery: 2, Seed: 5}
			whole := t.TempDir()
			if _, err := Run(context.Background(), newTrainer(t, cfg), data, Output{Dir: whole}); err != nil {
				t.Fatal(err)
			}

			out, scratch := t.TempDir(), t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			// Each epoch advances progress by 2 training steps and 2
			// evaluation batches: cancel at the second epoch's first step.
			_, err := Run(ctx, newTrainer(t, cfg), data, Output{Dir: out, Scratch: scratch, Progress: &cancelAfter{n: 5, cancel: cancel}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			if _, err := os.Stat(filepath.Join(out, MetricsFile)); err == nil {
				t.Error("an interrupted resumable run wrote into its output dir")
			}
			st, ok, err := loadResume(scratch)
			if err != nil || !ok || st.Epoch != 1 || st.Steps != 2 {
				t.Fatalf("resume state %+v, %v, %v; want epoch 1 after 2 steps", st, ok, err)
			}

			var log bytes.Buffer
			tr := newTrainer(t, cfg)
			res, err := Run(context.Background(), tr, data, Output{Dir: out, Scratch: scratch, Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(log.Bytes(), []byte("resuming after epoch 1/3")) {
				t.Errorf("log does not say it resumed:\n%s", log.String())
			}
			if tr.Steps() != 6 || len(res.Metrics) != 3 || !slices.Equal(res.Checkpoints, []int{0, 2, 3}) {
				t.Errorf("resumed run: %d steps, %d metrics rows, checkpoints %v", tr.Steps(), len(res.Metrics), res.Checkpoints)
			}
			files := []string{MetricsFile}
			for _, e := range []int{0, 2, 3} {
				files = append(files, CheckpointPath("", e), OptimizerPath("", e))
			}
			sameFiles(t, whole, out, files, "the resumed and the uninterrupted run")
			if got, _ := Checkpoints(out); !slices.Equal(got, []int{0, 2, 3}) {
				t.Errorf("checkpoints in the output dir: %v", got)
			}
		})
	}
}
