package pipelines

import (
	"fmt"

	"github.com/hessian-spectra/runner/stage"
	"gopkg.in/yaml.v3"
)

// varState is where the resolution of a var stands; resolving marks a var
// on the current chain of ${...} references, so meeting it again is a
// cycle.
type varState int

const (
	unresolved varState = iota
	resolving
	resolved
	failedVar
)

type varDef struct {
	name      string
	pos       Pos
	t         *tmpl
	value     any
	state     varState
	setByFlag bool
}

func (b *builder) readVars(n *yaml.Node) {
	b.vars = map[string]*varDef{}
	es, _ := b.r.entries(n, "vars")
	for _, e := range es {
		if !nameRE.MatchString(e.key) {
			b.errs.add(e.kpos, "var name %q: use letters, digits and _, not starting with a digit", e.key)
			continue
		}
		t := b.r.build(e.value)
		if t == nil {
			continue
		}
		b.vars[e.key] = &varDef{name: e.key, pos: e.kpos, t: t}
		b.varList = append(b.varList, e.key)
	}
}

// applySets replaces vars by --set values.
func (b *builder) applySets() {
	if b.vars == nil {
		b.vars = map[string]*varDef{}
	}
	for _, s := range b.opts.Sets {
		pos := Pos{File: "--set " + s.Name + "=" + s.Value}
		v, ok := b.vars[s.Name]
		if !ok {
			if !b.opts.IgnoreUnknownSets {
				b.errs.add(pos, "the spec has no var %q%s (vars: %s)", s.Name, stage.DidYouMean(s.Name, b.varList), quoteList(b.varList))
			}
			continue
		}
		t, err := setTemplate(s, pos)
		if err != nil {
			b.errs.add(pos, "%v", err)
			continue
		}
		v.t, v.setByFlag = t, true
	}
}

// varValue resolves var name, detecting cycles among vars.
func (b *builder) varValue(name string, pos Pos) (any, error) {
	v, ok := b.vars[name]
	if !ok {
		return nil, nil
	}
	switch v.state {
	case resolved:
		return v.value, nil
	case failedVar:
		return nil, errSilent
	case resolving:
		v.state = failedVar
		return nil, &Error{Pos: v.pos, Msg: fmt.Sprintf("var %q refers to itself through ${...}", name)}
	}
	v.state = resolving
	val, err := v.t.eval(func(n string, p Pos) (any, error) {
		if _, ok := b.vars[n]; !ok {
			return nil, &Error{Pos: p, Msg: fmt.Sprintf("unresolved ${%s}: no var %q%s", n, n, stage.DidYouMean(n, b.varList))}
		}
		return b.varValue(n, p)
	})
	if err != nil {
		v.state = failedVar
		return nil, err
	}
	v.value, v.state = val, resolved
	return val, nil
}
