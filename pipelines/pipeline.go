// Package pipelines turns a YAML spec into a typed pipeline: the stage
// instances of a DAG with their params resolved to canonical values and their
// inputs bound to other instances, or every problem of the spec at once, each
// at its file:line:col.
//
// Parse goes through five steps, a file each:
//
//	read     (read.go, vars.go)  the YAML (yaml.go, tmpl.go for ${...}): name,
//	                             vars with --set, each stage's own keys
//	expand   (expand.go)         each stage's matrix into instances with stable ids
//	resolve  (resolve.go)        each instance's params against its kind's
//	                             schema, and its needs into bindings (refs.go)
//	validate (check.go)          the kinds' plan-time checks across stages
//	order    (order.go)          the instances topologically; cycles
//
// Each step reports what it finds and goes on, so that one run shows every
// problem; a later step skips what an earlier one found broken.
//
// The spec grammar is documented in specs/README.md.
package pipelines

import (
	"fmt"
	"os"

	"github.com/hessian-spectra/runner/stage"
)

// Pipeline is a parsed and validated spec.
type Pipeline struct {
	// Name is the spec's name (its `name:`, or the file name without
	// extension); it names the results/<name>/ view.
	Name string
	// File is the spec file as given.
	File string
	// Doc is the spec's `doc:` text.
	Doc string
	// Vars holds each var's final value (after --set), by name.
	Vars map[string]any
	// Stages lists the stages in spec order.
	Stages []*Stage
	// Instances lists every stage instance in a topological order: each
	// after all instances it needs.
	Instances []*Instance
	// Resources are the rules of the spec's `resources:` block, in spec
	// order (see ResourcesFor).
	Resources []ResourceRule

	byID    map[string]*Instance
	byStage map[string]*Stage
}

// Stage is one entry of `stages:`, before matrix expansion.
type Stage struct {
	Name string      // the key under stages:
	Kind *stage.Kind // its kind:
	Doc  string      // its doc:
	// Pos is the position of the stage's name in the spec.
	Pos Pos
	// Axes are the matrix axis names, sorted; empty without a matrix.
	Axes []string
	// Instances lists the stage's instances in expansion order: axes sorted
	// by name, the first varying slowest, values in the order listed.
	Instances []*Instance

	// axisIndex maps axis → formatted value → instance positions in
	// Instances; axisValues lists each axis's formatted values in order.
	axisIndex  map[string]map[string][]int
	axisValues map[string][]string
}

// Instance is one stage instance: a stage with one value per matrix axis.
type Instance struct {
	// ID is the stage name, followed for a matrix stage by its values in
	// axis order: "spectrum[epoch=3,layer=fc1.weight]".
	ID    string
	Stage *Stage // the stage it expands
	// Matrix maps each axis to this instance's value; nil without a matrix.
	Matrix map[string]any
	// Params are the resolved params: canonical types, defaults filled in,
	// Path params absolute.
	Params stage.Params
	// Inputs binds each input named in `needs` to the instances it reads, in
	// order; sorted by input name.
	Inputs []Binding
	// Deps lists the distinct instances Inputs reads, each once, in the
	// order they first appear there: the instance's edges in the DAG.
	Deps []*Instance
	// Index is the instance's position in Pipeline.Instances.
	Index int
}

// Binding is one input of an instance.
type Binding struct {
	Name string      // the input's name, as the kind declares it
	From []*Instance // the instances it reads, in order
}

// Instance returns the instance with the given id, or nil.
func (p *Pipeline) Instance(id string) *Instance { return p.byID[id] }

// Stage returns the stage with the given name, or nil.
func (p *Pipeline) Stage(name string) *Stage { return p.byStage[name] }

// Options control how a spec is read.
type Options struct {
	// Registry holds the stage kinds a spec may use.
	Registry stage.Registry
	// Sets override vars, as `runner run --set name=value` does.
	Sets []Set
	// IgnoreUnknownSets skips Sets naming a var the spec lacks instead of
	// reporting them (for commands that read several specs at once).
	IgnoreUnknownSets bool
	// BaseDir is the directory relative Path params resolve against; empty
	// means the working directory (the repo root, where runner is run).
	BaseDir string
}

// Load reads and parses the spec in file.
func Load(file string, opts Options) (*Pipeline, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("spec %w", err)
	}
	return Parse(file, src, opts)
}

// Parse parses and validates the spec src, read from file (used in
// positions and as the default name). It reports every problem it finds, each
// as an *Error; Errors lists them.
func Parse(file string, src []byte, opts Options) (p *Pipeline, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("internal error reading the spec: %v", r)}
		}
	}()
	if opts.BaseDir == "" {
		if opts.BaseDir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	root, err := parseYAML(file, src)
	if err != nil {
		return nil, err
	}
	b := &builder{opts: opts, errs: &errList{}, incomplete: map[*Instance]bool{}}
	b.r = &reader{file: file, errs: b.errs}
	if p = b.read(file, root); p != nil {
		for _, rs := range b.stages {
			b.expand(rs)
		}
		for _, rs := range b.stages {
			if rs.ok {
				b.resolveInstances(rs)
			}
		}
		b.checkInstances()
		if b.errs.ok() {
			b.order()
			b.checkResources()
		}
	}
	if err := b.errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}
