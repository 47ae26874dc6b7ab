package hessian

import (
	"context"
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"gonum.org/v1/gonum/mat"
)

// TestLeNetLayerTopKAgainstDense checks the Lanczos top eigenvalues of a
// real layer's Hessian — LeNet's conv1.weight (150 parameters) at the
// PyTorch fixture's weights, on the first 16 images of its subset, in
// float64 — against a dense eigendecomposition (gonum's EigenSym) of the
// same Hessian assembled column by column from 150 Hessian-vector products.
// The Ritz values must match the exact top eigenvalues, lie below them
// (Cauchy interlacing) and within their residual bounds.
func TestLeNetLayerTopKAgainstDense(t *testing.T) {
	const images = 16
	w, d := lenetFixture(t, dtypes.Float64)
	d.X, d.Y = d.X[:images*32*32], d.Y[:images]
	c := ModelClassifier(w, false)
	targets, err := c.Targets("conv1.weight")
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewModelHessian(backendT(t), c, d, targets, ModelHessianOptions{VectorsPerPass: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	op := h.Operator(0)
	n := op.Dim()
	if n != 150 {
		t.Fatalf("conv1.weight has %d parameters, want 6·1·5·5 = 150", n)
	}

	// Columns H e_j, six products a pass (150 = 25·6: one compiled shape).
	a := assemble(t, op, 6)
	if e := relDiff(a.T(), a); !(e <= 1e-12) {
		t.Errorf("assembled Hessian is not symmetric: ‖A−Aᵀ‖/‖A‖ = %.2g", e)
	}
	sym := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			sym.SetSym(i, j, (a.At(i, j)+a.At(j, i))/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(sym, false) {
		t.Fatal("eigendecomposition failed")
	}
	lambda := eig.Values(nil) // ascending
	scale := math.Max(math.Abs(lambda[0]), math.Abs(lambda[n-1]))
	if !(scale > 0) {
		t.Fatalf("Hessian of norm %g", scale)
	}

	const k = 4
	top, err := TopEigenvalues(context.Background(), op, TopKOptions{K: k, Tol: 1e-10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !top.Converged || len(top.Values) != k {
		t.Fatalf("top-%d: %d values, converged %v after %d steps", k, len(top.Values), top.Converged, top.Steps)
	}
	for i, v := range top.Values {
		want := lambda[n-1-i]
		if !(math.Abs(v-want) <= 1e-9*scale) {
			t.Errorf("λ%d: Lanczos %.12g, dense %.12g (|diff| %.2g, scale %.3g)", i, v, want, math.Abs(v-want), scale)
		}
		if !(v <= want+1e-12*scale) || !(math.Abs(v-want) <= top.Residuals[i]+1e-12*scale) {
			t.Errorf("λ%d: Ritz value %.15g, eigenvalue %.15g, residual bound %.2g: interlacing or the bound violated", i, v, want, top.Residuals[i])
		}
	}
	t.Logf("conv1.weight on %d images: dense top %.6g, %.6g, %.6g, %.6g (smallest %.3g); Lanczos %d steps, %d products",
		images, lambda[n-1], lambda[n-2], lambda[n-3], lambda[n-4], lambda[0], top.Steps, top.Applications)
}
