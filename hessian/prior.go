package hessian

import (
	"errors"
	"fmt"
	"math"
)

// Prior holds the independent recurrences of an earlier Run of the same
// operator with the same options except for the counts: Density.Probes,
// Trace.Probes and, for TopK, nothing (see below). Every recurrence draws
// its start from its own stream (StreamBounds, StreamProbe+p,
// StreamTrace+k), so recurrence p of a run with 3 probes is recurrence p of
// a run with 5: Run takes the first ones from the Prior and computes only
// the rest, and its Result is the one a run from nothing gives (Computed
// says how many applications it made).
//
// A top-k result cannot be extended so: a run for a larger K continues the
// Krylov space beyond where the smaller one stopped, which would need its
// basis (not kept), and a smaller K stops at an earlier step. TopK is
// therefore reused only as a whole, for the same K and options.
type Prior struct {
	// Bounds is the density's range run.
	Bounds *Tridiagonal
	// Probes are density probes 0, 1, …; those beyond Density.Probes are
	// ignored.
	Probes []*Tridiagonal
	// TraceSamples are Hutchinson samples 0, 1, …; those beyond
	// Trace.Probes are ignored.
	TraceSamples []float64
	// TopK is the top-k result of a run with the same TopKOptions.
	TopK *TopK
}

// check verifies that p fits request rq on an operator of dimension n.
func (p *Prior) check(rq Request, n int) error {
	tri := func(what string, t *Tridiagonal, steps int) error {
		switch {
		case t == nil:
			return fmt.Errorf("prior %s: missing", what)
		case len(t.Alpha) < 1 || len(t.Alpha) != len(t.Beta) || len(t.Alpha) > steps || len(t.Alpha) > n:
			return fmt.Errorf("prior %s: %d α and %d β for %d steps", what, len(t.Alpha), len(t.Beta), steps)
		}
		for j := range t.Alpha {
			if !finite(t.Alpha[j]) || !finite(t.Beta[j]) {
				return fmt.Errorf("prior %s: step %d is not finite", what, j+1)
			}
		}
		return nil
	}
	if p.Bounds != nil || len(p.Probes) > 0 {
		d := rq.Density
		if d == nil {
			return errors.New("prior density runs for a request without a density")
		}
		if p.Bounds == nil {
			return errors.New("prior density probes without their range run")
		}
		if err := tri("range run", p.Bounds, d.BoundsSteps); err != nil {
			return err
		}
		for i, t := range p.Probes {
			if i >= d.Probes {
				break
			}
			if err := tri(fmt.Sprintf("probe %d", i), t, d.Steps); err != nil {
				return err
			}
		}
	}
	if len(p.TraceSamples) > 0 && rq.Trace == nil {
		return errors.New("prior trace samples for a request without a trace")
	}
	for k, s := range p.TraceSamples {
		if !finite(s) {
			return fmt.Errorf("prior trace sample %d is %g", k, s)
		}
	}
	if t := p.TopK; t != nil {
		if rq.TopK == nil || len(t.Values) > rq.TopK.K || len(t.Values) == 0 || t.Applications < len(t.Values) {
			return errors.New("prior top-k result does not fit the request")
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
