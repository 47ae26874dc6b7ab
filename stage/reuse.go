package stage

import (
	"errors"
	"fmt"
)

// Reuse declares that a kind can build its artifact from a cached artifact
// of the same kind whose params differ from its own in a few params only,
// with less work than from nothing: a training run extended by more epochs,
// a spectrum given more probes.
//
// The runner finds candidates through an index of the cache keyed by
// everything of a stage's key except Params (kind, version, the other
// params, the input digests), asks Plan which of them can serve and at what
// cost, and hands the cheapest to the stage as Env.Prior. The stage must
// write exactly the files a run from nothing writes: its key and digest do
// not depend on the Prior, which only saves time.
type Reuse struct {
	// Params are the top-level params in which a usable artifact may
	// differ, e.g. "epochs". They may not be Path params.
	Params []string
	// Plan says whether an artifact computed with params from can serve a
	// stage with params to (both resolved; they differ in Params only),
	// and how. ok is false when it cannot.
	Plan func(from, to Params) (p ReusePlan, ok bool)
}

// ReusePlan is how a stage would use a cached artifact (see Reuse.Plan).
type ReusePlan struct {
	// How is shown by plan and run after the reasons, e.g. "extends
	// cached run of 5 epochs by 2" or "derived from cached run of 7
	// epochs".
	How string
	// Cost is the work left, in the kind's own unit (epochs to train,
	// products to compute); 0 means none. The runner picks the candidate
	// of least cost.
	Cost float64
}

// Prior is the cached artifact a stage may build on (Kind.Reuse).
type Prior struct {
	Artifact
	// Params are the resolved params the artifact was computed with.
	Params Params
	// How is the plan's description ("extends cached run of 5 epochs by 2").
	How string
}

// checkReuse validates a kind's Reuse declaration.
func (k *Kind) checkReuse() error {
	r := k.Reuse
	if r == nil {
		return nil
	}
	if r.Plan == nil || len(r.Params) == 0 {
		return errors.New("reuse needs params and a Plan function")
	}
	for _, name := range r.Params {
		p, ok := k.Param(name)
		if !ok {
			return fmt.Errorf("reuse param %q is not a param of the kind", name)
		}
		if p.Type == Path || p.Type == Object && hasPath(p.Fields) {
			return fmt.Errorf("reuse param %q is a path: the index keys paths by content", name)
		}
	}
	return nil
}

func hasPath(ps []Param) bool {
	for _, p := range ps {
		if p.Type == Path || p.Type == Object && hasPath(p.Fields) {
			return true
		}
	}
	return false
}
