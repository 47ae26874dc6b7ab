package trainmeta

import (
	"os"
	"path/filepath"
	"testing"
)

// golden is the meta.json of the quickstart's train stage as the runner
// wrote it before this package existed: the form, field order included,
// that the artifact's digest covers.
const golden = `{
  "model": "LeNet",
  "dataset": "FashionMNIST",
  "in_channels": 1,
  "classes": 10,
  "param_count": 61706,
  "epochs": 5,
  "seed": 0,
  "dtype": "float32",
  "params": {
    "batch_size": 64,
    "betas": [
      0.9,
      0.999
    ],
    "dampening": 0,
    "dtype": "float32",
    "epochs": 5,
    "eps": 1e-8,
    "eval_batch_size": 500,
    "legacy": false,
    "lr": 0.01,
    "lr_gamma": 0.1,
    "milestones": [],
    "model": "LeNet",
    "momentum": 0.9,
    "nesterov": false,
    "optimizer": "sgd",
    "seed": 0,
    "snapshot_every": 1,
    "weight_decay": 0
  }
}
`

func TestWriteMatchesTheRecordedForm(t *testing.T) {
	dir := t.TempDir()
	seed := int64(0)
	m := Meta{Model: "LeNet", Dataset: "FashionMNIST", InChannels: 1, Classes: 10, ParamCount: 61706, Epochs: 5,
		Seed: &seed, DType: "float32", Params: map[string]any{
			"batch_size": 64, "betas": []float64{0.9, 0.999}, "dampening": 0.0, "dtype": "float32", "epochs": 5,
			"eps": 1e-8, "eval_batch_size": 500, "legacy": false, "lr": 0.01, "lr_gamma": 0.1, "milestones": []int{},
			"model": "LeNet", "momentum": 0.9, "nesterov": false, "optimizer": "sgd", "seed": 0, "snapshot_every": 1,
			"weight_decay": 0.0}}
	if err := Write(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil || string(got) != golden {
		t.Fatalf("wrote (%v)\n%s\nwant\n%s", err, got, golden)
	}
	back, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Model != "LeNet" || back.Epochs != 5 || back.Seed == nil || *back.Seed != 0 || back.Params["lr"] != 0.01 {
		t.Errorf("read back %+v", back)
	}
}

// A meta.json without a seed (not written by the train stage) reads as a
// nil Seed, so that tables do not pair it with seed 0.
func TestReadWithoutSeed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, File), []byte(`{"model": "LeNet", "epochs": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Read(dir)
	if err != nil || m.Seed != nil || m.Model != "LeNet" {
		t.Fatalf("read %+v, %v", m, err)
	}
	if _, err := Read(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("missing meta.json: %v", err)
	}
}
