package train

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"github.com/hessian-spectra/runner/npz"
)

// A resumable run keeps, in its scratch directory, the artifact files as
// they grow (metrics.csv, timings.csv, checkpoints/) and, after every
// completed epoch, the state needed to continue: the weights and optimizer
// state under resume/checkpoints/ (written by WriteCheckpoint) and then
// resume.json, written last by rename, which names the epoch. A run killed
// at any instant leaves either the previous epoch's resume.json or the new
// one, each pointing at complete files.

const (
	resumeFile = "resume.json"
	resumeDir  = "resume"
)

// resumeState is the content of resume.json.
type resumeState struct {
	// Epoch is the number of completed epochs the state is after.
	Epoch int `json:"epoch"`
	// Steps is the number of optimizer steps taken by then.
	Steps int64 `json:"steps"`
}

// saveResume records the trainer's state after epoch completed epochs.
func (t *Trainer) saveResume(scratch string, epoch int) error {
	dir := filepath.Join(scratch, resumeDir)
	if err := t.WriteCheckpoint(dir, epoch); err != nil {
		return fmt.Errorf("train: resumable state: %w", err)
	}
	b, err := json.Marshal(resumeState{Epoch: epoch, Steps: t.steps})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(scratch, resumeFile), b, 0o666); err != nil {
		return err
	}
	// The older states are no longer referenced.
	epochs, _ := Checkpoints(dir)
	for _, e := range epochs {
		if e != epoch {
			os.Remove(CheckpointPath(dir, e))
			os.Remove(OptimizerPath(dir, e))
		}
	}
	return nil
}

// maxResumeBytes bounds resume.json, which holds two numbers.
const maxResumeBytes = 1 << 12

// loadResume reads resume.json from scratch; ok is false when there is none.
func loadResume(scratch string) (st resumeState, ok bool, err error) {
	path := filepath.Join(scratch, resumeFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("train: resumable state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResumeBytes+1))
	if err != nil {
		return st, false, fmt.Errorf("train: resumable state: %w", err)
	}
	switch {
	case len(b) > maxResumeBytes:
		err = fmt.Errorf("more than %d bytes", maxResumeBytes)
	case json.Unmarshal(b, &st) != nil:
		err = fmt.Errorf("not the JSON of an epoch and a step count: %q", truncate(string(b), 60))
	case st.Epoch < 1 || st.Steps < 0:
		err = fmt.Errorf("epoch %d, steps %d", st.Epoch, st.Steps)
	}
	if err != nil {
		return st, false, fmt.Errorf("train: resumable state %s is corrupt (%v); delete it to start over", path, err)
	}
	return st, true, nil
}

// truncate cuts s to at most n bytes for a message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// restore replaces the trainer's weights and optimizer state by those saved
// after epoch completed epochs under dir (by WriteCheckpoint), and its step
// count by steps. Everything read is checked against the model and the run
// first (ReadCheckpoint, readOptimizer); on an error the trainer is left
// as it was.
func (t *Trainer) restore(dir string, epoch int, steps int64) error {
	w, err := ReadCheckpoint(t.cfg.Model, CheckpointPath(dir, epoch), t.cfg.DType)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	state := t.state // before the first step there is no state: keep the zeros
	if steps > 0 && len(t.state) > 0 {
		if state, err = t.readOptimizer(OptimizerPath(dir, epoch), steps); err != nil {
			w.Finalize()
			return fmt.Errorf("train: resume: %w", err)
		}
		finalize(t.state)
	}
	if err := t.w.Finalize(); err != nil {
		return err
	}
	t.w, t.state, t.steps = w, state, steps
	return nil
}

// readOptimizer reads the optimizer state OptimizerArrays wrote after steps
// steps, checking it against the run: exactly the arrays of the
// optimizer's slots, each of its parameter's shape and the run's dtype, and
// for Adam a step count equal to steps. Errors name the file.
func (t *Trainer) readOptimizer(path string, steps int64) (state []*tensors.Tensor, err error) {
	ar, err := npz.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			finalize(state)
			err = fmt.Errorf("%s: %w", path, err)
		}
	}()
	slots := t.cfg.Optimizer.Slots()
	want := map[string]bool{}
	state = make([]*tensors.Tensor, 0, len(t.state))
	for _, e := range t.cfg.Model.Params() {
		for _, slot := range slots {
			name := e.Name + "." + slot
			want[name] = true
			a, err := ar.Get(name)
			if err != nil {
				return state, err
			}
			if !slices.Equal(a.Shape, e.Shape) {
				return state, fmt.Errorf("%s is %v, want %v", name, a.Shape, e.Shape)
			}
			s, err := tensorOf(a, t.cfg.DType)
			if err != nil {
				return state, fmt.Errorf("%s: %w", name, err)
			}
			state = append(state, s)
		}
	}
	if t.cfg.Optimizer.Name == NameAdam {
		want["step"] = true
		a, err := ar.Get("step")
		if err != nil {
			return state, err
		}
		n, err := a.Int64s()
		if err != nil || len(a.Shape) != 0 || n[0] != steps {
			return state, fmt.Errorf("step is %T%v, want the int64 scalar %d of resume.json", a.Data, a.Shape, steps)
		}
	}
	for _, n := range ar.Names {
		if !want[n] {
			return state, fmt.Errorf("unexpected array %q for optimizer %s", n, t.cfg.Optimizer.Name)
		}
	}
	return state, nil
}

// tensorOf makes a tensor of an npz array of the run's float dtype.
func tensorOf(a *npz.Array, dtype dtypes.DType) (*tensors.Tensor, error) {
	switch d := a.Data.(type) {
	case []float32:
		if dtype == dtypes.Float32 {
			return tensors.FromFlatDataAndDimensions(d, a.Shape...), nil
		}
	case []float64:
		if dtype == dtypes.Float64 {
			return tensors.FromFlatDataAndDimensions(d, a.Shape...), nil
		}
	}
	return nil, fmt.Errorf("state of type %T for a %s run", a.Data, dtype)
}

// readMetrics reads the rows of a metrics.csv written by WriteMetrics; an
// empty cell (no penalty that epoch) reads as NaN.
func readMetrics(path string) ([]Metrics, error) {
	recs, err := readNumbers(path, 7, true)
	if err != nil {
		return nil, err
	}
	rows := make([]Metrics, len(recs))
	for i, v := range recs {
		rows[i] = Metrics{Epoch: int(v[0]), LR: v[1], TrainLoss: v[2], TrainAcc: v[3], TestLoss: v[4], TestAcc: v[5], Penalty: v[6]}
	}
	return rows, nil
}

// readTimings reads the rows of a timings.csv written by WriteTimings.
func readTimings(path string) ([]Timing, error) {
	recs, err := readNumbers(path, 3, false)
	if err != nil {
		return nil, err
	}
	rows := make([]Timing, len(recs))
	for i, v := range recs {
		rows[i] = Timing{Epoch: int(v[0]), TrainSeconds: v[1], EvalSeconds: v[2]}
	}
	return rows, nil
}

// readNumbers reads a CSV file of this package: a header, then rows of
// fields numbers each. An empty cell is NaN where blankNaN, an error
// otherwise.
func readNumbers(path string, fields int, blankNaN bool) ([][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = fields
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("train: %s: no header", path)
	}
	rows := make([][]float64, len(recs)-1)
	for i, rec := range recs[1:] {
		rows[i] = make([]float64, fields)
		for j, cell := range rec {
			if cell == "" && blankNaN {
				rows[i][j] = math.NaN()
				continue
			}
			if rows[i][j], err = strconv.ParseFloat(cell, 64); err != nil {
				return nil, fmt.Errorf("train: %s row %d: %w", path, i+2, err)
			}
		}
	}
	return rows, nil
}
