package onnxmodel

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/nn"
)

// TestHVPsMatchPyTorch checks networks with no native counterpart against
// PyTorch's double-backward Hessian-vector products on the same batch:
// every parameter alone and the full network, in float64 (from the
// float64 export, 1e-9 relative) and float32 (from the float32 export,
// 1e-4). "mixed" has batch norm (also in training mode), a residual Add,
// grouped, strided and asymmetric convolutions, padded max pooling,
// average pooling with and without padding, SiLU, LeakyReLU, GELU,
// dropout, a Shape → Reshape chain, and is also checked with the MSE loss;
// "zoo" has the other converted ops (see make_fixtures.py), and is also
// exported at opset 17, where LayerNorm is a LayerNormalization op.
func TestHVPsMatchPyTorch(t *testing.T) {
	for _, net := range []string{"mixed", "zoo"} {
		ref := readNPZ(t, fixtures+net+"_ref.npz")
		d := data(t, ref)
		for _, tc := range []struct {
			suffix string
			dtype  dtypes.DType
			tol    float64
		}{{"64", dtypes.Float64, 1e-9}, {"32", dtypes.Float32, 1e-4}, {"64_opset17", dtypes.Float64, 1e-9}} {
			if net == "mixed" && tc.suffix == "64_opset17" {
				continue
			}
			t.Run(net+tc.suffix, func(t *testing.T) {
				m := open(t, net+tc.suffix+".onnx")
				w, err := m.Weights(tc.dtype)
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				check := func(c *hessian.Classifier, prefix, target string) {
					v := get(t, ref, prefix+"v:"+target).Float64s()
					want := get(t, ref, prefix+"hv:"+target).Float64s()
					loss, got := hvp(t, c, d, target, v)
					e := relErr(got, want)
					if !(e <= tc.tol) {
						t.Errorf("%s%s: H·v relative error %.3g > %g", prefix, target, e, tc.tol)
					}
					worst = max(worst, e)
					if wantLoss := get(t, ref, prefix+"loss").Float64s()[0]; !(math.Abs(loss-wantLoss) <= tc.tol*math.Abs(wantLoss)) {
						t.Errorf("%sloss %.17g, PyTorch %.17g", prefix, loss, wantLoss)
					}
				}
				c := w.Classifier(false)
				for _, target := range append(slices.Clone(c.Names), hessian.FullTarget) {
					check(c, "", target)
				}
				if net == "mixed" {
					// Batch norm in training mode: the batch's statistics,
					// with gradients through them.
					ct := w.Classifier(true)
					for _, target := range []string{"conv1.weight", "bn2.weight", hessian.FullTarget} {
						check(ct, "train/", target)
					}
					// MSE against one-hot labels.
					c.Loss = nn.MeanSquaredError
					for _, target := range []string{"fc2.weight", hessian.FullTarget} {
						check(c, "mse/", target)
					}
				}
				t.Logf("largest relative error %.3g", worst)
			})
		}
	}
}

// TestMLPOnTabularData checks a network on non-image inputs ([N, 6]).
func TestMLPOnTabularData(t *testing.T) {
	m := open(t, "mlp.onnx")
	if got := m.InputShape(); len(got) != 1 || got[0] != 6 {
		t.Errorf("input shape %v, want [6]", got)
	}
	w, err := m.Weights(dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	ref := readNPZ(t, fixtures+"mlp_ref.npz")
	d := data(t, readNPZ(t, fixtures+"tabular.npz"))
	loss, got := hvp(t, w.Classifier(false), d, "full", get(t, ref, "v:full").Float64s())
	if e := relErr(got, get(t, ref, "hv:full").Float64s()); !(e <= 1e-9) {
		t.Errorf("H·v relative error %.3g", e)
	}
	if want := get(t, ref, "loss").Float64s()[0]; !(math.Abs(loss-want) <= 1e-12*want) {
		t.Errorf("loss %.17g, PyTorch %.17g", loss, want)
	}
}

// TestOpenReportsUnsupportedOps names the op without a conversion.
func TestOpenReportsUnsupportedOps(t *testing.T) {
	_, err := Open(fixtures + "unsupported.onnx")
	if err == nil || !strings.Contains(err.Error(), "unsupported ONNX op Resize (1 node)") {
		t.Fatalf("got %v, want an error naming Resize", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans several lines: %q", err)
	}
}
