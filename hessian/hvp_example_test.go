package hessian_test

import (
	"context"
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/nn"
)

// The Hessian of a linear softmax classifier's loss on four points: its
// full operator (weight and bias) and the weight's diagonal block, their
// top eigenvalues and traces. (For a model of package models, use
// hessian.ModelClassifier(weights, train) instead of writing a Classifier.)
func ExampleModelHessian() {
	ctx := context.Background()
	be, err := backend.Open("") // $GOMLX_BACKEND, else the default
	if err != nil {
		panic(err)
	}
	c := &hessian.Classifier{
		Names: []string{"weight", "bias"},
		Values: []*tensors.Tensor{
			tensors.FromFlatDataAndDimensions([]float64{0.5, -0.2, 0.1, 0.3, -0.4, 0.2}, 3, 2),
			tensors.FromFlatDataAndDimensions([]float64{0, 0.1, -0.1}, 3),
		},
		Logits: func(p, _ []*Node, x *Node) *Node { return nn.Linear(x, p[0], p[1]) },
	}
	data := hessian.Data{
		X:     []float32{1, 0, 0, 1, -1, 1, 0.5, -2},
		Shape: []int{2},
		Y:     []int32{0, 1, 2, 1},
	}
	targets, err := c.Targets(hessian.FullTarget, "weight")
	if err != nil {
		panic(err)
	}
	h, err := hessian.NewModelHessian(be, c, data, targets, hessian.ModelHessianOptions{VectorsPerPass: 4})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	loss, err := h.Loss(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", loss)
	for i := range h.Len() {
		op := h.Operator(i)
		top, err := hessian.TopEigenvalues(ctx, op, hessian.TopKOptions{K: 2, Tol: 1e-10, Seed: 1})
		if err != nil {
			panic(err)
		}
		// Gaussian probes, many of them (the exact traces, from the closed
		// form (1/N) Σ Jᵀ(diag p − p pᵀ)J, are 1.79 and 1.19).
		tr, err := hessian.HutchinsonTrace(ctx, op, hessian.TraceOptions{Probes: 4000, Distribution: hessian.Gaussian, Seed: 1})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-6s dim %d: top %.4f, trace ≈ %.2f\n", h.Target(i).Name, op.Dim(), top.Values, tr.Estimate)
	}
	// Output:
	// loss 0.9727
	// full   dim 9: top [0.5607 0.5111], trace ≈ 1.80
	// weight dim 6: top [0.5283 0.4524], trace ≈ 1.19
}
