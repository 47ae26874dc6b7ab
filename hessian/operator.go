package hessian

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Operator is a symmetric linear operator on float64 vectors: a Hessian, one
// layer's block of it, or a matrix in a test.
//
// Apply sets dst = A·src. len(dst) = len(src) = Dim(); dst and src never
// alias; Apply must not modify src nor keep either slice after it returns.
// It returns an error (never panics) when the product cannot be computed, and
// should return ctx.Err() promptly once ctx is cancelled. An operator that
// computes in float32 converts at this boundary: the estimators of this
// package always work in float64.
type Operator interface {
	Dim() int
	Apply(ctx context.Context, dst, src []float64) error
}

// BatchOperator is an Operator that can apply itself to several vectors in
// one call more cheaply than one at a time (e.g. several Hessian-vector
// products in one graph execution). ApplyBatch sets dst[k] = A·src[k] for
// every k, under the same rules as Apply. The estimators find it by type
// assertion and then run independent Lanczos recurrences (probes, the
// bounds run, Hutchinson probes) in lockstep.
type BatchOperator interface {
	Operator
	ApplyBatch(ctx context.Context, dst, src [][]float64) error
}

// Group is a set of operators that can be applied together in one call more
// cheaply than one by one, e.g. the full Hessian and each layer's Hessian of
// one snapshot, which share a forward and a first backward pass. Run drives
// every operator of a group in lockstep: each round it makes one ApplyGroup
// call with the next vector of every active recurrence.
type Group interface {
	// Len is the number of operators in the group.
	Len() int
	// Dim is the dimension of operator i.
	Dim(i int) int
	// ApplyGroup sets dst[k] = A_{which[k]}·src[k] for every k, under the
	// rules of Operator.Apply. The same operator may appear several times
	// in which.
	ApplyGroup(ctx context.Context, which []int, dst, src [][]float64) error
}

// NewGroup returns the Group of ops applied one by one (or through
// ApplyBatch for each run of consecutive requests to the same
// BatchOperator).
func NewGroup(ops ...Operator) Group { return opGroup(ops) }

// opGroup is NewGroup's Group.
type opGroup []Operator

func (g opGroup) Len() int      { return len(g) }
func (g opGroup) Dim(i int) int { return g[i].Dim() }
func (g opGroup) batches() bool { // whether batching several vectors saves anything
	for _, op := range g {
		if _, ok := op.(BatchOperator); ok {
			return true
		}
	}
	return false
}

func (g opGroup) ApplyGroup(ctx context.Context, which []int, dst, src [][]float64) error {
	if len(dst) != len(which) || len(src) != len(which) {
		return fmt.Errorf("apply group: %d operator indices, %d destinations, %d sources", len(which), len(dst), len(src))
	}
	for _, i := range which {
		if i < 0 || i >= len(g) {
			return fmt.Errorf("apply group: operator %d of a group of %d", i, len(g))
		}
	}
	for k := 0; k < len(which); {
		op := g[which[k]]
		end := k + 1
		if bop, ok := op.(BatchOperator); ok {
			for end < len(which) && which[end] == which[k] {
				end++
			}
			if err := bop.ApplyBatch(ctx, dst[k:end], src[k:end]); err != nil {
				return err
			}
		} else if err := op.Apply(ctx, dst[k], src[k]); err != nil {
			return err
		}
		k = end
	}
	return nil
}

// Dense is the Operator of a symmetric matrix held in memory, for tests and
// for brute-force checks of other operators on small problems.
type Dense struct {
	A mat.Symmetric
}

// Dim returns the order of the matrix.
func (d Dense) Dim() int { return d.A.SymmetricDim() }

// Apply sets dst = A·src.
func (d Dense) Apply(ctx context.Context, dst, src []float64) error {
	n := d.Dim()
	if len(dst) != n || len(src) != n {
		return fmt.Errorf("dense operator of order %d: vectors of length %d and %d", n, len(dst), len(src))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mat.NewVecDense(n, dst).MulVec(d.A, mat.NewVecDense(n, src))
	return nil
}

// Progress receives the progress of long loops; its method set is that of
// the runner's stage.Progress, so a stage can pass its own without this
// package knowing the runner.
type Progress interface {
	// Start begins a unit of work of total steps (0 when unknown).
	Start(what string, total int)
	// Advance records n more steps as done.
	Advance(n int)
	// Finish ends the current unit.
	Finish()
}

// noProgress is the Progress used when none is given.
type noProgress struct{}

func (noProgress) Start(string, int) {}
func (noProgress) Advance(int)       {}
func (noProgress) Finish()           {}
