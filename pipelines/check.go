package pipelines

import (
	"errors"
	"fmt"

	"github.com/hessian-spectra/runner/stage"
)

// checkInstances runs each kind's plan-time Check on every instance,
// reporting each problem at the position of
// the param it names (the value in `with:`, or the stage's name for a
// default) or else at the stage.
func (b *builder) checkInstances() {
	planned := map[*Instance]*stage.Planned{}
	var plan func(inst *Instance) *stage.Planned
	plan = func(inst *Instance) *stage.Planned {
		if p, ok := planned[inst]; ok {
			return p
		}
		p := &stage.Planned{ID: inst.ID, Kind: inst.Stage.Kind, Params: inst.Params, Inputs: map[string][]*stage.Planned{}}
		planned[inst] = p
		for _, bind := range inst.Inputs {
			for _, f := range bind.From {
				p.Inputs[bind.Name] = append(p.Inputs[bind.Name], plan(f))
			}
		}
		return p
	}
	// An instance is checked when its own stage, params and inputs were
	// read without problems. Instances upstream of it may have problems of
	// their own (already reported): a check that needs one of their
	// missing params then panics, and the problem is left to the fix
	// upstream.
	for _, rs := range b.stages {
		k := rs.st.Kind
		if !rs.ok || k == nil || k.Check == nil {
			continue
		}
		for _, inst := range rs.st.Instances {
			if b.incomplete[inst] {
				continue
			}
			errs, panicked := safeCheck(k, plan(inst))
			if panicked != nil && b.upstreamIncomplete(inst, map[*Instance]bool{}) {
				continue
			}
			if panicked != nil {
				errs = append(errs, panicked)
			}
			for _, err := range errs {
				b.errs.add(checkPos(rs, err), "%s: %v", inst.ID, err)
			}
		}
	}
}

// upstreamIncomplete reports whether an instance that inst reads, directly
// or not, had problems of its own.
func (b *builder) upstreamIncomplete(inst *Instance, seen map[*Instance]bool) bool {
	if seen[inst] {
		return false
	}
	seen[inst] = true
	for _, f := range inst.Deps {
		if b.incomplete[f] || b.upstreamIncomplete(f, seen) {
			return true
		}
	}
	return false
}

// safeCheck calls k.Check, returning a panic as an error of its own.
func safeCheck(k *stage.Kind, p *stage.Planned) (errs []error, panicked error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Errorf("internal error in the %s kind's plan-time check: %v", k.Name, r)
		}
	}()
	return k.Check(p), nil
}

// checkPos is where a Check problem is shown: the value of the param a
// *stage.ParamError names, or the stage's name.
func checkPos(rs *rawStage, err error) Pos {
	var pe *stage.ParamError
	if errors.As(err, &pe) {
		for _, rp := range rs.with {
			if rp.name == pe.Param {
				return rp.t.pos
			}
		}
	}
	return rs.st.Pos
}
