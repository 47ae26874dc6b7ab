package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/stage"
)

// Reuse (stage.Reuse): a stage of a kind that declares reuse params may
// start from a cached artifact whose key differs from its own only in those
// params. Candidates are found through the store's reuse index, whose
// groups are named by reuseGroup: a hash of the description without the
// reuse params. The runner adds every artifact of such a kind it stores to
// its group, and looks there when a stage must run.

// reuseGroup names the reuse group of a computation of kind k: the SHA-256
// of the canonical JSON of its description with the reuse params left out
// (their names are in, so that a kind that changes them starts new groups).
func reuseGroup(k *stage.Kind, d Description) (string, error) {
	params := map[string]any{}
	for name, v := range d.Params {
		if !slices.Contains(k.Reuse.Params, name) {
			params[name] = v
		}
	}
	inputs := d.Inputs
	if inputs == nil {
		inputs = map[string][]artifacts.Digest{}
	}
	c, err := canonicalJSON(map[string]any{"kind": d.Kind, "version": d.Version, "params": params,
		"inputs": inputs, "reuse": k.Reuse.Params})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// reuseEntry is what the reuse index records of job j of kind k.
func reuseEntry(k *stage.Kind, j *Job) artifacts.ReuseEntry {
	e := artifacts.ReuseEntry{Key: j.Key, Params: map[string]any{}}
	for _, name := range k.Reuse.Params {
		if v, ok := j.Description.Params[name]; ok {
			e.Params[name] = v
		}
	}
	return e
}

// recordReuse adds the stored artifact of job j to its reuse group, if its
// kind declares reuse. The index only saves work, so a failure is reported
// but harms nothing.
func recordReuse(ctx context.Context, s *artifacts.Store, k *stage.Kind, j *Job) error {
	if k.Reuse == nil {
		return nil
	}
	group, err := reuseGroup(k, j.Description)
	if err != nil {
		return err
	}
	return s.AddReuse(ctx, group, reuseEntry(k, j))
}

// indexHit adds a cached artifact found by look-up to its reuse group when
// the group has no index yet: artifacts stored before the index existed
// become candidates after one run, at the cost of one stat(2) per hit.
func indexHit(ctx context.Context, s *artifacts.Store, k *stage.Kind, j *Job) {
	if k.Reuse == nil || j == nil {
		return
	}
	group, err := reuseGroup(k, j.Description)
	if err != nil || s.HasReuse(group) {
		return
	}
	_ = s.AddReuse(ctx, group, reuseEntry(k, j))
}

// findPrior returns the cached artifact of least cost (stage.ReusePlan)
// that the kind's Reuse.Plan accepts for job j with resolved params p, or
// nil when there is none. Each candidate's record and object are checked
// (artifacts.Store.Get) before it is offered.
func findPrior(s *artifacts.Store, k *stage.Kind, j *Job, p stage.Params) *stage.Prior {
	if k.Reuse == nil || j == nil {
		return nil
	}
	group, err := reuseGroup(k, j.Description)
	if err != nil {
		return nil
	}
	entries, err := s.ReadReuse(group)
	if err != nil {
		return nil
	}
	var best *stage.Prior
	bestCost := 0.0
	for _, en := range entries {
		if en.Key == j.Key {
			continue
		}
		from, ok := priorParams(k, p, en.Params)
		if !ok {
			continue
		}
		plan, ok := safePlan(k, from, p)
		if !ok || best != nil && plan.Cost >= bestCost {
			continue
		}
		rec, ok, err := s.Get(en.Key)
		if err != nil || !ok {
			continue // removed or damaged since it was indexed
		}
		best, bestCost = &stage.Prior{
			Artifact: stage.Artifact{Dir: s.ObjectDir(rec.Digest), Stage: rec.Stage, Digest: string(rec.Digest)},
			Params:   from, How: plan.How,
		}, plan.Cost
	}
	return best
}

// priorParams returns the params a candidate was computed with: p with the
// reuse params replaced by the candidate's values (converted through the
// schema); ok is false when a value does not convert.
func priorParams(k *stage.Kind, p stage.Params, values map[string]any) (stage.Params, bool) {
	from := make(stage.Params, len(p))
	for name, v := range p {
		from[name] = v
	}
	for _, name := range k.Reuse.Params {
		v, ok := values[name]
		if !ok {
			delete(from, name)
			continue
		}
		schema, _ := k.Param(name)
		c, err := schema.Convert(numbers(v))
		if err != nil {
			return nil, false
		}
		from[name] = c
	}
	return from, true
}

// safePlan calls the kind's Reuse.Plan, taking a panic for "cannot serve".
func safePlan(k *stage.Kind, from, to stage.Params) (plan stage.ReusePlan, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			plan, ok = stage.ReusePlan{}, false
		}
	}()
	return k.Reuse.Plan(from, to)
}

// priorInfo is what run/run.json records of the artifact a stage built on.
func priorInfo(p *stage.Prior) map[string]any {
	return map[string]any{"stage": p.Stage, "digest": p.Digest, "how": p.How}
}

// priorLog is the runner's log line about the artifact a stage builds on.
func priorLog(p *stage.Prior) string {
	return fmt.Sprintf("# %s: starting from the cached artifact %s of %s\n", p.How, artifacts.Digest(p.Digest).Short(), p.Stage)
}
