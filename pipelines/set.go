package pipelines

import (
	"fmt"
	"strings"
)

// Set overrides one var from the command line: `--set name=value`.
type Set struct {
	Name string // the var to override
	// Value is YAML text: "0.005" is a number, "true" a boolean, "[1, 2]" a
	// list, "abc" a string; an empty value is the empty string.
	Value string
}

// ParseSet parses "name=value".
func ParseSet(s string) (Set, error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || !nameRE.MatchString(name) {
		return Set{}, fmt.Errorf("--set %s: want name=value, with a var name of letters, digits and _", s)
	}
	return Set{Name: name, Value: value}, nil
}

// setTemplate reads a --set value as YAML.
func setTemplate(s Set, pos Pos) (*tmpl, error) {
	if strings.TrimSpace(s.Value) == "" {
		return &tmpl{pos: pos, kind: tLit, lit: s.Value}, nil
	}
	root, err := parseYAML(pos.File, []byte(s.Value))
	if err != nil {
		return nil, fmt.Errorf("value is not valid YAML: %v", err.(*Error).Msg)
	}
	if len(root.Content) == 0 {
		return &tmpl{pos: pos, kind: tLit}, nil
	}
	errs := &errList{}
	r := &reader{file: pos.File, errs: errs}
	t := r.build(root.Content[0])
	if !errs.ok() {
		return nil, fmt.Errorf("%s", errs.errs[0].Msg)
	}
	if t == nil {
		return nil, fmt.Errorf("value %q cannot be read", s.Value)
	}
	relocate(t, pos)
	return t, nil
}

// relocate gives every part of t the position pos (the --set flag).
func relocate(t *tmpl, pos Pos) {
	t.pos = pos
	for _, it := range t.items {
		relocate(it, pos)
	}
	for _, v := range t.vals {
		relocate(v, pos)
	}
}
