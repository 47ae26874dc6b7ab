package train

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/models"
)

// Benchmarks, on the pure-Go backend, of the seed's LeNet setting (batch
// 256, 1×32×32, SGD with momentum 0.9):
//
//	go test ./train -run '^$' -bench 'LeNetStep' -benchtime 10x -count 3
//	go test ./train -run '^$' -bench 'LeNetHTRStep' -benchtime 3x
//	go test ./train -run '^$' -bench 'FashionMNISTEpoch' -benchtime 1x -timeout 30m

func benchTrainer(b *testing.B, htr HTR) (*Trainer, func()) {
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := New(testBackend(b), Config{Model: m, Optimizer: SGD(0.01, 0.9), BatchSize: 256, Epochs: 1, HTR: htr}, nil)
	if err != nil {
		b.Fatal(err)
	}
	x, y := benchBatch(m, 256, tr.cfg.DType)
	step := 0
	return tr, func() {
		if _, err := tr.Step(x, y, 0, step); err != nil {
			b.Fatal(err)
		}
		step++
	}
}

func reportStep(b *testing.B, batch int) {
	perStep := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perStep*1e3, "ms/step")
	b.ReportMetric(float64(batch)/perStep, "images/s")
}

// BenchmarkLeNetStep is one training step (forward, backward, SGD update
// with momentum) at batch 256, after one warm-up step that compiles it.
func BenchmarkLeNetStep(b *testing.B) {
	_, step := benchTrainer(b, HTR{})
	step()
	for b.Loop() {
		step()
	}
	reportStep(b, 256)
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*235, "s/epoch-estimate")
}

// BenchmarkLeNetHTRStep is one penalised step with the seed's 10 Rademacher
// probes over all parameters, at batch 256.
func BenchmarkLeNetHTRStep(b *testing.B) {
	_, step := benchTrainer(b, HTR{Gamma: 1e-3, Freq: 1, Probes: 10, Distribution: Rademacher})
	step()
	for b.Loop() {
		step()
	}
	reportStep(b, 256)
}

// BenchmarkFashionMNISTEpoch is one real training epoch of LeNet over
// Debian's FashionMNIST (60000 images, 235 steps of 256), the compilation of
// both batch shapes included; skipped when the dataset is not installed.
func BenchmarkFashionMNISTEpoch(b *testing.B) {
	data := loadDir(b, testenv.RequireFashionMNIST(b))
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		b.Fatal(err)
	}
	epoch := 0
	for b.Loop() {
		tr, err := New(testBackend(b), Config{Model: m, Optimizer: SGD(0.01, 0.9), BatchSize: 256, Epochs: 1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tr.TrainEpoch(context.Background(), data.Train, epoch, nil); err != nil {
			b.Fatal(err)
		}
		epoch++
	}
	perEpoch := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perEpoch, "s/epoch")
	b.ReportMetric(float64(data.Train.N)/perEpoch, "images/s")
}

// loadDir reads FashionMNIST's published files from dir into a Dataset.
func loadDir(t testing.TB, dir string) *datasets.Dataset {
	t.Helper()
	info, err := datasets.Lookup("FashionMNIST")
	if err != nil {
		t.Fatal(err)
	}
	set, err := datasets.ReadDir(info, dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := set.Write(out); err != nil {
		t.Fatal(err)
	}
	d, err := datasets.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBench runs Bench at a tiny size and checks its JSON.
func TestBench(t *testing.T) {
	var lines []string
	res, err := Bench(context.Background(), testBackend(t), BenchOptions{Batch: 8, Steps: 2, HTRProbes: 1,
		Data: sampleData(t, 40, 10), Progress: func(s string) { lines = append(lines, s) }})
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
	if back.Model != "LeNet" || back.Batch != 8 || back.DType != "float32" || back.Optimizer != "sgd" ||
		back.Step.Steps != 2 || !(back.Step.MeanMs > 0) || !(back.Step.ImagesPerSec > 0) ||
		back.HTRStep == nil || back.HTRStep.Steps != 2 || back.HTRProbes != 1 ||
		back.Epoch == nil || back.Epoch.Images != 40 || back.Epoch.Steps != 5 || back.Epoch.EvalImages != 50 {
		t.Errorf("result %s", js)
	}
	if len(lines) != 3 {
		t.Errorf("progress lines %q", lines)
	}
}
