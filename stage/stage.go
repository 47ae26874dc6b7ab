// Package stage is the contract between the runner and a stage kind: what a kind
// declares (its params with types and defaults, its named inputs, an implementation
// version) and what it receives when it runs (resolved params, input artifacts, an
// output directory, a log and a progress sink).
//
// A stage kind is a thin adapter: it reads its params and input artifacts, calls a
// numerical library (datasets, models, hessian), and writes files into Env.OutDir.
// Everything it writes there becomes its artifact once Run returns nil; nothing it
// writes survives a failed or cancelled Run. A stage must rely on nothing but its
// Env: no memory of the parent process, no global state, so that it can also be
// executed in a process of its own from the cache alone.
package stage

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
)

// Kind describes one stage kind: its name in specs, its parameter schema, its
// inputs, and the function that runs it.
type Kind struct {
	// Name is the value of `kind:` in a spec, e.g. "train".
	Name string
	// Version is the implementation version. Bump it whenever a change makes
	// cached results of this kind stale (different numbers, different files).
	// It is part of every stage key of this kind.
	Version int
	// Doc is one sentence for `runner kinds` and error messages.
	Doc string
	// Params is the parameter schema. Names are unique; validation rejects
	// unknown names with a "did you mean" hint.
	Params []Param
	// Inputs are the named artifacts the kind reads, addressed in a spec by
	// `needs: {name: stage-ref}`.
	Inputs []Input
	// Light marks a kind whose stages take seconds and little memory (a
	// table, a figure, a snapshot). Ready light stages start before queued
	// heavy ones, so a spec's summaries appear as soon as their inputs
	// exist instead of behind every training or Lanczos stage queued
	// before them. -j still bounds how many stages run at once.
	Light bool
	// Check, when set, checks one stage instance when a spec is read (by
	// plan and run, before anything runs) against its own params and those
	// of the instances upstream of it: everything that would otherwise fail
	// only after hours of upstream work, such as a layer the model lacks or
	// an epoch the training never checkpoints. It returns every problem; a
	// *ParamError is shown at that param's position in the spec.
	Check func(p *Planned) []error
	// Reuse, when set, lets a stage start from a cached artifact of this
	// kind whose params differ in a few params only (see Reuse).
	Reuse *Reuse
	// Run executes the stage. It must honour ctx (return ctx.Err() promptly
	// after cancellation) and write its outputs under e.OutDir only. Call
	// it through Call, which gives it a Progress and turns its panics into
	// errors; its errors need not name the stage.
	Run func(ctx context.Context, e *Env) error
}

// Call runs the kind on e as the runner does, so that a stage's tests see
// what the runner would see: a nil e.Progress becomes Discard, a nil e.Log
// io.Discard and a nil e.RunInfo an empty map, and a panic in Run becomes
// the error "panic: …" with the stack in e.Log. (A panic in a goroutine Run
// starts cannot be recovered here and ends the process.)
//
// A kind returns plain errors, without its stage id, and lets panics
// through to Call: whoever reports the error adds the id, once.
func (k *Kind) Call(ctx context.Context, e *Env) (err error) {
	if e.Progress == nil {
		e.Progress = Discard
	}
	if e.Log == nil {
		e.Log = io.Discard
	}
	if e.RunInfo == nil {
		e.RunInfo = map[string]any{}
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(e.Log, "panic: %v\n\n%s", r, debug.Stack())
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return k.Run(ctx, e)
}

// Input declares one named input of a kind.
type Input struct {
	Name string
	Doc  string
	// Optional inputs may be left out of `needs`.
	Optional bool
	// Many inputs accept a list of stage references or a wildcard such as
	// "train[*]"; the stage then receives every matching artifact.
	Many bool
	// Kinds lists the stage kinds whose artifacts the input accepts; empty
	// accepts any. A spec that binds another kind is an error.
	Kinds []string
}

// Planned is a stage instance as a plan-time Check sees it: its id, kind and
// resolved params, and the instances its inputs read, recursively. Nothing
// has run: there are no artifacts yet.
type Planned struct {
	ID     string
	Kind   *Kind
	Params Params
	// Inputs maps each bound input name to the instances it reads, in order.
	Inputs map[string][]*Planned
}

// Input returns the single instance bound to input name, or nil when the
// input is unbound or bound to several.
func (p *Planned) Input(name string) *Planned {
	if in := p.Inputs[name]; len(in) == 1 {
		return in[0]
	}
	return nil
}

// ParamError is a plan-time problem with one param, reported at that param's
// position in the spec (or the stage's, for a default).
type ParamError struct {
	Param string // the param's name (the top-level name for a nested field)
	Err   error
}

func (e *ParamError) Error() string { return "param " + e.Param + ": " + e.Err.Error() }

func (e *ParamError) Unwrap() error { return e.Err }

// ParamErrorf returns a *ParamError for param with a formatted message.
func ParamErrorf(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Err: fmt.Errorf(format, args...)}
}

// Param returns the schema of the named param and whether it exists.
func (k *Kind) Param(name string) (Param, bool) {
	for _, p := range k.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Input returns the declaration of the named input and whether it exists.
func (k *Kind) Input(name string) (Input, bool) {
	for _, in := range k.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// Env is everything a running stage may use.
type Env struct {
	// ID is the stage instance id, e.g. "spectrum[epoch=3,layer=conv1.weight]".
	ID string
	// Params holds the resolved params, defaults filled in, in canonical types
	// (see Type).
	Params Params
	// Inputs maps each input name to its artifacts, in the order the spec
	// lists them (for wildcards: the order of the matrix expansion).
	Inputs map[string][]Artifact
	// OutDir is an empty directory the stage writes its outputs into. Its
	// content is the artifact, and its digest covers every file except the
	// runner's log.txt and the run/ directory (RunDir).
	OutDir string
	// RunDir (OutDir/run) receives what describes this run rather than its
	// results: wall times, say (the train stage's timings.csv). It is kept
	// in the artifact but not digested, so that the same computation has the
	// same digest on any machine, executor or number of interruptions.
	// Everything else a stage writes must be a deterministic function of its
	// params and inputs.
	RunDir string
	// RunInfo collects facts about the run the stage wants recorded, such as
	// the backend it resolved ("backend": "go"), through SetRunInfo; the
	// runner writes them, with its own (host, wall time, executor), to
	// RunDir/run.json.
	RunInfo map[string]any
	// Log receives the stage's own log; the runner stores it in the artifact
	// as log.txt and prints its tail when the stage fails.
	Log io.Writer
	// Progress reports progress of long loops (epochs, batches, iterations);
	// never nil under Call.
	Progress Progress
	// Backend is the compute backend requested on the command line or by
	// GOMLX_BACKEND ("" means the default). It is not part of the stage key.
	Backend string
	// Downloads is a directory shared by every run on this cache where a
	// stage may keep partial downloads (keyed by URL) so that an interrupted
	// download resumes. It may be empty, meaning no such directory.
	Downloads string
	// Scratch is a directory private to this stage's key that survives a
	// failed, cancelled or killed run and is removed once the stage's
	// artifact is stored. A long stage keeps resumable state there (the
	// train stage: its last completed epoch), so that rerunning after a
	// crash or Ctrl-C continues where it stopped. What it holds must not
	// change results: a resumed run writes the same files as one that was
	// never interrupted. Empty when the runner offers none (a --recheck,
	// which must recompute from nothing).
	Scratch string
	// Prior, for a kind that declares Reuse, is a cached artifact the
	// stage may build on instead of computing from nothing; nil when there
	// is none (and always under --force and --recheck). Whether the stage
	// uses it or not, it must write the same files.
	Prior *Prior
}

// Artifact is one input artifact as a stage sees it.
type Artifact struct {
	// Dir is the artifact directory. It is read-only.
	Dir string
	// Stage is the id of the stage instance that produced it.
	Stage string
	// Matrix holds the matrix values of that instance (empty when it has no matrix).
	Matrix map[string]any
	// Digest is the artifact's content digest.
	Digest string
}

// Input returns the single artifact bound to name. It fails when the input is
// missing or bound to several artifacts.
func (e *Env) Input(name string) (Artifact, error) {
	as := e.Inputs[name]
	switch len(as) {
	case 0:
		return Artifact{}, fmt.Errorf("input %q is not bound", name)
	case 1:
		return as[0], nil
	default:
		return Artifact{}, fmt.Errorf("input %q is bound to %d artifacts, want one", name, len(as))
	}
}

// SetRunInfo records a fact about the run (the backend used, say) for
// RunDir/run.json; see RunInfo.
func (e *Env) SetRunInfo(name string, v any) {
	if e.RunInfo == nil {
		e.RunInfo = map[string]any{}
	}
	e.RunInfo[name] = v
}

// Logf writes one line to the stage log.
func (e *Env) Logf(format string, args ...any) {
	if e.Log == nil {
		return
	}
	fmt.Fprintf(e.Log, format, args...)
	if len(format) == 0 || format[len(format)-1] != '\n' {
		io.WriteString(e.Log, "\n")
	}
}

// Progress receives progress of a stage's long loops. Implementations must be
// safe for use by one goroutine at a time; a stage reports from one goroutine.
type Progress interface {
	// Start begins a unit of work of total steps (0 when unknown), named by
	// what, e.g. "epoch 3/50" or "lanczos full".
	Start(what string, total int)
	// Advance records n more steps of the current unit as done.
	Advance(n int)
	// Finish ends the current unit.
	Finish()
}

// Discard is a Progress that reports nothing.
var Discard Progress = discard{}

type discard struct{}

func (discard) Start(string, int) {}
func (discard) Advance(int)       {}
func (discard) Finish()           {}

// Registry is a set of stage kinds by name.
type Registry map[string]*Kind

// Register adds k to r. It panics on a duplicate name or an invalid schema,
// which are programming errors found at start-up.
func (r Registry) Register(k *Kind) {
	if _, dup := r[k.Name]; dup {
		panic(fmt.Sprintf("stage kind %q registered twice", k.Name))
	}
	if err := k.check(); err != nil {
		panic(err)
	}
	r[k.Name] = k
}

// Names returns the registered kind names, sorted.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (k *Kind) check() error {
	if k.Name == "" || k.Run == nil || k.Version < 1 {
		return fmt.Errorf("stage kind %q: needs a name, a Run function and a version ≥ 1", k.Name)
	}
	seen := map[string]bool{}
	for _, p := range k.Params {
		if seen[p.Name] {
			return fmt.Errorf("stage kind %q: param %q declared twice", k.Name, p.Name)
		}
		seen[p.Name] = true
		if err := p.check(); err != nil {
			return fmt.Errorf("stage kind %q: %w", k.Name, err)
		}
	}
	for _, in := range k.Inputs {
		if seen["needs."+in.Name] {
			return fmt.Errorf("stage kind %q: input %q declared twice", k.Name, in.Name)
		}
		seen["needs."+in.Name] = true
	}
	if err := k.checkReuse(); err != nil {
		return fmt.Errorf("stage kind %q: %w", k.Name, err)
	}
	return nil
}
