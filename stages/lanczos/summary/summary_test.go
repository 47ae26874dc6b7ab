package summary

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteMatchesTheRecordedForm(t *testing.T) {
	epoch := 1
	converged := true
	trace := 12.5
	for _, c := range []struct {
		name string
		s    Summary
		// want is the form the runner wrote before this package existed
		// (the quickstart's spectrum[epoch=1,layer=full]; with every
		// optional field, in the order docs/ARTIFACTS.md lists them).
		want string
	}{
		{"quickstart", Summary{Layer: "full", Dim: 61706, Model: "LeNet", Dataset: "FashionMNIST", Epoch: &epoch,
			Loss: 1.8180372714996338, HVPs: 96, LB: -1.894911954655975, UB: 16.208889803406535, Probes: 1, Steps: 64,
			DType: "float32", BNMode: "eval", Subset: Subset{PerClass: 10, Seed: 0, N: 100}, StreamSeed: "d37e7beec17c71e7"},
			`{
  "layer": "full",
  "dim": 61706,
  "model": "LeNet",
  "dataset": "FashionMNIST",
  "epoch": 1,
  "loss": 1.8180372714996338,
  "hvps": 96,
  "lb": -1.894911954655975,
  "ub": 16.208889803406535,
  "probes": 1,
  "steps": 64,
  "dtype": "float32",
  "bn_mode": "eval",
  "subset": {
    "per_class": 10,
    "seed": 0,
    "n": 100
  },
  "stream_seed": "d37e7beec17c71e7"
}
`},
		{"every field", Summary{Layer: "fc3.weight", Dim: 840, Model: "ONNX", Dataset: "custom", Loss: 0.5, HVPs: 10,
			LB: -1, UB: 2, Probes: 1, Steps: 4, TopEigenvalues: []float64{2, 1}, TopKSteps: 6, TopKConverged: &converged,
			Trace: &trace, TraceStdErr: json.RawMessage("null"), DType: "float64", BNMode: "train",
			Subset: Subset{PerClass: 1, Seed: 2, N: 3}, LossFunction: "mse", StreamSeed: "0000000000000001"},
			`{
  "layer": "fc3.weight",
  "dim": 840,
  "model": "ONNX",
  "dataset": "custom",
  "epoch": null,
  "loss": 0.5,
  "hvps": 10,
  "lb": -1,
  "ub": 2,
  "probes": 1,
  "steps": 4,
  "top_eigenvalues": [
    2,
    1
  ],
  "top_k_steps": 6,
  "top_k_converged": true,
  "trace": 12.5,
  "trace_stderr": null,
  "dtype": "float64",
  "bn_mode": "train",
  "subset": {
    "per_class": 1,
    "seed": 2,
    "n": 3
  },
  "loss_function": "mse",
  "stream_seed": "0000000000000001"
}
`},
	} {
		dir := t.TempDir()
		if err := Write(dir, c.s); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, File))
		if string(got) != c.want {
			t.Errorf("%s: wrote\n%s\nwant\n%s", c.name, got, c.want)
		}
		back, err := Read(dir)
		if err != nil || back.Layer != c.s.Layer || back.Subset != c.s.Subset || back.TopKSteps != c.s.TopKSteps {
			t.Errorf("%s: read back %+v, %v", c.name, back, err)
		}
	}
}
