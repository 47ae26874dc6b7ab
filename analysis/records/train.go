// Package records reads the artifacts that the train and lanczos stages write
// (docs/ARTIFACTS.md) into typed values for the runner's tables and figures.
// A train artifact's meta.json and a lanczos artifact's summary.json are
// read through the packages that define them beside their writers
// (trainmeta, summary); like those, records imports no GoMLX.
package records

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/train/trainmeta"
)

// Metrics is a training run's metrics.csv, one entry per completed epoch.
// Accuracies are fractions in [0, 1]. Optional columns that the file lacks,
// and empty cells (penalty on unpenalised epochs), are NaN.
type Metrics struct {
	Epoch     []int
	LR        []float64
	TrainLoss []float64
	TrainAcc  []float64
	TestLoss  []float64
	TestAcc   []float64
	Penalty   []float64
}

// ReadMetrics reads a metrics.csv, selecting columns by header name. The
// columns epoch, train_loss, train_acc, test_loss and test_acc are required;
// lr and penalty are optional. Epochs must increase from row to row.
func ReadMetrics(path string) (*Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, name := range []string{"epoch", "train_loss", "train_acc", "test_loss", "test_acc"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("%s: no column %q (header %v)", path, name, header)
		}
	}
	m := &Metrics{}
	cols := []struct {
		name     string
		dst      *[]float64
		optional bool
	}{
		{"lr", &m.LR, true},
		{"train_loss", &m.TrainLoss, false},
		{"train_acc", &m.TrainAcc, false},
		{"test_loss", &m.TestLoss, false},
		{"test_acc", &m.TestAcc, false},
		{"penalty", &m.Penalty, true},
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		ep, err := strconv.Atoi(rec[col["epoch"]])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: epoch %q is not an integer", path, line, rec[col["epoch"]])
		}
		if n := len(m.Epoch); n > 0 && ep <= m.Epoch[n-1] {
			return nil, fmt.Errorf("%s:%d: epoch %d follows epoch %d", path, line, ep, m.Epoch[n-1])
		}
		m.Epoch = append(m.Epoch, ep)
		for _, c := range cols {
			v := math.NaN()
			if i, ok := col[c.name]; ok && rec[i] != "" {
				if v, err = strconv.ParseFloat(rec[i], 64); err != nil {
					return nil, fmt.Errorf("%s:%d: %s %q is not a number", path, line, c.name, rec[i])
				}
			} else if !c.optional {
				return nil, fmt.Errorf("%s:%d: %s is empty", path, line, c.name)
			}
			*c.dst = append(*c.dst, v)
		}
	}
	if len(m.Epoch) == 0 {
		return nil, fmt.Errorf("%s: no epochs", path)
	}
	return m, nil
}

// Run is one training run: the artifact and what it recorded.
type Run struct {
	// Stage is the id of the train stage instance that produced it.
	Stage   string
	Matrix  map[string]any
	Metrics *Metrics
	// Meta is nil when the artifact has no meta.json.
	Meta *trainmeta.Meta
}

// LoadRun reads a train artifact's metrics.csv and, when present, meta.json.
func LoadRun(a stage.Artifact) (*Run, error) {
	m, err := ReadMetrics(filepath.Join(a.Dir, "metrics.csv"))
	if err != nil {
		return nil, fmt.Errorf("train artifact %s: %w", a.Stage, err)
	}
	run := &Run{Stage: a.Stage, Matrix: a.Matrix, Metrics: m}
	meta, err := trainmeta.Read(a.Dir)
	switch {
	case err == nil:
		run.Meta = meta
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("train artifact %s: %w", a.Stage, err)
	}
	return run, nil
}

// Model returns the run's model name from meta.json, else from the matrix
// value "model", else "".
func (r *Run) Model() string {
	if r.Meta != nil && r.Meta.Model != "" {
		return r.Meta.Model
	}
	return matrixString(r.Matrix, "model")
}

// Dataset returns the run's dataset name from meta.json, else from the matrix
// value "dataset", else "".
func (r *Run) Dataset() string {
	if r.Meta != nil && r.Meta.Dataset != "" {
		return r.Meta.Dataset
	}
	return matrixString(r.Matrix, "dataset")
}

func matrixString(m map[string]any, key string) string {
	if v, ok := m[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}
