package snapshot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/snapshot/snapmeta"
	trainlib "github.com/hessian-spectra/runner/train"
)

const fixture = "../../testdata/lenet-fmnist/weights.npz"

// params converts given params as the runner does (stage.Kind.Resolve).
func params(t *testing.T, given map[string]any) stage.Params {
	t.Helper()
	p, err := Kind.Resolve(given)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runKind(t *testing.T, given map[string]any, trainDir string) (string, error) {
	t.Helper()
	out := t.TempDir()
	e := &stage.Env{ID: "snap", Params: params(t, given), OutDir: out, Log: &bytes.Buffer{},
		Inputs: map[string][]stage.Artifact{}}
	if trainDir != "" {
		e.Inputs["train"] = []stage.Artifact{{Dir: trainDir, Stage: "train[seed=1]"}}
	}
	return out, Kind.Call(context.Background(), e)
}

func readMeta(t *testing.T, dir string) *snapmeta.Meta {
	t.Helper()
	m, err := snapmeta.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestImportPyTorchFixture imports the PyTorch-made LeNet checkpoint: every
// tensor comes out with the same name, shape and values.
func TestImportPyTorchFixture(t *testing.T) {
	abs, _ := filepath.Abs(fixture)
	out, err := runKind(t, map[string]any{"path": abs, "model": "LeNet", "in_channels": 1, "classes": 10}, "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := npz.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	got, err := npz.ReadFile(filepath.Join(out, snapmeta.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, []string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
		"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"}) {
		t.Errorf("names %v", got.Names)
	}
	for _, n := range src.Names {
		a, b := src.Arrays[n], got.Arrays[n]
		if b == nil || !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.Float32s(), b.Data.([]float32)) {
			t.Errorf("%s differs from the fixture", n)
		}
	}
	m := readMeta(t, out)
	if m.Model != "LeNet" || m.InChannels != 1 || m.Classes != 10 || m.Epoch != nil || m.Source != "weights.npz" {
		t.Errorf("meta %+v", m)
	}
}

func TestImportMismatchNamesTheTensor(t *testing.T) {
	abs, _ := filepath.Abs(fixture)
	for _, tc := range []struct {
		given map[string]any
		want  []string
	}{
		{map[string]any{"path": abs, "model": "LeNet", "in_channels": 1, "classes": 11}, []string{`"fc3.weight" is [10 84], want [11 84]`, `"fc3.bias"`}},
		{map[string]any{"path": abs, "model": "LeNet", "in_channels": 3, "classes": 10}, []string{`"conv1.weight" is [6 1 5 5], want [6 3 5 5]`}},
		{map[string]any{"path": abs, "model": "VGG11", "in_channels": 1, "classes": 10}, []string{`missing "features.0.weight"`, `unexpected "conv1.weight"`}},
		{map[string]any{"path": abs, "model": "LeNet", "in_channels": 1}, []string{"needs param classes"}},
	} {
		_, err := runKind(t, tc.given, "")
		if err == nil {
			t.Errorf("%v: no error", tc.given)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.given, err, w)
			}
		}
	}
}

// fakeTrainRun writes a train artifact's meta.json and checkpoints of the
// given epochs (initialisations with different seeds, so they differ).
func fakeTrainRun(t *testing.T, epochs ...int) string {
	t.Helper()
	dir := t.TempDir()
	m, err := models.New(models.LeNet, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, trainlib.CheckpointsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range epochs {
		w, err := m.Init(uint64(e), dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFile(trainlib.CheckpointPath(dir, e)); err != nil {
			t.Fatal(err)
		}
		if err := npz.WriteFile(trainlib.OptimizerPath(dir, e), nil); err != nil {
			t.Fatal(err)
		}
	}
	meta := `{"model": "LeNet", "dataset": "FashionMNIST", "in_channels": 1, "classes": 10, "epochs": 4}`
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExtractEpoch(t *testing.T) {
	run := fakeTrainRun(t, 0, 2, 4)
	out, err := runKind(t, map[string]any{"epoch": 2}, run)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(trainlib.CheckpointPath(run, 2))
	got, _ := os.ReadFile(filepath.Join(out, snapmeta.WeightsFile))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Error("weights.npz is not epoch 2's checkpoint")
	}
	m := readMeta(t, out)
	if m.Model != "LeNet" || m.InChannels != 1 || m.Classes != 10 || m.Epoch == nil || *m.Epoch != 2 || m.Source != "train[seed=1]" {
		t.Errorf("meta %+v", m)
	}
	_, err = runKind(t, map[string]any{"epoch": 3}, run)
	if err == nil || !strings.Contains(err.Error(), "no checkpoint of epoch 3") || !strings.Contains(err.Error(), "epochs 0, 2, 4") {
		t.Errorf("missing epoch: error %v, want one listing epochs 0, 2, 4", err)
	}
}

func TestBadCombinations(t *testing.T) {
	run := fakeTrainRun(t, 0)
	abs, _ := filepath.Abs(fixture)
	for _, tc := range []struct {
		given map[string]any
		train string
		want  string
	}{
		{map[string]any{}, "", "nothing to snapshot"},
		{map[string]any{}, run, "needs param epoch"},
		{map[string]any{"epoch": 0, "path": abs}, run, "not both"},
		{map[string]any{"epoch": 0, "model": "LeNet"}, run, "only for imports"},
		{map[string]any{"epoch": 0, "path": abs, "model": "LeNet", "in_channels": 1, "classes": 10}, "", "an import (path) has no epoch"},
	} {
		_, err := runKind(t, tc.given, tc.train)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v (train %q): error %v, want %q", tc.given, tc.train, err, tc.want)
		}
	}
}

// TestExtractChecksTheCheckpoint: a checkpoint that is not the training
// run's model (damaged, or written by something else) fails here, naming
// the epoch and the tensor, instead of reaching a later stage.
func TestExtractChecksTheCheckpoint(t *testing.T) {
	run := fakeTrainRun(t, 0, 2)
	vgg, err := models.New(models.VGG11, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Epoch 2's file holds another model's tensors.
	wrong := filepath.Join(t.TempDir(), "wrong.npz")
	w, _ := vgg.Init(1, dtypes.Float32)
	if err := w.WriteFile(wrong); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(wrong)
	os.WriteFile(trainlib.CheckpointPath(run, 2), data, 0o644)
	_, err = runKind(t, map[string]any{"epoch": 2}, run)
	if err == nil || !strings.Contains(err.Error(), "checkpoint of epoch 2") || !strings.Contains(err.Error(), `"conv1.weight"`) {
		t.Errorf("foreign checkpoint: %v", err)
	}
	// Epoch 0's file is truncated.
	p := trainlib.CheckpointPath(run, 0)
	data, _ = os.ReadFile(p)
	os.WriteFile(p, data[:len(data)/2], 0o644)
	if _, err = runKind(t, map[string]any{"epoch": 0}, run); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("truncated checkpoint: %v (want one line)", err)
	}
}
