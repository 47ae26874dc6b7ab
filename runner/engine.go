// Package runner executes pipelines: it computes each stage instance's key,
// serves cached artifacts, runs the rest in parallel under per-key locks, and
// reports what it did and why.
//
// Plan and Run share one engine, so `runner plan` says exactly what `runner
// run` would do. A stage whose input is computed in the same run has no key
// until that input exists (keys cover input digests), so a plan shows such a
// stage as "run" with an unknown key.
package runner

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/stage"
)

// Options configure Plan and Run.
type Options struct {
	// Store is the cache.
	Store *artifacts.Store
	// Jobs bounds how many stages run at once; 0 means the number of CPUs.
	Jobs int
	// KeepGoing runs every stage whose inputs exist after a failure; without
	// it the first failure cancels the rest.
	KeepGoing bool
	// Force lists patterns (ids, stage names, refs with *) of instances to
	// run even if cached.
	Force []string
	// Recheck lists patterns of cached instances to recompute in a temp dir
	// and compare with the cached digest, without replacing it.
	Recheck []string
	// Backend is passed to stages as stage.Env.Backend.
	Backend string
	// WorkDir, when set, receives the results view: WorkDir/results/<spec>/<id>.
	WorkDir string
	// Reporter shows progress and outcomes; nil shows nothing.
	Reporter Reporter
	// Executor, when set, computes the stages it accepts (a cluster
	// executor); the others run in this process. Nil runs everything here.
	Executor Executor
}

// node is one stage instance in the engine.
type node struct {
	pipe  *pipelines.Pipeline
	inst  *pipelines.Instance
	deps  []*node // distinct inputs
	users []*node // distinct consumers

	forced, recheck bool

	// Known once the params are described.
	kparams map[string]any
	// Known once every input has a digest: the job, whose key is res.Key.
	job  *Job
	task *Task // what an executor gets, once queued
	// remote is set when opts.Executor computes the node.
	remote bool
	// res is the node's outcome as it becomes known: its identity from
	// the start, Key once described, Reasons once it must run, Digest once
	// cached or computed. Outcome is set once, when the node finishes; it
	// is zero until then.
	res Result

	waiting int    // inputs not yet finished
	blocked string // id of a failed input, which stops this node

	prev artifacts.IndexEntry // the id's key and digest in the spec's previous run
	// damaged is set when the cached artifact of the key was found damaged.
	damaged *artifacts.DamagedError
	// prior is the cached artifact the stage may start from (stage.Reuse).
	prior *stage.Prior
}

// namedIndex is the index of one spec.
type namedIndex struct {
	name string
	idx  artifacts.Index
}

// engine holds the nodes of one Plan or Run.
type engine struct {
	opts   Options
	nodes  []*node // topological order within each pipeline, pipelines in order
	byInst map[*pipelines.Instance]*node
	hasher artifacts.PathHasher

	indexes map[string]artifacts.Index // previous run's keys, by spec

	othersOnce sync.Once
	others     []namedIndex // the indexes of the cache's other specs, read on demand

	keyMu sync.Mutex
	keys  map[artifacts.Key]*sync.Mutex

	// readOnly, set by Run when the store cannot take new results, fails
	// every stage that must run; cached ones are still served.
	readOnly error
}

func newEngine(pipes []*pipelines.Pipeline, opts Options) (*engine, error) {
	if opts.Store == nil {
		return nil, errors.New("runner: no cache store")
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	e := &engine{opts: opts, byInst: map[*pipelines.Instance]*node{}, indexes: map[string]artifacts.Index{}, keys: map[artifacts.Key]*sync.Mutex{}}
	names := map[string]string{}
	for _, p := range pipes {
		if other, dup := names[p.Name]; dup {
			return nil, fmt.Errorf("specs %s and %s are both named %q; names must differ (they name results/<name>)", other, p.File, p.Name)
		}
		names[p.Name] = p.File
		idx, err := opts.Store.ReadIndex(p.Name)
		if err != nil {
			return nil, err
		}
		e.indexes[p.Name] = idx
		for _, inst := range p.Instances {
			n := &node{pipe: p, inst: inst, prev: idx[inst.ID],
				res: Result{Spec: p.Name, ID: inst.ID, Kind: inst.Stage.Kind.Name}}
			e.byInst[inst] = n
			e.nodes = append(e.nodes, n)
		}
	}
	for _, n := range e.nodes {
		for _, f := range n.inst.Deps {
			d := e.byInst[f]
			n.deps = append(n.deps, d)
			d.users = append(d.users, n)
		}
		n.waiting = len(n.deps)
	}
	if err := e.mark(pipes, opts.Force, func(n *node) { n.forced = true }); err != nil {
		return nil, fmt.Errorf("--force: %w", err)
	}
	if err := e.mark(pipes, opts.Recheck, func(n *node) { n.recheck = true }); err != nil {
		return nil, fmt.Errorf("--recheck: %w", err)
	}
	return e, nil
}

// mark applies fn to the instances each pattern matches in any pipeline.
func (e *engine) mark(pipes []*pipelines.Pipeline, patterns []string, fn func(*node)) error {
	for _, pat := range patterns {
		found := false
		var errs []string
		for _, p := range pipes {
			insts, err := p.Match(pat)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			for _, inst := range insts {
				fn(e.byInst[inst])
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s matches no stage: %s", pat, strings.Join(errs, "; "))
		}
	}
	return nil
}

// describeParams computes the key form of n's params (hashing Path params).
func (e *engine) describeParams(n *node) error {
	if n.kparams != nil {
		return nil
	}
	kp, err := keyParams(n.inst.Stage.Kind.Params, n.inst.Params, &e.hasher)
	if err != nil {
		return err
	}
	n.kparams = kp
	return nil
}

// inputsKnown reports whether every input of n has a digest.
func inputsKnown(n *node) bool {
	for _, d := range n.deps {
		if d.res.Digest == "" {
			return false
		}
	}
	return true
}

// describe computes n's job and key; every input must have a digest.
func (e *engine) describe(n *node) error {
	if n.job != nil {
		return nil
	}
	if err := e.describeParams(n); err != nil {
		return err
	}
	k := n.inst.Stage.Kind
	j := &Job{
		Description: Description{Kind: k.Name, Version: k.Version, Params: n.kparams, Inputs: map[string][]artifacts.Digest{}},
		ID:          n.inst.ID,
		Spec:        n.pipe.Name,
		Params:      n.inst.Params,
		Inputs:      map[string][]JobInput{},
	}
	for _, b := range n.inst.Inputs {
		for _, f := range b.From {
			d := e.byInst[f].res.Digest
			j.Description.Inputs[b.Name] = append(j.Description.Inputs[b.Name], d)
			j.Inputs[b.Name] = append(j.Inputs[b.Name], JobInput{Stage: f.ID, Matrix: f.Matrix, Digest: d})
		}
	}
	key, err := j.Description.Key()
	if err != nil {
		return err
	}
	j.Key = key
	n.job, n.res.Key = j, key
	return nil
}

// lookup finds n's key in the cache: through the spec's index when the id
// had the same key last time (one stat of the artifact), else through the
// store's record.
//
// Either way the artifact is checked cheaply (artifacts.Store.CheckObject);
// a damaged one is a miss, remembered in n.damaged for the reasons, and the
// stage is recomputed.
func (e *engine) lookup(n *node) (artifacts.Digest, bool, error) {
	n.damaged = nil
	if n.prev.Key == n.res.Key && n.prev.Digest != "" && e.opts.Store.HasObject(n.prev.Digest) {
		err := e.opts.Store.CheckObject(n.prev.Digest)
		if err == nil {
			return n.prev.Digest, true, nil
		}
		if !errors.As(err, &n.damaged) {
			return "", false, err
		}
		return "", false, nil
	}
	rec, ok, err := e.opts.Store.Get(n.res.Key)
	if err != nil && errors.As(err, &n.damaged) {
		return "", false, nil
	}
	return rec.Digest, ok, err
}

// findPrior looks for a cached artifact n may start from (stage.Reuse),
// unless n is forced or rechecked, which compute from nothing; it records
// it in n.prior and its description in n.res.Reasons.
func (e *engine) findPrior(n *node) {
	if n.forced || n.recheck || n.prior != nil || n.job == nil {
		return
	}
	if n.prior = findPrior(e.opts.Store, n.inst.Stage.Kind, n.job, n.inst.Params); n.prior != nil {
		n.res.Reasons = append(n.res.Reasons, n.prior.How)
	}
}

// keyMutex returns the in-process mutex of key k: goroutines of one run that
// need the same key take turns before they try its file lock.
func (e *engine) keyMutex(k artifacts.Key) *sync.Mutex {
	e.keyMu.Lock()
	defer e.keyMu.Unlock()
	m := e.keys[k]
	if m == nil {
		m = &sync.Mutex{}
		e.keys[k] = m
	}
	return m
}

// reasonsFor explains why n must run, from the description of the key its
// id had in the previous run of its spec.
func (e *engine) reasonsFor(n *node) []string {
	if n.forced {
		return []string{"forced"}
	}
	if n.recheck {
		return []string{"recheck: recompute and compare with the cached digest"}
	}
	if n.damaged != nil {
		return []string{fmt.Sprintf("its cached result is damaged (%s)", n.damaged.Summary())}
	}
	prev := n.prev.Key
	if prev == "" {
		// New in this spec (a copy, say): compare with the same stage of
		// another spec, the closest thing to a previous run.
		spec, rec := e.sameStageElsewhere(n)
		if rec.Key == "" || rec.Key == n.res.Key {
			return []string{"new"}
		}
		diff := e.diffFrom(rec.Key, n)
		if diff == nil {
			return []string{"new"}
		}
		return []string{fmt.Sprintf("new (spec %s has this stage with %s)", spec, strings.Join(diff, ", "))}
	}
	if prev == n.res.Key {
		if n.prev.Digest == "" {
			return []string{"its last run did not finish"}
		}
		return []string{"its cached result was removed"}
	}
	if diff := e.diffFrom(prev, n); diff != nil {
		return diff
	}
	return []string{"new (no readable record of the previous run)"}
}

// sameStageElsewhere finds the stage with n's id in the index of another
// spec of the cache, the first by spec name; it returns no record when
// there is none.
func (e *engine) sameStageElsewhere(n *node) (string, artifacts.IndexEntry) {
	e.othersOnce.Do(func() {
		names, err := e.opts.Store.IndexedSpecs()
		if err != nil {
			return
		}
		for _, name := range names {
			if _, mine := e.indexes[name]; mine {
				continue
			}
			if idx, err := e.opts.Store.ReadIndex(name); err == nil && len(idx) > 0 {
				e.others = append(e.others, namedIndex{name, idx})
			}
		}
	})
	for _, o := range e.others {
		if rec, ok := o.idx[n.inst.ID]; ok && rec.Key != "" {
			return o.name, rec
		}
	}
	return "", artifacts.IndexEntry{}
}

// diffFrom lists what differs between the run recorded under key prev and
// n: kind, version, params, inputs; nil when prev's description cannot be
// read.
func (e *engine) diffFrom(prev artifacts.Key, n *node) []string {
	data, err := e.opts.Store.ReadDesc(prev)
	if err != nil {
		return nil
	}
	old, err := decodeJob(data)
	if err != nil {
		return nil
	}
	od, k := old.Description, n.inst.Stage.Kind
	var out []string
	if od.Kind != k.Name {
		out = append(out, fmt.Sprintf("kind %s → %s", od.Kind, k.Name))
	} else if od.Version != k.Version {
		out = append(out, fmt.Sprintf("implementation v%d → v%d", od.Version, k.Version))
	}
	if n.kparams != nil {
		out = append(out, paramChanges(od.Params, n.kparams)...)
	}
	var names []string
	for _, b := range n.inst.Inputs {
		names = append(names, b.Name)
	}
	for name := range od.Inputs {
		if !containsString(names, name) {
			out = append(out, fmt.Sprintf("input %s removed", name))
		}
	}
	for _, b := range n.inst.Inputs {
		known := true
		var cur []artifacts.Digest
		for _, f := range b.From {
			d := e.byInst[f].res.Digest
			if d == "" {
				known = false
			}
			cur = append(cur, d)
		}
		old, had := od.Inputs[b.Name]
		switch {
		case !had:
			out = append(out, fmt.Sprintf("input %s added", b.Name))
		case !known:
			out = append(out, fmt.Sprintf("input %s is recomputed first", b.Name))
		case !equalDigests(old, cur):
			out = append(out, fmt.Sprintf("input %s changed", b.Name))
		}
	}
	if len(out) == 0 {
		out = append(out, "changed")
	}
	return out
}

func equalDigests(a, b []artifacts.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// viewTarget returns the symlink target for an artifact seen from a results
// view directory: relative when the cache lies inside the working directory
// (so the pair can move together), absolute otherwise.
func viewTarget(workDir, viewDir, objDir string) string {
	if rel, err := filepath.Rel(workDir, objDir); err == nil && !strings.HasPrefix(rel, "..") {
		if r, err := filepath.Rel(viewDir, objDir); err == nil {
			return r
		}
	}
	return objDir
}
