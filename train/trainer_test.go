package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/nn"
	"github.com/hessian-spectra/runner/npz"
)

func lenet(t testing.TB) *models.Model {
	t.Helper()
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTrainer(t testing.TB, cfg Config) *Trainer {
	t.Helper()
	tr, err := New(testBackend(t), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestRunIsDeterministic trains twice with the same seed (HTR on, so the
// probes are covered too) and checks that metrics.csv and every checkpoint
// are byte-identical, that another seed gives other numbers, and the
// checkpoints' layout.
func TestRunIsDeterministic(t *testing.T) {
	data := sampleData(t, 128, 100)
	cfg := Config{Model: lenet(t), Optimizer: SGD(0.05, 0.9), Epochs: 2, BatchSize: 64, SnapshotEvery: 1, Seed: 3,
		HTR: HTR{Gamma: 1e-3, StartEpoch: 1, Freq: 2, Probes: 2}}
	run := func(cfg Config) (string, *Trainer) {
		dir := t.TempDir()
		tr := newTrainer(t, cfg)
		if _, err := Run(context.Background(), tr, data, Output{Dir: dir}); err != nil {
			t.Fatal(err)
		}
		return dir, tr
	}
	dir1, tr := run(cfg)
	dir2, _ := run(cfg)
	files := []string{MetricsFile}
	for e := range 3 {
		for _, p := range []string{CheckpointPath("", e), OptimizerPath("", e)} {
			files = append(files, p)
		}
	}
	sameFiles(t, dir1, dir2, files, "two runs with the same seed")
	metrics, _ := os.ReadFile(filepath.Join(dir1, MetricsFile))
	lines := strings.Split(strings.TrimSpace(string(metrics)), "\n")
	if len(lines) != 3 || lines[0] != MetricsHeader {
		t.Fatalf("metrics.csv:\n%s", metrics)
	}
	// Epoch index 0 is before start_epoch: empty penalty; epoch index 1 has
	// penalised step 0 of its 2.
	if !strings.HasSuffix(lines[1], ",") || strings.HasSuffix(lines[2], ",") {
		t.Errorf("penalty cells: %q, %q", lines[1], lines[2])
	}
	t.Logf("metrics.csv:\n%s", metrics)

	// Another seed: other initial weights and order, other numbers (the
	// first epoch suffices, and has no HTR step to compile).
	other := cfg
	other.Seed, other.Epochs = 4, 1
	dir3, _ := run(other)
	first, _ := os.ReadFile(filepath.Join(dir3, MetricsFile))
	if l := strings.Split(string(first), "\n"); len(l) < 2 || l[1] == lines[1] {
		t.Errorf("seeds 3 and 4 gave the same first epoch: %q", l)
	}

	// Checkpoints: epochs 0 (initialisation), 1 and 2; the last holds the
	// trainer's final weights; optimizer state appears after the first step.
	epochs, err := Checkpoints(dir1)
	if err != nil || !slices.Equal(epochs, []int{0, 1, 2}) {
		t.Fatalf("Checkpoints = %v, %v", epochs, err)
	}
	last, err := npz.ReadFile(CheckpointPath(dir1, 2))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range cfg.Model.Params() {
		a, err := last.Get(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.Float32s(), tensors.MustCopyFlatData[float32](tr.Weights().Params[i])) {
			t.Errorf("epoch_0002.npz %s is not the final weights", e.Name)
		}
	}
	init, _ := npz.ReadFile(OptimizerPath(dir1, 0))
	if len(init.Names) != 0 {
		t.Errorf("optimizer state before the first step: %v, want none (as PyTorch)", init.Names)
	}
	opt, _ := npz.ReadFile(OptimizerPath(dir1, 2))
	if len(opt.Names) != 10 || opt.Names[0] != "conv1.weight.momentum_buffer" {
		t.Errorf("optimizer state names %v", opt.Names)
	}
}

// TestMomentumBufferIsTheFirstGradient checks one real step of the trainer
// against a gradient computed separately: PyTorch's first momentum step sets
// the buffer to the gradient and moves the weights by −lr times it.
func TestMomentumBufferIsTheFirstGradient(t *testing.T) {
	data := sampleData(t, 32, 1)
	m := lenet(t)
	cfg := Config{Model: m, DType: dtypes.Float64, Optimizer: SGD(0.1, 0.9), Epochs: 1, BatchSize: 32, Seed: 1}
	tr := newTrainer(t, cfg)
	w0, err := tr.Weights().Clone()
	if err != nil {
		t.Fatal(err)
	}
	g, x, y := gradientOf(t, m, w0, data.Train, 32)
	if _, err := tr.Step(x, y, 0, 0); err != nil {
		t.Fatal(err)
	}
	opt, err := tr.OptimizerArrays()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range m.Params() {
		want := g[i]
		assertClose(t, e.Name+" momentum buffer", opt[i].Array.Float64s(), want, 1e-12)
		p0 := tensors.MustCopyFlatData[float64](w0.Params[i])
		for j := range p0 {
			p0[j] -= 0.1 * want[j]
		}
		assertClose(t, e.Name, tensors.MustCopyFlatData[float64](tr.Weights().Params[i]), p0, 1e-12)
	}
}

// TestAdamFirstStepThroughTrainer checks the trainer's Adam state after one
// step against the gradient computed separately: exp_avg = 0.1·g,
// exp_avg_sq = 0.001·g², step = 1, and each weight moved by
// lr·g/(|g| + ε) (the bias corrections cancel on the first step).
func TestAdamFirstStepThroughTrainer(t *testing.T) {
	data := sampleData(t, 16, 1)
	m := lenet(t)
	tr := newTrainer(t, Config{Model: m, DType: dtypes.Float64, Optimizer: Adam(1e-3), Epochs: 1, BatchSize: 16, Seed: 5})
	w0, err := tr.Weights().Clone()
	if err != nil {
		t.Fatal(err)
	}
	g, x, y := gradientOf(t, m, w0, data.Train, 16)
	if _, err := tr.Step(x, y, 0, 0); err != nil {
		t.Fatal(err)
	}
	opt, err := tr.OptimizerArrays()
	if err != nil {
		t.Fatal(err)
	}
	if len(opt) != 21 || opt[20].Name != "step" || opt[20].Array.Data.([]int64)[0] != 1 {
		t.Fatalf("Adam state: %d arrays, last %q", len(opt), opt[len(opt)-1].Name)
	}
	for i, e := range m.Params() {
		gi := g[i]
		avg, sq, moved := make([]float64, len(gi)), make([]float64, len(gi)), tensors.MustCopyFlatData[float64](w0.Params[i])
		for j, v := range gi {
			avg[j], sq[j] = 0.1*v, 0.001*v*v
			moved[j] -= 1e-3 * v / (math.Abs(v) + 1e-8)
		}
		if opt[2*i].Name != e.Name+".exp_avg" || opt[2*i+1].Name != e.Name+".exp_avg_sq" {
			t.Fatalf("state names %q, %q", opt[2*i].Name, opt[2*i+1].Name)
		}
		assertClose(t, e.Name+".exp_avg", opt[2*i].Array.Float64s(), avg, 1e-12)
		assertClose(t, e.Name+".exp_avg_sq", opt[2*i+1].Array.Float64s(), sq, 1e-12)
		assertClose(t, e.Name, tensors.MustCopyFlatData[float64](tr.Weights().Params[i]), moved, 1e-10)
	}
}

// gradientOf returns the gradient of LeNet's training-mode loss at w on the
// first n images of split (by a graph of its own), and the batch.
func gradientOf(t *testing.T, m *models.Model, w *models.Weights, split *datasets.Split, n int) ([][]float64, *tensors.Tensor, *tensors.Tensor) {
	t.Helper()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	x, y := batchTensors(split, idx, w.DType)
	np := len(m.Params())
	grad, err := NewExec(testBackend(t), func(in []*Node) []*Node {
		logits, _ := m.Forward(in[:np], nil, in[np], true)
		return Gradient(nn.CrossEntropy(logits, in[np+1]), in[:np]...)
	})
	if err != nil {
		t.Fatal(err)
	}
	var args []any
	for _, p := range w.Params {
		args = append(args, p)
	}
	out, err := grad.Exec(append(args, x, y)...)
	if err != nil {
		t.Fatal(err)
	}
	var g [][]float64
	for _, o := range out {
		g = append(g, tensors.MustCopyFlatData[float64](o))
	}
	return g, x, y
}

// TestMilestoneScalesTheStep takes the same plain-SGD step from the same
// weights once in epoch index 0 and once in epoch index 1, after the
// milestone: the second update must be γ = 0.1 times the first.
func TestMilestoneScalesTheStep(t *testing.T) {
	data := sampleData(t, 16, 1)
	cfg := Config{Model: lenet(t), DType: dtypes.Float64, Optimizer: SGD(0.1, 0), Epochs: 2, BatchSize: 16,
		Schedule: MultiStepLR{Milestones: []int{1}, Gamma: 0.1}}
	idx := make([]int, 16)
	for i := range idx {
		idx[i] = i
	}
	x, y := batchTensors(data.Train, idx, dtypes.Float64)
	deltas := make([][]float64, 2)
	for epoch := range 2 {
		tr := newTrainer(t, cfg)
		w0 := tensors.MustCopyFlatData[float64](tr.Weights().Params[0])
		if _, err := tr.Step(x, y, epoch, 0); err != nil {
			t.Fatal(err)
		}
		w1 := tensors.MustCopyFlatData[float64](tr.Weights().Params[0])
		for i := range w0 {
			deltas[epoch] = append(deltas[epoch], w1[i]-w0[i])
		}
	}
	want := make([]float64, len(deltas[0]))
	for i, d := range deltas[0] {
		want[i] = 0.1 * d
	}
	assertClose(t, "update after the milestone", deltas[1], want, 1e-9)
}

// TestNaNStopsTraining: an absurd learning rate makes the loss overflow;
// training stops with an error naming the epoch and the step.
func TestNaNStopsTraining(t *testing.T) {
	data := sampleData(t, 256, 10)
	tr := newTrainer(t, Config{Model: lenet(t), Optimizer: SGD(1e8, 0.9), Epochs: 2, BatchSize: 32})
	var log bytes.Buffer
	dir := t.TempDir()
	_, err := Run(context.Background(), tr, data, Output{Dir: dir, Log: &log})
	var d *DivergedError
	if !errors.As(err, &d) {
		t.Fatalf("error %v, want a *DivergedError", err)
	}
	if d.Epoch != 1 || d.Step < 2 || d.Step > 8 || d.What != "loss" || finite(d.Value) {
		t.Errorf("diverged at %+v", d)
	}
	msg := err.Error()
	if !strings.Contains(msg, "epoch 1 step ") || !strings.Contains(msg, "loss is ") || !strings.Contains(msg, "lr 1e+08") {
		t.Errorf("error %q does not name the epoch, the step and the lr", msg)
	}
	if !strings.Contains(log.String(), "stopped at step") {
		t.Errorf("log does not tell: %q", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, MetricsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("metrics.csv written for an epoch that diverged: %v", err)
	}
	t.Log(msg)
}

// TestTrainingLearns trains LeNet for two epochs on 1024 real FashionMNIST
// images: the loss must fall and the test accuracy beat chance (10 %) by far.
func TestTrainingLearns(t *testing.T) {
	data := sampleData(t, 1024, 500)
	tr := newTrainer(t, Config{Model: lenet(t), Optimizer: SGD(0.05, 0.9), Epochs: 2, BatchSize: 32})
	var progress countingProgress
	res, err := Run(context.Background(), tr, data, Output{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("metrics %+v", m)
	if !(m[1].TrainLoss < m[0].TrainLoss && m[0].TrainLoss < math.Log(10)) {
		t.Errorf("training loss %v → %v (chance %.3f)", m[0].TrainLoss, m[1].TrainLoss, math.Log(10))
	}
	if !(m[1].TestAcc >= 0.5) {
		t.Errorf("test accuracy %.3f after two epochs", m[1].TestAcc)
	}
	// Per epoch: 32 training batches, then 3 + 1 evaluation batches of 500.
	if progress.starts != 4 || progress.steps != 2*(32+4) || progress.finishes != 4 {
		t.Errorf("progress: %+v, want 2 training units of 32 steps and 2 evaluation units of 4", progress)
	}
}

type countingProgress struct{ starts, steps, finishes int }

func (p *countingProgress) Start(string, int) { p.starts++ }
func (p *countingProgress) Advance(n int)     { p.steps += n }
func (p *countingProgress) Finish()           { p.finishes++ }

func TestCancelStopsBetweenSteps(t *testing.T) {
	data := sampleData(t, 128, 10)
	tr := newTrainer(t, Config{Model: lenet(t), Optimizer: SGD(0.01, 0), Epochs: 3, BatchSize: 32})
	ctx, cancel := context.WithCancel(context.Background())
	p := &cancelAfter{n: 2, cancel: cancel}
	_, err := Run(ctx, tr, data, Output{Progress: p})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if tr.Steps() != 2 {
		t.Errorf("%d steps taken after cancelling at the second", tr.Steps())
	}
}

type cancelAfter struct {
	n      int
	cancel func()
}

func (p *cancelAfter) Start(string, int) {}
func (p *cancelAfter) Finish()           {}
func (p *cancelAfter) Advance(int) {
	if p.n--; p.n == 0 {
		p.cancel()
	}
}

// TestLegacyFreezesBatchNorm trains VGG11_bn for two one-step epochs: the
// running statistics change in both epochs by default, but only in the
// first under legacy (SEED-SPEC §8.1: eval mode from epoch 1 on).
func TestLegacyFreezesBatchNorm(t *testing.T) {
	if testing.Short() {
		t.Skip("VGG11_bn has 28M parameters")
	}
	m, err := models.New(models.VGG11BN, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	split := &datasets.Split{N: 2, C: 3, H: 32, W: 32, X: make([]float32, 2*3*32*32), Y: []int32{3, 7}}
	for i := range split.X {
		split.X[i] = float32(rng.NormFloat64())
	}
	init, err := m.Init(1, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	for _, legacy := range []bool{false, true} {
		tr, err := New(testBackend(t), Config{Model: m, Optimizer: SGD(0.01, 0.9), Epochs: 2, BatchSize: 2, Legacy: legacy}, init)
		if err != nil {
			t.Fatal(err)
		}
		stats := func() [][]float32 {
			var out [][]float32
			for _, b := range tr.Weights().Buffers {
				out = append(out, tensors.MustCopyFlatData[float32](b))
			}
			return out
		}
		before := stats()
		var after [][][]float32
		for e := range 2 {
			if _, err := tr.TrainEpoch(context.Background(), split, e, nil); err != nil {
				t.Fatal(err)
			}
			after = append(after, stats())
		}
		changed := func(a, b [][]float32) bool {
			for i := range a {
				if !slices.Equal(a[i], b[i]) {
					return true
				}
			}
			return false
		}
		if !changed(before, after[0]) {
			t.Errorf("legacy %v: running statistics unchanged by the first epoch", legacy)
		}
		if got := changed(after[0], after[1]); got == legacy {
			t.Errorf("legacy %v: second epoch changed the running statistics: %v", legacy, got)
		}
		wantBatches := int64(2)
		if legacy {
			wantBatches = 1
		}
		for _, n := range tr.Weights().Batches {
			if n != wantBatches {
				t.Fatalf("legacy %v: num_batches_tracked %d, want %d", legacy, n, wantBatches)
			}
		}
	}
}

// sameFiles checks that each of files (paths relative to the two dirs) has
// the same bytes in dirA and dirB; what names the two in a failure.
func sameFiles(t *testing.T, dirA, dirB string, files []string, what string) {
	t.Helper()
	for _, f := range files {
		a, err1 := os.ReadFile(filepath.Join(dirA, f))
		b, err2 := os.ReadFile(filepath.Join(dirB, f))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", f, err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between %s", f, what)
		}
	}
}
