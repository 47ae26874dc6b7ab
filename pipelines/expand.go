package pipelines

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/stage"
)

// maxInstances bounds the instances one spec may expand to.
const maxInstances = 250_000

// maxEvalNodes bounds the template nodes evaluated for a whole spec
// (template size × instances), so that a large aliased value in a large
// matrix is an error rather than minutes of work.
const maxEvalNodes = 50_000_000

// badValueChars may not appear in matrix values: they delimit ids and refs.
const badValueChars = "[]=,*${} \t\r\n"

type axisValues struct {
	name string
	vals []any
	strs []string
}

// expand evaluates a stage's matrix and creates its instances.
func (b *builder) expand(rs *rawStage) {
	if !rs.ok {
		return
	}
	st := rs.st
	look := func(name string, pos Pos) (any, error) {
		if _, ok := b.vars[name]; ok {
			return b.varValue(name, pos)
		}
		return nil, &Error{Pos: pos, Msg: fmt.Sprintf("unresolved ${%s}: matrix values may use vars only, and there is no var %q%s", name, name, didYouMean(name, b.varList))}
	}
	var axes []axisValues
	for _, ax := range rs.matrix {
		av, ok := b.axis(ax, look)
		if !ok {
			rs.ok = false
			continue
		}
		axes = append(axes, av)
	}
	if !rs.ok {
		return
	}
	sort.Slice(axes, func(i, j int) bool { return axes[i].name < axes[j].name })
	total := 1
	for _, ax := range axes {
		st.Axes = append(st.Axes, ax.name)
		total *= len(ax.vals)
		if total > maxInstances {
			b.errs.add(st.Pos, "stage %s: the matrix expands to more than %d instances", st.Name, maxInstances)
			rs.ok = false
			return
		}
	}
	if len(b.p.byID)+total > maxInstances {
		b.errs.add(st.Pos, "the spec expands to more than %d stage instances", maxInstances)
		rs.ok = false
		return
	}
	if len(axes) > 0 {
		st.axisIndex = make(map[string]map[string][]int, len(axes))
		st.axisValues = make(map[string][]string, len(axes))
		for _, ax := range axes {
			st.axisIndex[ax.name] = make(map[string][]int, len(ax.vals))
			st.axisValues[ax.name] = ax.strs
		}
	}
	work := 0
	for _, rp := range rs.with {
		work += rp.t.cost(b.p.Vars)
	}
	for _, nd := range rs.needs {
		for _, t := range nd.refs {
			work += t.cost(b.p.Vars)
		}
	}
	b.evalNodes += work * total
	if b.evalNodes > maxEvalNodes {
		b.errs.add(st.Pos, "stage %s: its params times its %d instances are too large to evaluate (over %d values)", st.Name, total, maxEvalNodes)
		rs.ok = false
		return
	}
	idx := make([]int, len(axes))
	var id strings.Builder
	for n := 0; n < total; n++ {
		inst := &Instance{Stage: st}
		id.Reset()
		id.WriteString(st.Name)
		if len(axes) > 0 {
			inst.Matrix = make(map[string]any, len(axes))
			id.WriteByte('[')
			for a, ax := range axes {
				if a > 0 {
					id.WriteByte(',')
				}
				id.WriteString(ax.name)
				id.WriteByte('=')
				id.WriteString(ax.strs[idx[a]])
				inst.Matrix[ax.name] = ax.vals[idx[a]]
				st.axisIndex[ax.name][ax.strs[idx[a]]] = append(st.axisIndex[ax.name][ax.strs[idx[a]]], n)
			}
			id.WriteByte(']')
		}
		inst.ID = id.String()
		if _, dup := b.p.byID[inst.ID]; dup {
			b.errs.add(st.Pos, "stage instance %s is defined twice", inst.ID)
			rs.ok = false
			return
		}
		b.p.byID[inst.ID] = inst
		st.Instances = append(st.Instances, inst)
		// Next combination: the last axis varies fastest.
		for a := len(axes) - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < len(axes[a].vals) {
				break
			}
			idx[a] = 0
		}
	}
}

// axis evaluates one matrix axis.
func (b *builder) axis(ax rawAxis, look lookupFunc) (axisValues, bool) {
	av := axisValues{name: ax.name}
	if ax.rng != nil {
		v, err := ax.rng.eval(look)
		if err != nil {
			b.errs.addErr(ax.rng.pos, err)
			return av, false
		}
		items, ok := v.([]any)
		if !ok || len(items) < 2 || len(items) > 3 {
			b.errs.add(ax.rng.pos, "matrix %s: range wants [first, last] or [first, last, step], got %s", ax.name, describeValue(v))
			return av, false
		}
		var bounds [3]int
		bounds[2] = 1
		for i, it := range items {
			n, ok := it.(int)
			if !ok {
				pos := ax.rng.pos
				if ax.rng.kind == tList && i < len(ax.rng.items) {
					pos = ax.rng.items[i].pos
				}
				origin := ""
				if ax.rng.kind == tList && i < len(ax.rng.items) {
					origin = b.origin(ax.rng.items[i])
				}
				b.errs.add(pos, "matrix %s: range bounds must be integers, got %s%s", ax.name, describeValue(it), origin)
				return av, false
			}
			bounds[i] = n
		}
		lo, hi, step := bounds[0], bounds[1], bounds[2]
		switch {
		case step <= 0:
			b.errs.add(ax.rng.pos, "matrix %s: range step must be positive, got %d", ax.name, step)
			return av, false
		case lo > hi:
			b.errs.add(ax.rng.pos, "matrix %s: range [%d, %d] is empty (first > last)", ax.name, lo, hi)
			return av, false
		case (hi-lo)/step >= maxInstances || hi-lo < 0:
			b.errs.add(ax.rng.pos, "matrix %s: range [%d, %d] has more than %d values", ax.name, lo, hi, maxInstances)
			return av, false
		}
		for x := lo; x <= hi && x >= lo; x += step {
			av.vals = append(av.vals, x)
			av.strs = append(av.strs, fmt.Sprint(x))
		}
		return av, true
	}
	v, err := ax.values.eval(look)
	if err != nil {
		b.errs.addErr(ax.values.pos, err)
		return av, false
	}
	items, ok := v.([]any)
	if !ok {
		b.errs.add(ax.values.pos, "matrix %s: want a list of values or {range: [first, last]}, got %s", ax.name, describeValue(v))
		return av, false
	}
	if len(items) == 0 {
		b.errs.add(ax.values.pos, "matrix %s: the list of values is empty", ax.name)
		return av, false
	}
	seen := map[string]bool{}
	for _, it := range items {
		s, ok := scalarText(it)
		if !ok {
			b.errs.add(ax.values.pos, "matrix %s: values must be strings, numbers or booleans, got %s", ax.name, describeValue(it))
			return av, false
		}
		if s == "" || strings.ContainsAny(s, badValueChars) {
			b.errs.add(ax.values.pos, "matrix %s: value %q may not be empty or contain any of %q", ax.name, s, "[]=,*${}")
			return av, false
		}
		if seen[s] {
			b.errs.add(ax.values.pos, "matrix %s: value %s is listed twice", ax.name, s)
			return av, false
		}
		seen[s] = true
		av.vals = append(av.vals, it)
		av.strs = append(av.strs, s)
	}
	return av, true
}

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
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("unresolved ${%s}: no var or matrix axis %q%s", name, name, didYouMean(name, names))}
		}
		before := b.errs.reported
		if st.Kind != nil {
			inst.Params = b.params(rs, look)
		}
		inst.Inputs = b.inputs(rs, inst, look)
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
				b.errs.add(rp.kpos, "unknown param %q for kind %s%s; it takes %s", rp.name, k.Name, didYouMean(rp.name, paramNames(k)), quoteList(paramNames(k)))
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
			decl, ok = k.Input(need.name)
			if !ok {
				if len(k.Inputs) == 0 {
					b.errs.add(need.pos, "unknown input %q: kind %s reads no inputs", need.name, k.Name)
				} else {
					b.errs.add(need.pos, "unknown input %q for kind %s%s; it reads %s", need.name, k.Name, didYouMean(need.name, inputNames(k)), quoteList(inputNames(k)))
				}
				continue
			}
			if need.list && !decl.Many {
				b.errs.add(need.pos, "input %s of kind %s takes one artifact; a list is only for inputs that take many", need.name, k.Name)
				continue
			}
		}
		bind := Binding{Name: need.name}
		ok := true
		for _, t := range need.refs {
			v, err := t.eval(look)
			if err != nil {
				if err != errSilent {
					b.errs.addErr(t.pos, err)
				}
				ok = false
				continue
			}
			s, isStr := v.(string)
			if !isStr {
				b.errs.add(t.pos, "needs %s: want a stage reference, got %s", need.name, describeValue(v))
				ok = false
				continue
			}
			from, star, err := b.resolveRef(s, t.pos, need.name)
			if err != nil {
				if err != errSilent {
					b.errs.addErr(t.pos, err)
				}
				ok = false
				continue
			}
			if k != nil && !decl.Many && (star || len(from) != 1) {
				b.errs.add(t.pos, "needs %s: %q matches %d instances, but input %s of kind %s takes one artifact; name a single instance", need.name, s, len(from), need.name, k.Name)
				ok = false
				continue
			}
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
			bind.From = append(bind.From, from...)
		}
		if ok {
			out = append(out, bind)
		}
	}
	if k != nil {
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
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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
