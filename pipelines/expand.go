package pipelines

import (
	"fmt"
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
	axes, ok := b.axes(rs)
	if !ok {
		rs.ok = false
		return
	}
	total, ok := b.count(rs.st, axes)
	if !ok {
		rs.ok = false
		return
	}
	indexAxes(rs.st, axes)
	if !b.withinBudget(rs, total) {
		rs.ok = false
		return
	}
	rs.ok = b.instances(rs.st, axes, total)
}

// axes evaluates the stage's matrix axes (their values may use vars only),
// sorted by name.
func (b *builder) axes(rs *rawStage) ([]axisValues, bool) {
	look := func(name string, pos Pos) (any, error) {
		if _, ok := b.vars[name]; ok {
			return b.varValue(name, pos)
		}
		return nil, &Error{Pos: pos, Msg: fmt.Sprintf("unresolved ${%s}: matrix values may use vars only, and there is no var %q%s", name, name, stage.DidYouMean(name, b.varList))}
	}
	var axes []axisValues
	ok := true
	for _, ax := range rs.matrix {
		av, axOK := b.axis(ax, look)
		if !axOK {
			ok = false
			continue
		}
		axes = append(axes, av)
	}
	sort.Slice(axes, func(i, j int) bool { return axes[i].name < axes[j].name })
	return axes, ok
}

// count returns the number of instances the axes expand to, names the
// stage's axes, and checks the bounds on instances per stage and spec.
func (b *builder) count(st *Stage, axes []axisValues) (int, bool) {
	total := 1
	for _, ax := range axes {
		st.Axes = append(st.Axes, ax.name)
		total *= len(ax.vals)
		if total > maxInstances {
			b.errs.add(st.Pos, "stage %s: the matrix expands to more than %d instances", st.Name, maxInstances)
			return 0, false
		}
	}
	if len(b.p.byID)+total > maxInstances {
		b.errs.add(st.Pos, "the spec expands to more than %d stage instances", maxInstances)
		return 0, false
	}
	return total, true
}

// indexAxes prepares the stage's index of instances by axis value.
func indexAxes(st *Stage, axes []axisValues) {
	if len(axes) == 0 {
		return
	}
	st.axisIndex = make(map[string]map[string][]int, len(axes))
	st.axisValues = make(map[string][]string, len(axes))
	for _, ax := range axes {
		st.axisIndex[ax.name] = make(map[string][]int, len(ax.vals))
		st.axisValues[ax.name] = ax.strs
	}
}

// withinBudget adds the template values the stage's total instances
// evaluate to the spec's count, and checks it stays within maxEvalNodes.
func (b *builder) withinBudget(rs *rawStage, total int) bool {
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
		b.errs.add(rs.st.Pos, "stage %s: its params times its %d instances are too large to evaluate (over %d values)", rs.st.Name, total, maxEvalNodes)
		return false
	}
	return true
}

// instances creates the stage's total instances, one per combination of
// axis values (the last axis varies fastest), with their ids, and indexes
// them by axis value.
func (b *builder) instances(st *Stage, axes []axisValues, total int) bool {
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
			return false
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
	return true
}

// axis evaluates one matrix axis.
func (b *builder) axis(ax rawAxis, look lookupFunc) (axisValues, bool) {
	if ax.rng != nil {
		return b.rangeAxis(ax, look)
	}
	av := axisValues{name: ax.name}
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

// rangeAxis evaluates an axis given as {range: [first, last, step]}.
func (b *builder) rangeAxis(ax rawAxis, look lookupFunc) (axisValues, bool) {
	av := axisValues{name: ax.name}
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
			pos, origin := ax.rng.pos, ""
			if ax.rng.kind == tList && i < len(ax.rng.items) {
				pos, origin = ax.rng.items[i].pos, b.origin(ax.rng.items[i])
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
