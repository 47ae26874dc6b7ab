package hessian

import (
	"fmt"
	"math"
)

// TopKOptions configures TopEigenvalues: the K largest eigenvalues by
// Lanczos with full reorthogonalisation, grown until they converge.
type TopKOptions struct {
	// K is the number of eigenvalues wanted, 1 ≤ K ≤ dim.
	K int
	// Tol is the relative convergence tolerance: Ritz pair i has converged
	// when its residual bound |β_m s_{m,i}| ≤ Tol·max(1, |θ_i|). An operator
	// with rounding error ε‖A‖ (a float32 Hessian-vector product: ε ≈ 1e-7)
	// limits the accuracy to about that, whatever Tol.
	Tol float64
	// MaxSteps caps the Krylov dimension; 0 means min(dim, 1000). The run
	// keeps MaxSteps vectors: 8·MaxSteps·dim bytes.
	MaxSteps int
	// Seed selects the start vector (stream StreamTopK).
	Seed uint64
	// Vectors asks for the Ritz vectors of the returned values.
	Vectors bool
}

// DefaultTopKOptions returns K = k, Tol = 1e-6, MaxSteps 0 (min(dim, 1000)).
func DefaultTopKOptions(k int) TopKOptions { return TopKOptions{K: k, Tol: 1e-6} }

func (o TopKOptions) validate(dim int) error {
	switch {
	case o.K < 1 || o.K > dim:
		return fmt.Errorf("top-k: k = %d: want 1 ≤ k ≤ dimension %d", o.K, dim)
	case !(o.Tol > 0) || math.IsInf(o.Tol, 0):
		return fmt.Errorf("top-k: tolerance %g: want a finite value > 0", o.Tol)
	case o.MaxSteps != 0 && o.MaxSteps < o.K:
		return fmt.Errorf("top-k: max steps %d: want 0 (automatic) or ≥ k = %d", o.MaxSteps, o.K)
	}
	return nil
}

// maxSteps resolves MaxSteps for an operator of dimension dim.
func (o TopKOptions) maxSteps(dim int) int {
	if o.MaxSteps > 0 {
		return min(o.MaxSteps, dim)
	}
	return max(min(dim, 1000), o.K)
}

// TopK is the outcome of TopEigenvalues.
//
// Each value is a Ritz value of the Krylov space, so by Cauchy interlacing
// Values[i] ≤ λ_i (the i-th largest eigenvalue of A), and an eigenvalue of A
// lies within Residuals[i] of Values[i]. For a simple, separated eigenvalue
// the error is even smaller, about Residuals[i]²/gap.
//
// What "converged" means for a repeated eigenvalue: the Krylov space of one
// start vector meets an eigenspace in one direction only (exact arithmetic),
// so single-vector Lanczos finds a multiple eigenvalue once; further copies
// appear only as rounding error seeds the rest of the eigenspace, or after a
// breakdown restart. Converged values are therefore always within their
// residual of true eigenvalues and never above λ_i, but a multiple
// eigenvalue may be listed fewer times than its multiplicity, the next
// distinct eigenvalues taking its places. (In the tests, a triple top
// eigenvalue of a 1,500-dimensional matrix appears twice after 39 steps;
// a space that becomes invariant restarts and finds each distinct value
// once more.)
type TopK struct {
	// Values are the K largest Ritz values, descending.
	Values []float64
	// Residuals are their residual bounds |β_m s_{m,i}|.
	Residuals []float64
	// Vectors, when asked for, are the unit Ritz vectors V s_i, in the
	// order of Values.
	Vectors [][]float64
	// Steps is the final Krylov dimension m.
	Steps int
	// Converged reports that every residual met the tolerance; false when
	// MaxSteps was reached first.
	Converged bool
	// Applications counts the operator applications used (= Steps).
	Applications int
}

// topKJob grows one fully reorthogonalised Lanczos run until the K largest
// Ritz pairs converge.
type topKJob struct {
	o         TopKOptions
	n         int
	r         *recurrence
	lastCheck int
	result    *TopK
}

func (j *topKJob) start() {
	v := make([]float64, j.n)
	gaussianUnit(v, newRand(j.o.Seed, StreamTopK))
	j.r = newRecurrence(v, j.o.maxSteps(j.n), ReorthFull)
	restarts := uint64(0)
	j.r.restart = func(v []float64) {
		restarts++
		gaussianUnit(v, newRand(j.o.Seed, StreamTopK+restarts))
	}
}

func (j *topKJob) next() (src, dst []float64) { return j.r.next() }

// accept takes one step and checks convergence every max(1, m/16) steps
// once m ≥ K (each check decomposes the m×m tridiagonal: O(m³)).
func (j *topKJob) accept() (bool, error) {
	if err := j.r.accept(); err != nil {
		return false, fmt.Errorf("top-k: %w", err)
	}
	m := j.r.t.Steps()
	if !j.r.done && (m < j.o.K || m-j.lastCheck < max(1, m/16)) {
		return false, nil
	}
	j.lastCheck = m
	ritz, err := j.r.t.Eigen()
	if err != nil {
		return false, fmt.Errorf("top-k: %w", err)
	}
	k := min(j.o.K, m) // < K only if the space is invariant and smaller than K
	res := &TopK{Steps: m, Applications: m, Converged: k == j.o.K}
	for i := range k {
		c := m - 1 - i
		res.Values = append(res.Values, ritz.Values[c])
		res.Residuals = append(res.Residuals, ritz.Residuals[c])
		if ritz.Residuals[c] > j.o.Tol*max(1, math.Abs(ritz.Values[c])) {
			res.Converged = false
		}
	}
	if !res.Converged && !j.r.done {
		return false, nil
	}
	if j.o.Vectors {
		for i := range k {
			y := make([]float64, j.n)
			for b, v := range j.r.basis[:m] {
				axpy(y, ritz.S.At(b, m-1-i), v)
			}
			res.Vectors = append(res.Vectors, y)
		}
	}
	j.result = res
	j.r.release()
	return true, nil
}
