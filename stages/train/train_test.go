package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/train/trainmeta"
	trainlib "github.com/hessian-spectra/runner/train"
)

const sample = "../../testdata/fashion-mnist-sample"

// params converts given params as the runner does (stage.Kind.Resolve).
func params(t *testing.T, given map[string]any) stage.Params {
	t.Helper()
	p, err := Kind.Resolve(given)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fetchArtifact writes the first nTrain and nTest images of the repository's
// FashionMNIST sample as a fetch artifact.
func fetchArtifact(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	info, err := datasets.Lookup("FashionMNIST")
	if err != nil {
		t.Fatal(err)
	}
	set, err := datasets.ReadDir(info, sample, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	set.Limit(nTrain, nTest)
	dir := t.TempDir()
	if err := set.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

type recorder struct{ starts []string }

func (r *recorder) Start(what string, total int) { r.starts = append(r.starts, what) }
func (r *recorder) Advance(int)                  {}
func (r *recorder) Finish()                      {}

func runKind(ctx context.Context, t *testing.T, given map[string]any, data string) (string, string, *recorder, error) {
	t.Helper()
	out := t.TempDir()
	var log bytes.Buffer
	rec := &recorder{}
	e := &stage.Env{ID: "train[seed=0]", Params: params(t, given), OutDir: out, RunDir: filepath.Join(out, "run"), Log: &log, Progress: rec, Backend: "go",
		Inputs: map[string][]stage.Artifact{"data": {{Dir: data, Stage: "data"}}}}
	os.Mkdir(e.RunDir, 0o777)
	err := Kind.Call(ctx, e)
	if err == nil && e.RunInfo["backend"] != "go" {
		t.Errorf("run info: %v, want backend go", e.RunInfo)
	}
	return out, log.String(), rec, err
}

func TestTrainKindWritesTheArtifact(t *testing.T) {
	data := fetchArtifact(t, 192, 100)
	out, log, rec, err := runKind(context.Background(), t, map[string]any{
		"model": "LeNet", "lr": 0.05, "epochs": 2, "batch_size": 64, "seed": 2,
		"htr": map[string]any{"start_epoch": 1, "freq": 2, "probes": 2, "params": []any{"weights"}},
	}, data)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log)
	}
	t.Logf("log:\n%s", log)
	if strings.Join(rec.starts, "|") != "epoch 1/2|evaluate 1/2|epoch 2/2|evaluate 2/2" {
		t.Errorf("progress units %q", rec.starts)
	}
	for _, f := range []string{"metrics.csv", "run/timings.csv", "meta.json",
		"checkpoints/epoch_0000.npz", "checkpoints/epoch_0000.optim.npz",
		"checkpoints/epoch_0001.npz", "checkpoints/epoch_0002.npz", "checkpoints/epoch_0002.optim.npz"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	meta, err := trainmeta.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, trainmeta.File))
	if meta.Model != "LeNet" || meta.Dataset != "FashionMNIST" || meta.InChannels != 1 || meta.Classes != 10 ||
		meta.ParamCount != 61706 || meta.Epochs != 2 || meta.Seed == nil || *meta.Seed != 2 || meta.DType != "float32" || strings.Contains(string(b), "backend") {
		t.Errorf("meta.json: %s", b)
	}
	if meta.Params["lr"] != 0.05 || meta.Params["htr"] == nil {
		t.Errorf("meta.json params: %v", meta.Params)
	}
	if strings.Contains(string(b), "/tmp") {
		t.Errorf("meta.json holds a local path: %s", b)
	}
	for _, want := range []string{"backend go", "epoch 1/2", "epoch 2/2", "penalised steps"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	checkWithNumpy(t, out)
}

// checkWithNumpy loads the artifact's tables and arrays with Debian's pandas
// and numpy: metrics.csv with numeric columns and an empty (NaN) penalty
// before HTR starts, and a checkpoint with PyTorch's names. Without them
// the test skips (fails in CI).
func checkWithNumpy(t *testing.T, dir string) {
	py := testenv.RequirePython(t, "pandas", "numpy")
	script := `
import sys, numpy as np, pandas as pd
d = sys.argv[1]
m = pd.read_csv(d + "/metrics.csv")
assert list(m.columns) == ["epoch","lr","train_loss","train_acc","test_loss","test_acc","penalty"], m.columns
assert all(m[c].dtype.kind in "if" for c in m.columns), m.dtypes
assert list(m.epoch) == [1, 2] and np.isnan(m.penalty[0]) and not np.isnan(m.penalty[1]), m
t = pd.read_csv(d + "/run/timings.csv")
assert list(t.columns) == ["epoch","train_seconds","eval_seconds"], t.columns
w = np.load(d + "/checkpoints/epoch_0002.npz")
assert w["conv1.weight"].shape == (6, 1, 5, 5) and w["fc3.bias"].dtype == np.float32, dict(w)
o = np.load(d + "/checkpoints/epoch_0002.optim.npz")
assert o["fc1.weight.momentum_buffer"].shape == (120, 400), list(o.keys())
assert len(np.load(d + "/checkpoints/epoch_0000.optim.npz").files) == 0
`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Errorf("numpy/pandas check failed: %v\n%s", err, out)
	}
}

func TestTrainKindFailsOnNaN(t *testing.T) {
	data := fetchArtifact(t, 256, 10)
	_, log, _, err := runKind(context.Background(), t, map[string]any{
		"model": "LeNet", "lr": 1e8, "epochs": 1, "batch_size": 32}, data)
	if err == nil {
		t.Fatal("no error")
	}
	if msg := err.Error(); strings.Contains(msg, "train[seed=0]") || !strings.Contains(msg, "epoch 1 step ") ||
		!strings.Contains(msg, "loss is") {
		t.Errorf("error %q should name the epoch and the step, and leave the stage id to the runner", msg)
	}
	if !strings.Contains(log, "stopped at step") {
		t.Errorf("log:\n%s", log)
	}
}

func TestTrainKindCancelled(t *testing.T) {
	data := fetchArtifact(t, 64, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _, err := runKind(ctx, t, map[string]any{"model": "LeNet", "lr": 0.01, "epochs": 1}, data)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestTrainKindRejectsBadSettings(t *testing.T) {
	data := fetchArtifact(t, 64, 10)
	for _, tc := range []struct {
		given map[string]any
		want  string
	}{
		{map[string]any{"model": "LeNet", "lr": 0.01, "epochs": 1, "htr": map[string]any{"params": []any{"conv7.weight"}}}, `"conv7.weight"`},
		{map[string]any{"model": "LeNet", "lr": 0.01, "epochs": 1, "momentum": 0.0, "nesterov": true}, "Nesterov"},
		{map[string]any{"model": "LeNet", "lr": 0.01, "epochs": 1, "optimizer": "adam", "betas": []any{0.9}}, "betas"},
	} {
		_, _, _, err := runKind(context.Background(), t, tc.given, data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %s", tc.given, err, tc.want)
		}
	}
}

// TestConfig checks the mapping from params to the library's configuration.
func TestConfig(t *testing.T) {
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(params(t, map[string]any{"model": "LeNet", "lr": 0.01, "epochs": 400, "momentum": 0.0,
		"weight_decay": 1e-5, "milestones": []any{250, 350}, "seed": 4, "dtype": "float64", "legacy": true,
		"htr": map[string]any{}}), m)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Optimizer != (trainlib.Optimizer{Name: "sgd", LR: 0.01, WeightDecay: 1e-5}) {
		t.Errorf("optimizer %+v", cfg.Optimizer)
	}
	if cfg.Epochs != 400 || cfg.BatchSize != 256 || cfg.Seed != 4 || cfg.DType.String() != "Float64" || !cfg.Legacy ||
		cfg.SnapshotEvery != 1 || len(cfg.Schedule.Milestones) != 2 || cfg.Schedule.Gamma != 0.1 {
		t.Errorf("config %+v", cfg)
	}
	// An empty htr mapping is the seed's default flags.
	if h := cfg.HTR; h.Gamma != 1e-3 || h.StartEpoch != 15 || h.Freq != 50 || h.Probes != 10 ||
		h.Distribution != "rademacher" || len(h.Params) != 1 || h.Params[0] != "all" {
		t.Errorf("htr %+v", h)
	}
	adam, err := Config(params(t, map[string]any{"model": "LeNet", "lr": 1e-3, "epochs": 1, "optimizer": "adam"}), m)
	if err != nil || adam.Optimizer != trainlib.Adam(1e-3) || adam.HTR.Enabled() {
		t.Errorf("adam config %+v", adam)
	}
}
