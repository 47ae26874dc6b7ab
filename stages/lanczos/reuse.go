package lanczos

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/lanczos/summary"
)

// planReuse is the kind's Reuse.Plan: an artifact that differs in probes,
// trace_probes or top_k always serves; its cost is the number of
// Hessian-vector products still to compute (a changed top_k counted as
// steps products, a guess: its length is known only once it converges).
func planReuse(from, to stage.Params) (stage.ReusePlan, bool) {
	var changes []string
	cost := 0
	count := func(name string, unit int) {
		a, b := from.Int(name), to.Int(name)
		if a == b {
			return
		}
		changes = append(changes, fmt.Sprintf("%s %d → %d", name, a, b))
		cost += max(0, b-a) * unit
	}
	count("probes", to.Int("steps"))
	count("trace_probes", 1)
	if a, b := from.Int("top_k"), to.Int("top_k"); a != b {
		if b > 0 {
			changes = append(changes, fmt.Sprintf("top_k %d → %d, recomputed", a, b))
			cost += to.Int("steps")
		} else {
			changes = append(changes, fmt.Sprintf("top_k %d → %d", a, b))
		}
	}
	verb := "extends"
	if cost == 0 {
		verb = "derived from"
	}
	return stage.ReusePlan{How: verb + " cached run with " + strings.Join(changes, ", "), Cost: float64(cost)}, true
}

// readPrior reads the recurrences of a cached lanczos artifact computed
// with prior.Params, which differ from p in probes, trace_probes or top_k
// only, as a hessian.Prior for a run with params p.
func readPrior(prior *stage.Prior, p stage.Params) (*hessian.Prior, error) {
	ar, err := npz.ReadFile(filepath.Join(prior.Dir, summary.SpectrumFile))
	if err != nil {
		return nil, err
	}
	get := func(name string, dims int) (*npz.Array, error) {
		a, err := ar.Get(name)
		if err != nil {
			return nil, err
		}
		if len(a.Shape) != dims {
			return nil, fmt.Errorf("%s has shape %v, want %d dimensions", name, a.Shape, dims)
		}
		return a, nil
	}
	out := &hessian.Prior{}
	// The range run.
	ba, err := get("bounds_alpha", 1)
	if err != nil {
		return nil, err
	}
	bb, err := get("bounds_beta", 1)
	if err != nil {
		return nil, err
	}
	out.Bounds = &hessian.Tridiagonal{Alpha: ba.Float64s(), Beta: bb.Float64s(), Breakdown: ba.Len() < p.Int("bound_steps")}
	// The probes: rows of [probes, steps], padded with NaN after a breakdown.
	la, err := get("lanczos_alpha", 2)
	if err != nil {
		return nil, err
	}
	lb, err := get("lanczos_beta", 2)
	if err != nil {
		return nil, err
	}
	steps := p.Int("steps")
	if la.Shape[1] != steps || lb.Shape[0] != la.Shape[0] || lb.Shape[1] != steps {
		return nil, fmt.Errorf("lanczos_alpha %v and lanczos_beta %v for %d steps", la.Shape, lb.Shape, steps)
	}
	alpha, beta := la.Float64s(), lb.Float64s()
	for i := range min(la.Shape[0], p.Int("probes")) {
		row := alpha[i*steps : (i+1)*steps]
		m := 0
		for m < steps && !math.IsNaN(row[m]) {
			m++
		}
		out.Probes = append(out.Probes, &hessian.Tridiagonal{
			Alpha: append([]float64(nil), row[:m]...), Beta: append([]float64(nil), beta[i*steps:i*steps+m]...), Breakdown: m < steps})
	}
	// The Hutchinson samples.
	if n := min(prior.Params.Int("trace_probes"), p.Int("trace_probes")); n > 0 {
		ts, err := get("trace_samples", 1)
		if err != nil {
			return nil, err
		}
		out.TraceSamples = ts.Float64s()[:min(n, ts.Len())]
	}
	// The top-k result, for the same k only.
	if k := p.Int("top_k"); k > 0 && prior.Params.Int("top_k") == k {
		s, err := summary.Read(prior.Dir)
		if err != nil {
			return nil, err
		}
		vals, err := get("top_eigenvalues", 1)
		if err != nil {
			return nil, err
		}
		res, err := get("top_residuals", 1)
		if err != nil {
			return nil, err
		}
		if s.TopKSteps < 1 || s.TopKConverged == nil || vals.Len() != res.Len() {
			return nil, fmt.Errorf("summary.json lacks the top-k run's length")
		}
		out.TopK = &hessian.TopK{Values: vals.Float64s(), Residuals: res.Float64s(), Steps: s.TopKSteps,
			Converged: *s.TopKConverged, Applications: s.TopKSteps}
	}
	return out, nil
}

// reusedProducts counts the products of the recurrences req takes from its
// prior.
func reusedProducts(req hessian.Request) int {
	pr := req.Prior
	n := 0
	if pr.Bounds != nil {
		n += pr.Bounds.Steps()
	}
	for i, t := range pr.Probes {
		if i < req.Density.Probes {
			n += t.Steps()
		}
	}
	if req.Trace != nil {
		n += min(len(pr.TraceSamples), req.Trace.Probes)
	}
	if pr.TopK != nil {
		n += pr.TopK.Applications
	}
	return n
}
