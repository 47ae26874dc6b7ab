package stages_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/stages"
)

// repoRoot is where relative paths in specs resolve, as the runner resolves
// them when started in the repository.
const repoRoot = ".."

// planErrors parses src with the real stage kinds and returns its problems,
// one "line:col: message" each.
func planErrors(t *testing.T, src string) []string {
	t.Helper()
	_, err := pipelines.Parse("spec.yaml", []byte(src), pipelines.Options{Registry: stages.Registry(), BaseDir: repoRoot})
	var out []string
	for _, e := range pipelines.Errors(err) {
		out = append(out, strings.TrimPrefix(e.Error(), "spec.yaml:"))
	}
	return out
}

const checkedData = `
stages:
  data: {kind: fetch, with: {dataset: FashionMNIST, source: dir, path: testdata/fashion-mnist-sample}}
  train:
    kind: train
    needs: {data: data}
    with: {model: LeNet, lr: 0.01, epochs: 2, snapshot_every: 2}
  snap: {kind: snapshot, needs: {train: train}, with: {epoch: 2}}
`

// TestPlanTimeChecks: what would fail only after the training upstream is
// reported when the spec is read, at the position of the param at fault.
func TestPlanTimeChecks(t *testing.T) {
	cases := []struct {
		name, extra string
		want        []string
	}{
		{"layer the model lacks", `
  spectrum: {kind: lanczos, needs: {weights: snap, data: data}, with: {layer: conv9.weight}}`,
			[]string{`10:79: spectrum: param layer: LeNet has no parameter "conv9.weight" (did you mean "conv1.weight"?); its layers: conv1.weight, conv2.weight, fc1.weight, fc2.weight, fc3.weight, or full`}},
		{"epoch never checkpointed", `
  early: {kind: snapshot, needs: {train: train}, with: {epoch: 1}}
  late: {kind: snapshot, needs: {train: train}, with: {epoch: 7}}`,
			[]string{
				"10:64: early: param epoch: input train (train) will have no checkpoint of epoch 1: it trains 2 epochs with snapshot_every 2 and keeps epochs 0, 2",
				"11:63: late: param epoch: input train (train) will have no checkpoint of epoch 7: it trains 2 epochs with snapshot_every 2 and keeps epochs 0, 2"}},
		{"fetch into snapshot's train", `
  wrong: {kind: snapshot, needs: {train: data}, with: {epoch: 1}}`,
			[]string{"10:42: needs train: data is a fetch stage, but input train of kind snapshot takes a train stage"}},
		{"train into lanczos's data", `
  spectrum: {kind: lanczos, needs: {weights: snap, data: train}}`,
			[]string{"10:58: needs data: train is a train stage, but input data of kind lanczos takes a fetch stage"}},
		{"bounds", `
  zero: {kind: train, needs: {data: data}, with: {model: LeNet, lr: 0, epochs: 1, htr: {gamma: -1}}}
  grid: {kind: lanczos, needs: {weights: snap, data: data}, with: {grid: 1e10, steps: 100000, probes: 20000}}`,
			[]string{
				"10:69: param lr: 0 is not above 0",
				"10:88: param htr: gamma: -1 is below the minimum 0",
				"11:74: param grid: 10000000000 is above the maximum 1048576",
				"11:87: param steps: 100000 is above the maximum 10000",
				"11:103: param probes: 20000 is above the maximum 10000"}},
		{"top_k beyond the layer", `
  spectrum: {kind: lanczos, needs: {weights: snap, data: data}, with: {layer: conv1.weight, top_k: 200}}`,
			[]string{"10:100: spectrum: param top_k: 200 exceeds the dimension 150 of layer conv1.weight"}},
		{"ONNX model with an unconverted op", `
  onnx: {kind: snapshot, with: {path: testdata/onnx/unsupported.onnx}}`,
			[]string{"10:39: onnx: param path: ../testdata/onnx/unsupported.onnx: unsupported ONNX op Resize (1 node)"}},
		{"ONNX model with state_dict params", `
  onnx: {kind: snapshot, with: {path: testdata/onnx/lenet.onnx, classes: 10}}`,
			[]string{"10:74: onnx: param classes: for state_dict imports only; an ONNX model (lenet.onnx) defines its own network"}},
		{"layer the ONNX model lacks", `
  onnx: {kind: snapshot, with: {path: testdata/onnx/lenet.onnx}}
  spectrum: {kind: lanczos, needs: {weights: onnx, data: data}, with: {layer: fc9.weight}}`,
			[]string{`11:79: spectrum: param layer: the ONNX model lenet.onnx has no parameter "fc9.weight" (did you mean "fc1.weight"?); its layers: conv1.weight, conv2.weight, fc1.weight, fc2.weight, fc3.weight, or full`}},
		{"HTR tensor the model lacks", `
  htr: {kind: train, needs: {data: data}, with: {model: LeNet, lr: 0.1, epochs: 1, htr: {params: [conv7.weight]}}}`,
			[]string{"10:3: htr: train: htr params: LeNet has no parameter \"conv7.weight\""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := planErrors(t, checkedData+c.extra)
			if len(got) != len(c.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestPlanTimeMemoryCheck: a Lanczos stage whose vectors cannot fit in this
// machine's memory is refused when the spec is read.
func TestPlanTimeMemoryCheck(t *testing.T) {
	got := planErrors(t, checkedData+`
  vgg: {kind: snapshot, with: {path: testdata/lenet-fmnist/weights.npz, model: VGG11, in_channels: 1, classes: 10}}
  spectrum: {kind: lanczos, needs: {weights: vgg, data: data}, with: {steps: 5000, reorthogonalize: full}}`)
	if len(got) != 1 || !strings.HasPrefix(got[0], "11:3: spectrum: needs about ") || !strings.Contains(got[0], "of this machine's") {
		t.Errorf("memory check: %q", got)
	}
}

// TestSpecsPassChecks: every spec in specs/ passes the plan-time checks
// (the paper's full-size ones included).
func TestSpecsPassChecks(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "specs", "*.yaml"))
	if len(files) < 10 {
		t.Fatalf("found %d specs", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pipelines.Parse(f, src, pipelines.Options{Registry: stages.Registry(), BaseDir: repoRoot}); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}
