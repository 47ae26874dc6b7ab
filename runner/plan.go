package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
)

// PlanEntry says what Run would do with one stage instance, and why.
type PlanEntry struct {
	Spec string `json:"spec"` // the spec's name
	ID   string `json:"id"`   // the instance id
	Kind string `json:"kind"` // the stage kind
	// Key is empty when an input is computed first (keys cover input
	// digests).
	Key artifacts.Key `json:"key,omitempty"`
	// Cached entries have a Digest and a Dir.
	Cached bool             `json:"cached"`
	Digest artifacts.Digest `json:"digest,omitempty"`
	Dir    string           `json:"dir,omitempty"`
	// Reasons say why the stage will run.
	Reasons []string `json:"reasons,omitempty"`
	// Reuse says how the stage would start from a cached artifact
	// (stage.Reuse), e.g. "extends cached run of 5 epochs by 2"; it is also
	// the last reason.
	Reuse string `json:"reuse,omitempty"`
	// Error is set when the key cannot be computed (e.g. a Path param names
	// a missing file): Run would fail this stage.
	Error string `json:"error,omitempty"`
}

// Action is "cached" or "run".
func (p PlanEntry) Action() string {
	if p.Cached {
		return "cached"
	}
	return "run"
}

// Plan reports, for every instance of the pipelines in run order, whether Run
// would serve it from the cache or run it, with its key and the reasons. It
// changes nothing in the cache.
func Plan(pipes []*pipelines.Pipeline, opts Options) ([]PlanEntry, error) {
	e, err := newEngine(pipes, opts)
	if err != nil {
		return nil, err
	}
	out := make([]PlanEntry, 0, len(e.nodes))
	for _, n := range e.nodes {
		pe := PlanEntry{Spec: n.pipe.Name, ID: n.inst.ID, Kind: n.inst.Stage.Kind.Name}
		if inputsKnown(n) {
			if err := e.describe(n); err != nil {
				pe.Error = err.Error()
				pe.Reasons = []string{"error: " + err.Error()}
				out = append(out, pe)
				continue
			}
			pe.Key = n.res.Key
			digest, ok, err := e.lookup(n)
			if err != nil {
				return nil, err
			}
			if ok && !n.forced {
				n.res.Digest = digest
				pe.Cached, pe.Digest, pe.Dir = true, digest, opts.Store.ObjectDir(digest)
				if n.recheck {
					pe.Cached = false
					pe.Reasons = []string{"re-check: recompute and compare with the cached digest"}
				}
				out = append(out, pe)
				continue
			}
		} else if err := e.describeParams(n); err != nil {
			pe.Error = err.Error()
		}
		n.res.Reasons = e.reasonsFor(n)
		e.findPrior(n)
		pe.Reasons = n.res.Reasons
		if n.prior != nil {
			pe.Reuse = n.prior.How
		}
		if pe.Error != "" {
			pe.Reasons = append([]string{"error: " + pe.Error}, pe.Reasons...)
		}
		out = append(out, pe)
	}
	return out, nil
}

// Explain returns what goes into the key of the instance with the given id:
// the job description as stored in the cache, indented. When an input is not
// computed yet its digest shows as "pending: <stage id>", and the key is
// unknown.
func Explain(pipes []*pipelines.Pipeline, id string, opts Options) (string, error) {
	e, err := newEngine(pipes, opts)
	if err != nil {
		return "", err
	}
	var target *node
	for _, n := range e.nodes {
		if n.inst.ID == id {
			target = n
			break
		}
	}
	if target == nil {
		var errs []string
		for _, p := range pipes {
			if _, err := p.Match(id); err != nil {
				errs = append(errs, err.Error())
			}
		}
		return "", fmt.Errorf("no stage instance %q (%s)", id, strings.Join(errs, "; "))
	}
	// Walk in order so upstream digests are known where cached.
	for _, n := range e.nodes {
		if n == target {
			break
		}
		if inputsKnown(n) && e.describe(n) == nil {
			if digest, ok, _ := e.lookup(n); ok {
				n.res.Digest = digest
			}
		}
	}
	if inputsKnown(target) {
		if err := e.describe(target); err != nil {
			return "", err
		}
		c, _ := target.job.Description.Canonical()
		data, err := encodeJob(target.job)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("key %s = sha256 of\n%s\n\njob (as stored for exec-stage):\n%s", target.res.Key, c, data), nil
	}
	if err := e.describeParams(target); err != nil {
		return "", err
	}
	d := map[string]any{"kind": target.inst.Stage.Kind.Name, "version": target.inst.Stage.Kind.Version, "params": target.kparams}
	inputs := map[string][]string{}
	for _, b := range target.inst.Inputs {
		for _, f := range b.From {
			if dg := e.byInst[f].res.Digest; dg != "" {
				inputs[b.Name] = append(inputs[b.Name], string(dg))
			} else {
				inputs[b.Name] = append(inputs[b.Name], "pending: "+f.ID)
			}
		}
	}
	ins := map[string]any{}
	for k, v := range inputs {
		ins[k] = v
	}
	d["inputs"] = ins
	c, err := canonicalJSON(d)
	if err != nil {
		return "", err
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, c, "", "  ")
	return fmt.Sprintf("key unknown until its inputs are computed; description so far:\n%s\n", pretty.Bytes()), nil
}
