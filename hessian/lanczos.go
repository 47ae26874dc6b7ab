package hessian

import (
	"context"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// Reorthogonalization selects how the Lanczos vectors are kept orthogonal.
type Reorthogonalization int

const (
	// ReorthNone is the seed's plain three-term recurrence: two vectors in
	// memory, orthogonality lost once Ritz values converge (ghost copies of
	// converged eigenvalues share their weight, so densities stay sound).
	ReorthNone Reorthogonalization = iota
	// ReorthFull orthogonalises every new vector against all previous ones
	// by classical Gram–Schmidt, twice. It keeps all m vectors in memory
	// (8·m·dim bytes) and costs O(m·dim) per step.
	ReorthFull
)

// String returns the spelling used in specs: "none" or "full".
func (r Reorthogonalization) String() string {
	switch r {
	case ReorthNone:
		return "none"
	case ReorthFull:
		return "full"
	}
	return fmt.Sprintf("Reorthogonalization(%d)", int(r))
}

// ParseReorthogonalization reads "none" or "full".
func ParseReorthogonalization(s string) (Reorthogonalization, error) {
	switch strings.ToLower(s) {
	case "none":
		return ReorthNone, nil
	case "full":
		return ReorthFull, nil
	}
	return 0, fmt.Errorf("reorthogonalize %q: want none or full", s)
}

// BreakdownTolerance decides when a Lanczos run has found an invariant
// subspace: step j breaks down when β_j ≤ BreakdownTolerance·s, where s is
// the largest |α_i| or β_i seen so far (a lower bound on ‖A‖; s = 0 for the
// zero operator, whose first step then breaks down on β₁ = 0). The seed has
// no such guard and divides by β = 0.
const BreakdownTolerance = 1e-12

// LanczosOptions configures one Lanczos run.
type LanczosOptions struct {
	// Steps is the number of Lanczos steps M (operator applications), ≥ 1.
	Steps int
	// Reorthogonalize is ReorthNone (the seed) or ReorthFull.
	Reorthogonalize Reorthogonalization
	// Seed and Stream select the start vector v₁ = g/‖g‖, g ~ N(0, I) drawn
	// from rand.NewPCG(Seed, Stream).
	Seed, Stream uint64
}

// Tridiagonal is the outcome of a Lanczos run of m steps: the symmetric
// tridiagonal T with diagonal Alpha[0..m-1] and off-diagonal Beta[0..m-2],
// and the residual norm Beta[m-1] (the β computed at the last step, which
// the seed uses in its bounds). A V = V T + β_m v_{m+1} e_mᵀ, with V the
// Lanczos vectors.
type Tridiagonal struct {
	Alpha, Beta []float64
	// Breakdown reports that the run stopped before the requested number of
	// steps because β_m fell to BreakdownTolerance: the Krylov space is then
	// invariant under A, so the Ritz values are exact eigenvalues of A (to
	// rounding) and the weights are the exact spectral measure of the start
	// vector; stopping loses nothing.
	Breakdown bool
}

// Steps returns m, the order of T.
func (t *Tridiagonal) Steps() int { return len(t.Alpha) }

// Ritz is the eigendecomposition T = S diag(θ) Sᵀ of a Lanczos tridiagonal,
// read as Gauss quadrature: nodes θ and weights S[0,k]².
type Ritz struct {
	// Values are the Ritz values θ_k, ascending.
	Values []float64
	// Weights are S[0,k]², the squared first components of the eigenvectors
	// of T; they sum to 1.
	Weights []float64
	// Residuals are |β_m S[m-1,k]| = ‖A y_k − θ_k y_k‖ for the Ritz vector
	// y_k = V s_k (in exact arithmetic): each interval θ_k ± Residuals[k]
	// holds an eigenvalue of A.
	Residuals []float64
	// S holds the eigenvectors of T as columns, in the order of Values.
	S *mat.Dense
}

// Eigen decomposes T with the implicit QL/QR method for symmetric
// tridiagonal matrices (LAPACK's dsteqr, as implemented by gonum).
func (t *Tridiagonal) Eigen() (*Ritz, error) {
	m := len(t.Alpha)
	if m == 0 || len(t.Beta) != m {
		return nil, fmt.Errorf("tridiagonal with %d α and %d β: want m ≥ 1 of each", m, len(t.Beta))
	}
	d := append([]float64(nil), t.Alpha...)
	e := append([]float64(nil), t.Beta[:m-1]...)
	z := make([]float64, m*m)
	work := make([]float64, max(1, 2*m-2))
	if ok := (gonum.Implementation{}).Dsteqr(lapack.EVTridiag, m, d, e, z, m, work); !ok {
		return nil, fmt.Errorf("eigendecomposition of the %d×%d Lanczos tridiagonal did not converge", m, m)
	}
	r := &Ritz{Values: d, Weights: make([]float64, m), Residuals: make([]float64, m), S: mat.NewDense(m, m, z)}
	last := t.Beta[m-1]
	for k := range m {
		r.Weights[k] = z[k] * z[k]
		r.Residuals[k] = math.Abs(last * z[(m-1)*m+k])
	}
	return r, nil
}

// recurrence is one Lanczos run in progress, driven from outside: next
// hands out the vector to multiply and the buffer for the product, accept
// consumes the product. One step is (SEED-SPEC §4.2):
//
//	w = A v_j − β_{j−1} v_{j−1};  α_j = ⟨w, v_j⟩;  w ← w − α_j v_j;
//	[full: w ← w − V(Vᵀw), twice];  β_j = ‖w‖;  v_{j+1} = w/β_j.
type recurrence struct {
	steps   int
	reorth  Reorthogonalization
	v, prev []float64 // v_j and v_{j−1} (prev nil at j = 1)
	w       []float64 // receives A v_j
	spare   []float64 // recycled buffer (ReorthNone)
	basis   [][]float64
	t       Tridiagonal
	scale   float64
	done    bool

	// restart, when set, is called on a breakdown before the space fills
	// the whole dimension: it fills its argument with a fresh start vector
	// (unit norm, any direction); the recurrence orthogonalises it against
	// the basis and continues, recording a zero coupling β_j in T. Requires
	// ReorthFull.
	restart func(v []float64)
}

// newRecurrence starts a run of steps steps from the unit vector v1, which
// it takes ownership of.
func newRecurrence(v1 []float64, steps int, reorth Reorthogonalization) *recurrence {
	r := &recurrence{steps: steps, reorth: reorth, v: v1, w: make([]float64, len(v1))}
	r.t.Alpha = make([]float64, 0, steps)
	r.t.Beta = make([]float64, 0, steps)
	if reorth == ReorthFull {
		r.basis = [][]float64{v1}
	}
	return r
}

// next returns v_j and the buffer that is to receive A v_j.
func (r *recurrence) next() (src, dst []float64) { return r.v, r.w }

// accept completes step j from A v_j, which the caller wrote into the
// buffer next returned. It reports a non-finite α or β as an error.
func (r *recurrence) accept() error {
	w, j := r.w, len(r.t.Alpha)
	var alpha float64
	if j > 0 && r.t.Beta[j-1] != 0 {
		alpha = axpyDot(w, -r.t.Beta[j-1], r.prev, r.v)
	} else {
		alpha = dot(w, r.v)
	}
	beta2 := axpyDot(w, -alpha, r.v, w)
	if r.reorth == ReorthFull {
		orthogonalize(w, r.basis)
		orthogonalize(w, r.basis)
		beta2 = dot(w, w)
	}
	beta := math.Sqrt(beta2)
	if math.IsNaN(alpha) || math.IsInf(alpha, 0) || math.IsNaN(beta) || math.IsInf(beta, 0) {
		return fmt.Errorf("lanczos step %d: α = %g, β = %g: the operator returned non-finite values", j+1, alpha, beta)
	}
	r.scale = max(r.scale, math.Abs(alpha))
	r.t.Alpha = append(r.t.Alpha, alpha)
	r.t.Beta = append(r.t.Beta, beta)
	breakdown := beta <= BreakdownTolerance*r.scale
	if !breakdown {
		r.scale = max(r.scale, beta)
	}
	if len(r.t.Alpha) == r.steps {
		r.done = true
		return nil
	}
	switch {
	case !breakdown:
		scaleTo(w, 1/beta, w)
	case r.restart == nil || len(r.basis) == len(w):
		r.t.Breakdown = true
		r.done = true
		return nil
	default:
		// Invariant subspace found: continue from a fresh direction,
		// uncoupled from the previous ones (β_j = 0 in T).
		r.restart(w)
		orthogonalize(w, r.basis)
		orthogonalize(w, r.basis)
		r.t.Beta[j] = 0
		scaleTo(w, 1/math.Sqrt(dot(w, w)), w)
	}
	// w now holds v_{j+1}.
	if r.reorth == ReorthFull {
		r.basis = append(r.basis, w)
		r.prev, r.v, r.w = r.v, w, make([]float64, len(w))
		return nil
	}
	if r.spare == nil {
		r.spare = make([]float64, len(w))
	}
	r.prev, r.v, r.w, r.spare = r.v, w, r.spare, r.prev
	return nil
}

// release drops the run's vectors, keeping T.
func (r *recurrence) release() {
	r.v, r.prev, r.w, r.spare, r.basis = nil, nil, nil, nil, nil
}

// Lanczos runs opts.Steps steps of the Lanczos recurrence on op from the
// start vector selected by opts.Seed and opts.Stream, stopping early on a
// breakdown (see Tridiagonal.Breakdown).
func Lanczos(ctx context.Context, op Operator, opts LanczosOptions) (*Tridiagonal, error) {
	n := op.Dim()
	if n < 1 || opts.Steps < 1 {
		return nil, fmt.Errorf("lanczos: dimension %d and %d steps: want both ≥ 1", n, opts.Steps)
	}
	v := make([]float64, n)
	gaussianUnit(v, newRand(opts.Seed, opts.Stream))
	r := newRecurrence(v, opts.Steps, opts.Reorthogonalize)
	for !r.done {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src, dst := r.next()
		if err := safeApply(ctx, op, dst, src); err != nil {
			return nil, fmt.Errorf("lanczos step %d: %w", len(r.t.Alpha)+1, err)
		}
		if err := r.accept(); err != nil {
			return nil, err
		}
	}
	return &r.t, nil
}

// safeApply calls op.Apply and turns a panic into an error.
func safeApply(ctx context.Context, op Operator, dst, src []float64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("operator panicked: %v", p)
		}
	}()
	return op.Apply(ctx, dst, src)
}
