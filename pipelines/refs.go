package pipelines

import (
	"fmt"
	"strings"

	"github.com/hessian-spectra/runner/stage"
)

// ref is a parsed stage reference: "train", "snap[epoch=3]", "spectrum[*]",
// "spectrum[layer=full,*]".
type ref struct {
	stage   string
	bracket bool
	star    bool
	sel     []selector
}

type selector struct{ axis, value string }

// parseRef parses a stage reference.
func parseRef(s string) (ref, error) {
	var r ref
	open := strings.IndexByte(s, '[')
	if open < 0 {
		r.stage = s
	} else {
		if !strings.HasSuffix(s, "]") {
			return r, fmt.Errorf("bad reference %q: missing ]", s)
		}
		r.stage, r.bracket = s[:open], true
		body := s[open+1 : len(s)-1]
		if body == "" {
			return r, fmt.Errorf("bad reference %q: empty []; write %s[*] for all instances", s, r.stage)
		}
		seen := map[string]bool{}
		for _, part := range strings.Split(body, ",") {
			part = strings.TrimSpace(part)
			if part == "*" {
				if r.star {
					return r, fmt.Errorf("bad reference %q: * given twice", s)
				}
				r.star = true
				continue
			}
			eq := strings.IndexByte(part, '=')
			if eq <= 0 {
				return r, fmt.Errorf("bad reference %q: want axis=value or *, got %q", s, part)
			}
			sel := selector{axis: strings.TrimSpace(part[:eq]), value: strings.TrimSpace(part[eq+1:])}
			if sel.value == "" || strings.ContainsAny(sel.value, "[]=*") {
				return r, fmt.Errorf("bad reference %q: bad value %q for %s", s, sel.value, sel.axis)
			}
			if seen[sel.axis] {
				return r, fmt.Errorf("bad reference %q: axis %s given twice", s, sel.axis)
			}
			seen[sel.axis] = true
			r.sel = append(r.sel, sel)
		}
	}
	if !stageNameRE.MatchString(r.stage) {
		return r, fmt.Errorf("bad reference %q: want a stage name, optionally followed by [axis=value,...] or [*]", s)
	}
	return r, nil
}

// resolveRef returns the instances a reference names, and whether it was a
// wildcard. Errors are unpositioned: callers position them at the ref.
func (b *builder) resolveRef(s string, pos Pos, input string) ([]*Instance, bool, error) {
	r, err := parseRef(s)
	if err != nil {
		return nil, false, &Error{Pos: pos, Msg: fmt.Sprintf("needs %s: %v", input, err)}
	}
	st := b.p.byStage[r.stage]
	if st == nil {
		return nil, false, &Error{Pos: pos, Msg: fmt.Sprintf("needs %s: no stage %q%s", input, r.stage, stage.DidYouMean(r.stage, b.stageNames()))}
	}
	if len(st.Instances) == 0 {
		return nil, false, errSilent // the stage's own errors are reported
	}
	from, err := st.match(r, s)
	if err != nil {
		return nil, false, &Error{Pos: pos, Msg: fmt.Sprintf("needs %s: %v", input, err)}
	}
	return from, r.star, nil
}

func (b *builder) stageNames() []string {
	names := make([]string, len(b.p.Stages))
	for i, st := range b.p.Stages {
		names[i] = st.Name
	}
	return names
}

// match returns the instances of st that r selects.
func (st *Stage) match(r ref, s string) ([]*Instance, error) {
	if !r.bracket {
		if len(st.Axes) > 0 {
			return nil, fmt.Errorf("stage %s has a matrix (%s); write %s for one instance or %s[*] for all",
				st.Name, strings.Join(st.Axes, ", "), exampleRef(st), st.Name)
		}
		return st.Instances, nil
	}
	given := map[string]string{}
	for _, sel := range r.sel {
		vals, ok := st.axisIndex[sel.axis]
		if !ok {
			if len(st.Axes) == 0 {
				return nil, fmt.Errorf("%q: stage %s has no matrix", s, st.Name)
			}
			return nil, fmt.Errorf("%q: stage %s has no matrix axis %q%s (axes: %s)", s, st.Name, sel.axis, stage.DidYouMean(sel.axis, st.Axes), strings.Join(st.Axes, ", "))
		}
		if _, ok := vals[sel.value]; !ok {
			return nil, fmt.Errorf("%q: no instance of %s has %s=%s (%s takes %s)", s, st.Name, sel.axis, sel.value, sel.axis, describeAxis(st, sel.axis))
		}
		given[sel.axis] = sel.value
	}
	if !r.star {
		var missing []string
		for _, a := range st.Axes {
			if _, ok := given[a]; !ok {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%q leaves %s open; give %s=… too, or end with ,* to take every match", s, strings.Join(missing, ", "), missing[0])
		}
	}
	if len(r.sel) == 0 {
		return st.Instances, nil
	}
	// Start from the smallest posting list and keep what matches the rest.
	best := r.sel[0]
	for _, sel := range r.sel[1:] {
		if len(st.axisIndex[sel.axis][sel.value]) < len(st.axisIndex[best.axis][best.value]) {
			best = sel
		}
	}
	var out []*Instance
	for _, i := range st.axisIndex[best.axis][best.value] {
		inst := st.Instances[i]
		ok := true
		for _, sel := range r.sel {
			if v, _ := scalarText(inst.Matrix[sel.axis]); v != sel.value {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, inst)
		}
	}
	return out, nil
}

// exampleRef shows how to name one instance of a matrix stage.
func exampleRef(st *Stage) string {
	parts := make([]string, len(st.Axes))
	for i, a := range st.Axes {
		v, _ := scalarText(st.Instances[0].Matrix[a])
		parts[i] = a + "=" + v
	}
	return st.Name + "[" + strings.Join(parts, ",") + "]"
}

// describeAxis lists an axis's values briefly: "1, 2, 3, …, 50".
func describeAxis(st *Stage, axis string) string {
	vals := st.axisValues[axis]
	if len(vals) > 6 {
		return strings.Join(vals[:3], ", ") + ", …, " + vals[len(vals)-1]
	}
	return strings.Join(vals, ", ")
}

// Match returns the instances a pattern names: an instance id, a stage name
// (all its instances), or a reference with a wildcard such as
// "spectrum[layer=full,*]". Axes in an id may come in any order.
func (p *Pipeline) Match(pattern string) ([]*Instance, error) {
	if inst := p.byID[pattern]; inst != nil {
		return []*Instance{inst}, nil
	}
	r, err := parseRef(pattern)
	if err != nil {
		return nil, err
	}
	st := p.byStage[r.stage]
	if st == nil {
		names := make([]string, len(p.Stages))
		for i, s := range p.Stages {
			names[i] = s.Name
		}
		return nil, fmt.Errorf("spec %s has no stage %q%s", p.Name, r.stage, stage.DidYouMean(r.stage, names))
	}
	if !r.bracket {
		return st.Instances, nil
	}
	return st.match(r, pattern)
}
