package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/fakekinds"
)

// TestLayers lists an ONNX model's parameters, and names the ops of one it
// cannot import.
func TestLayers(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"layers", "../../testdata/onnx/lenet.onnx"}, fakekinds.Registry(), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"input x [batch, 1, 32, 32], output logits [batch, 10]",
		"ops: Conv 2, Flatten 1, Gemm 3, MaxPool 2, Relu 4",
		"conv1.weight  [6 1 5 5]   150    layer  Conv input 1",
		"fc3.bias      [10]        10            Gemm input 2",
		"61706 parameters in 10 tensors; lanczos layer: full, or any PARAM above",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"layers", "../../testdata/onnx/unsupported.onnx"}, fakekinds.Registry(), &out, &errOut); code != exitFailed {
		t.Errorf("exit %d for a model with an unsupported op", code)
	}
	if got := errOut.String(); !strings.Contains(got, "unsupported ONNX op Resize (1 node)") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr %q, want one line naming Resize", got)
	}
}
