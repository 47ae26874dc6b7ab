// Package stages is the registry of the stage kinds built into the runner
// binary.
package stages

import (
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/aggregate"
	"github.com/hessian-spectra/runner/stages/fetch"
	"github.com/hessian-spectra/runner/stages/lanczos"
	"github.com/hessian-spectra/runner/stages/plot"
	"github.com/hessian-spectra/runner/stages/snapshot"
	"github.com/hessian-spectra/runner/stages/train"
)

// Registry returns every stage kind the runner knows, by name.
//
// Each kind package under stages/ adds exactly one line here,
//
//	r.Register(train.Kind)
//
// (with its import), and nothing else: the registry is the only place that
// knows the full set of kinds. Test kinds never belong here; tests build
// their own registries (see internal/fakekinds).
func Registry() stage.Registry {
	r := stage.Registry{}
	r.Register(train.Kind)
	r.Register(snapshot.Kind)
	r.Register(fetch.Kind)
	r.Register(lanczos.Kind)
	r.Register(plot.Kind)
	r.Register(aggregate.Kind)
	return r
}
