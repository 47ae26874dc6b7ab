package hessian_test

import (
	"context"
	"fmt"

	"github.com/hessian-spectra/runner/hessian"
	"gonum.org/v1/gonum/mat"
)

// A 100×100 diagonal matrix with eigenvalues 1, 2, …, 100: its top
// eigenvalues, its trace, and the seed's density.
func Example() {
	ctx := context.Background()
	diag := make([]float64, 100)
	for i := range diag {
		diag[i] = float64(i + 1)
	}
	a := mat.NewSymDense(100, nil)
	for i, v := range diag {
		a.SetSym(i, i, v)
	}
	op := hessian.Dense{A: a}

	top, err := hessian.TopEigenvalues(ctx, op, hessian.TopKOptions{K: 3, Tol: 1e-10, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("top 3: %.6f (converged %v)\n", top.Values, top.Converged)

	tr, err := hessian.HutchinsonTrace(ctx, op, hessian.TraceOptions{Probes: 10, Seed: 1})
	if err != nil {
		panic(err)
	}
	// Rademacher probes are exact for a diagonal matrix: zᵢ² = 1.
	fmt.Printf("trace: %.1f ± %.1f\n", tr.Estimate, tr.StdErr)

	d, err := hessian.SpectralDensity(ctx, op, hessian.DefaultDensityOptions())
	if err != nil {
		panic(err)
	}
	fmt.Printf("density: %d points on [%.2f, %.2f], %d products\n", len(d.Grid), d.Grid[0], d.Grid[len(d.Grid)-1], d.Applications)
	// Output:
	// top 3: [100.000000 99.000000 98.000000] (converged true)
	// trace: 5050.0 ± 0.0
	// density: 1024 points on [-3.95, 104.95], 192 products
}
