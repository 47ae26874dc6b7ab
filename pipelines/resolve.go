package pipelines

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/stage"
)

// resolveInstances computes the params and inputs of each instance of rs.
func (b *builder) resolveInstances(rs *rawStage) {
	st := rs.st
	names := append([]string{}, b.varList...)
	names = append(names, st.Axes...)
	for _, inst := range st.Instances {
		look := func(name string, pos Pos) (any, error) {
			if v, ok := inst.Matrix[name]; ok {
				return v, nil
			}
			if _, ok := b.vars[name]; ok {
				return b.varValue(name, pos)
			}
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("unresolved ${%s}: no var or matrix axis %q%s", name, name, stage.DidYouMean(name, names))}
		}
		before := b.errs.reported
		if st.Kind != nil {
			inst.Params = b.params(rs, look)
		}
		inst.Inputs = b.inputs(rs, inst, look)
		inst.Deps = distinctDeps(inst.Inputs)
		if b.errs.reported > before {
			b.incomplete[inst] = true
		}
	}
}

// params resolves the `with:` of one instance against the kind's schema.
func (b *builder) params(rs *rawStage, look lookupFunc) stage.Params {
	k := rs.st.Kind
	out := make(stage.Params, len(k.Params))
	for _, rp := range rs.with {
		p, ok := k.Param(rp.name)
		if !ok {
			if len(k.Params) == 0 {
				b.errs.add(rp.kpos, "unknown param %q: kind %s takes no params", rp.name, k.Name)
			} else {
				b.errs.add(rp.kpos, "unknown param %q for kind %s%s; it takes %s", rp.name, k.Name, stage.DidYouMean(rp.name, paramNames(k)), quoteList(paramNames(k)))
			}
			continue
		}
		v, err := rp.t.eval(look)
		if err != nil {
			if err != errSilent {
				b.errs.addErr(rp.t.pos, err)
			}
			continue
		}
		c, err := p.Convert(v)
		if err != nil {
			b.errs.add(rp.t.pos, "param %s: %v%s", rp.name, err, b.origin(rp.t))
			continue
		}
		out[rp.name] = c
	}
	for _, p := range k.Params {
		if _, given := out[p.Name]; given || hasParam(rs.with, p.Name) {
			continue
		}
		if p.Required {
			pos := rs.withPos
			if pos.Line == 0 {
				pos = rs.st.Pos
			}
			doc := ""
			if p.Doc != "" {
				doc = ": " + p.Doc
			}
			b.errs.add(pos, "stage %s: missing required param %q (%s%s)", rs.st.Name, p.Name, p.Type, doc)
			continue
		}
		if p.Default != nil {
			c, err := p.Convert(p.Default)
			if err != nil {
				b.errs.add(rs.st.Pos, "kind %s: default of param %s: %v", k.Name, p.Name, err)
				continue
			}
			out[p.Name] = c
		}
	}
	absPaths(k.Params, out, b.opts.BaseDir)
	return out
}

// origin notes where a value that is exactly ${var} came from, when a
// --set flag gave that var: the flag is what the user should fix.
func (b *builder) origin(t *tmpl) string {
	if t.kind != tVar {
		return ""
	}
	if v, ok := b.vars[t.name]; ok && v.setByFlag {
		for _, s := range b.opts.Sets {
			if s.Name == t.name {
				return fmt.Sprintf(" (${%s} is set by --set %s=%s)", t.name, s.Name, s.Value)
			}
		}
	}
	return ""
}

func hasParam(ps []rawParam, name string) bool {
	for _, p := range ps {
		if p.name == name {
			return true
		}
	}
	return false
}

func paramNames(k *stage.Kind) []string {
	names := make([]string, len(k.Params))
	for i, p := range k.Params {
		names[i] = p.Name
	}
	return names
}

func inputNames(k *stage.Kind) []string {
	names := make([]string, len(k.Inputs))
	for i, in := range k.Inputs {
		names[i] = in.Name
	}
	return names
}

// absPaths makes every Path param in v (nested objects included) absolute,
// resolving relative ones against base.
func absPaths(schema []stage.Param, v stage.Params, base string) {
	for _, p := range schema {
		x, ok := v[p.Name]
		if !ok {
			continue
		}
		switch p.Type {
		case stage.Path:
			if s, ok := x.(string); ok && !filepath.IsAbs(s) {
				v[p.Name] = filepath.Join(base, s)
			} else if ok {
				v[p.Name] = filepath.Clean(s)
			}
		case stage.Object:
			if sub, ok := x.(stage.Params); ok {
				absPaths(p.Fields, sub, base)
			}
		}
	}
}

// inputs resolves the `needs:` of one instance.
func (b *builder) inputs(rs *rawStage, inst *Instance, look lookupFunc) []Binding {
	k := rs.st.Kind
	var out []Binding
	for _, need := range rs.needs {
		var decl stage.Input
		if k != nil {
			var ok bool
			if decl, ok = b.inputDecl(k, need); !ok {
				continue
			}
		}
		bind := Binding{Name: need.name}
		ok := true
		for _, t := range need.refs {
			from, refOK := b.needRef(k, decl, need, t, inst, look)
			bind.From = append(bind.From, from...)
			ok = ok && refOK
		}
		if ok {
			out = append(out, bind)
		}
	}
	if k != nil {
		b.missingInputs(rs, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// inputDecl returns kind k's declaration of the input need binds, or says
// why the binding is wrong: an input the kind lacks, a list for a single
// artifact.
func (b *builder) inputDecl(k *stage.Kind, need rawNeed) (stage.Input, bool) {
	decl, ok := k.Input(need.name)
	if !ok {
		if len(k.Inputs) == 0 {
			b.errs.add(need.pos, "unknown input %q: kind %s reads no inputs", need.name, k.Name)
		} else {
			b.errs.add(need.pos, "unknown input %q for kind %s%s; it reads %s", need.name, k.Name, stage.DidYouMean(need.name, inputNames(k)), quoteList(inputNames(k)))
		}
		return decl, false
	}
	if need.list && !decl.Many {
		b.errs.add(need.pos, "input %s of kind %s takes one artifact; a list is only for inputs that take many", need.name, k.Name)
		return decl, false
	}
	return decl, true
}

// needRef resolves one reference t of need for instance inst, checking it
// against the input's declaration decl (when the kind k is known): how many
// instances it may match and of which kinds, and that inst does not need
// itself. It returns the instances it resolved to (those, even when a check
// failed) and whether it passed.
func (b *builder) needRef(k *stage.Kind, decl stage.Input, need rawNeed, t *tmpl, inst *Instance, look lookupFunc) ([]*Instance, bool) {
	v, err := t.eval(look)
	if err != nil {
		if err != errSilent {
			b.errs.addErr(t.pos, err)
		}
		return nil, false
	}
	s, isStr := v.(string)
	if !isStr {
		b.errs.add(t.pos, "needs %s: want a stage reference, got %s", need.name, describeValue(v))
		return nil, false
	}
	from, star, err := b.resolveRef(s, t.pos, need.name)
	if err != nil {
		if err != errSilent {
			b.errs.addErr(t.pos, err)
		}
		return nil, false
	}
	if k != nil && !decl.Many && (star || len(from) != 1) {
		b.errs.add(t.pos, "needs %s: %q matches %d instances, but input %s of kind %s takes one artifact; name a single instance", need.name, s, len(from), need.name, k.Name)
		return nil, false
	}
	ok := true
	for _, f := range from {
		if f == inst {
			b.errs.add(t.pos, "needs %s: stage instance %s needs itself", need.name, inst.ID)
			ok = false
		}
	}
	if k != nil && len(decl.Kinds) > 0 {
		for _, f := range from {
			if fk := f.Stage.Kind; fk != nil && !slices.Contains(decl.Kinds, fk.Name) {
				b.errs.add(t.pos, "needs %s: %s is a %s stage, but input %s of kind %s takes %s", need.name, f.Stage.Name, fk.Name, need.name, k.Name, kindList(decl.Kinds))
				ok = false
				break
			}
		}
	}
	return from, ok
}

// missingInputs reports the inputs of kind k that the stage leaves
// unbound and the kind requires.
func (b *builder) missingInputs(rs *rawStage, k *stage.Kind) {
	for _, in := range k.Inputs {
		if in.Optional || hasNeed(rs.needs, in.Name) {
			continue
		}
		pos := rs.needsPos
		if pos.Line == 0 {
			pos = rs.st.Pos
		}
		b.errs.add(pos, "stage %s: missing input %q of kind %s (add needs: {%s: <stage>})", rs.st.Name, in.Name, k.Name, in.Name)
	}
}

func hasNeed(ns []rawNeed, name string) bool {
	for _, n := range ns {
		if n.name == name {
			return true
		}
	}
	return false
}

// kindList spells a list of kinds as "a train stage" or "a fetch or npz
// stage".
func kindList(kinds []string) string {
	return "a " + strings.Join(kinds, " or ") + " stage"
}

// distinctDeps lists the instances bindings read, each once, in order of
// first appearance.
func distinctDeps(bindings []Binding) []*Instance {
	var deps []*Instance
	seen := map[*Instance]bool{}
	for _, bind := range bindings {
		for _, f := range bind.From {
			if !seen[f] {
				seen[f] = true
				deps = append(deps, f)
			}
		}
	}
	return deps
}
