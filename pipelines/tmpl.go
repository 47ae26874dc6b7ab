package pipelines

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A tmpl is a YAML value in which strings may refer to vars and matrix values
// as ${name}. It is built once from the YAML nodes and evaluated per stage
// instance.
type tmpl struct {
	pos   Pos
	kind  tKind
	lit   any        // tLit: nil, bool, int, float64 or string
	parts []textPart // tText
	name  string     // tVar
	items []*tmpl    // tList
	keys  []string   // tMap, in YAML order
	vals  []*tmpl    // tMap
}

type tKind int

const (
	tLit  tKind = iota // a value without references
	tText              // a string with ${name} inside longer text
	tVar               // exactly "${name}": takes the referred value and its type
	tList
	tMap
)

// textPart is literal text, or a reference when name is set.
type textPart struct {
	text string
	name string
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseText splits s into literal text and ${name} references. "$$" stands
// for a literal "$", so "$${x}" is the text "${x}".
func parseText(s string) ([]textPart, error) {
	if !strings.Contains(s, "$") {
		return []textPart{{text: s}}, nil
	}
	var parts []textPart
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			lit.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			lit.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ${ in %q (write $$ for a literal $)", s)
			}
			name := s[i+2 : i+2+end]
			if !nameRE.MatchString(name) {
				return nil, fmt.Errorf("bad reference ${%s} in %q: a name is letters, digits and _", name, s)
			}
			if lit.Len() > 0 {
				parts = append(parts, textPart{text: lit.String()})
				lit.Reset()
			}
			parts = append(parts, textPart{name: name})
			i += 2 + end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 || len(parts) == 0 {
		parts = append(parts, textPart{text: lit.String()})
	}
	return parts, nil
}

// build turns node n into a template, reporting problems to r.errs. It
// returns nil when n cannot be read.
func (r *reader) build(n *yaml.Node) *tmpl {
	if n == nil || !r.budget(n) {
		return nil
	}
	pos := r.pos(n)
	d := deref(n)
	if d == nil {
		return &tmpl{pos: pos, kind: tLit}
	}
	switch d.Kind {
	case yaml.ScalarNode:
		v, err := scalarValue(d)
		if err != nil {
			r.errs.add(pos, "%v", err)
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return &tmpl{pos: pos, kind: tLit, lit: v}
		}
		parts, err := parseText(s)
		if err != nil {
			r.errs.add(pos, "%v", err)
			return nil
		}
		switch {
		case len(parts) == 1 && parts[0].name != "":
			return &tmpl{pos: pos, kind: tVar, name: parts[0].name}
		case len(parts) == 1:
			return &tmpl{pos: pos, kind: tLit, lit: parts[0].text}
		}
		return &tmpl{pos: pos, kind: tText, parts: parts}
	case yaml.SequenceNode:
		t := &tmpl{pos: pos, kind: tList}
		for _, item := range d.Content {
			it := r.build(item)
			if it == nil {
				return nil
			}
			t.items = append(t.items, it)
		}
		return t
	case yaml.MappingNode:
		es, ok := r.entries(d, "value")
		if !ok {
			return nil
		}
		t := &tmpl{pos: pos, kind: tMap}
		for _, e := range es {
			v := r.build(e.value)
			if v == nil {
				return nil
			}
			t.keys = append(t.keys, e.key)
			t.vals = append(t.vals, v)
		}
		return t
	}
	r.errs.add(pos, "unexpected YAML node")
	return nil
}

// lookupFunc returns the value of a var or matrix axis, or an error
// positioned at pos.
type lookupFunc func(name string, pos Pos) (any, error)

// eval computes the template's value: nil, bool, int, float64, string,
// []any or map[string]any.
func (t *tmpl) eval(look lookupFunc) (any, error) {
	switch t.kind {
	case tLit:
		return t.lit, nil
	case tVar:
		return look(t.name, t.pos)
	case tText:
		var b strings.Builder
		for _, p := range t.parts {
			if p.name == "" {
				b.WriteString(p.text)
				continue
			}
			v, err := look(p.name, t.pos)
			if err != nil {
				return nil, err
			}
			s, ok := scalarText(v)
			if !ok {
				return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("${%s} is %s; only a scalar can be part of a longer string", p.name, describeValue(v))}
			}
			b.WriteString(s)
		}
		return b.String(), nil
	case tList:
		out := make([]any, len(t.items))
		for i, it := range t.items {
			v, err := it.eval(look)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case tMap:
		out := make(map[string]any, len(t.keys))
		for i, k := range t.keys {
			v, err := t.vals[i].eval(look)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, &Error{Pos: t.pos, Msg: "bad template"}
}

// cost estimates the work of one evaluation: the template's nodes plus the
// size of every value it takes whole from a var (which Param.Convert then
// copies).
func (t *tmpl) cost(vars map[string]any) int {
	switch t.kind {
	case tVar:
		return 1 + valueSize(vars[t.name])
	case tList, tMap:
		n := 1
		for _, it := range t.items {
			n += it.cost(vars)
		}
		for _, v := range t.vals {
			n += v.cost(vars)
		}
		return n
	}
	return 1
}

// valueSize counts the nodes of an evaluated value.
func valueSize(v any) int {
	switch x := v.(type) {
	case []any:
		n := 1
		for _, e := range x {
			n += valueSize(e)
		}
		return n
	case map[string]any:
		n := 1
		for _, e := range x {
			n += valueSize(e)
		}
		return n
	}
	return 1
}

// scalarText formats a scalar for substitution into text, as ids show it.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return formatFloat(x), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
