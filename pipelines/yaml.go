package pipelines

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the YAML nodes one spec may expand to, aliases counted at
// each use, so that an alias bomb is an error rather than an exhausted memory.
const maxNodes = 1 << 20

// reader turns YAML nodes of one file into positions, entries and values.
type reader struct {
	file  string
	errs  *errList
	nodes int
}

func (r *reader) pos(n *yaml.Node) Pos { return Pos{File: r.file, Line: n.Line, Col: n.Column} }

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// budget counts n against maxNodes and reports whether there is room.
func (r *reader) budget(n *yaml.Node) bool {
	r.nodes++
	if r.nodes == maxNodes+1 {
		r.errs.add(r.pos(n), "spec expands to more than %d YAML nodes (excessive aliasing?)", maxNodes)
	}
	return r.nodes <= maxNodes
}

// entry is one key/value pair of a YAML mapping.
type entry struct {
	key   string
	kpos  Pos
	value *yaml.Node
}

// entries returns the pairs of mapping node n, with merge keys (<<: *base)
// applied: explicit keys win over merged ones, earlier merged mappings over
// later. Duplicate explicit keys and non-scalar keys are errors. what names
// the mapping in messages.
func (r *reader) entries(n *yaml.Node, what string) ([]entry, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		r.errs.add(r.pos(nodeOr(n)), "%s: want a mapping, got %s", what, describeNode(n))
		return nil, false
	}
	var out []entry
	index := map[string]int{}
	var merged []entry
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !r.budget(k) {
			return nil, false
		}
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			ms, mok := r.mergeSources(v, what)
			ok = ok && mok
			merged = append(merged, ms...)
			continue
		}
		kd := deref(k)
		if kd == nil || kd.Kind != yaml.ScalarNode {
			r.errs.add(r.pos(k), "%s: keys must be plain strings, got %s", what, describeNode(kd))
			ok = false
			continue
		}
		if j, dup := index[kd.Value]; dup {
			r.errs.add(r.pos(k), "%s: key %q is already defined at line %d", what, kd.Value, out[j].kpos.Line)
			ok = false
			continue
		}
		index[kd.Value] = len(out)
		out = append(out, entry{key: kd.Value, kpos: r.pos(k), value: v})
	}
	for _, e := range merged {
		if _, dup := index[e.key]; dup {
			continue
		}
		index[e.key] = len(out)
		out = append(out, e)
	}
	return out, ok
}

// mergeSources returns the entries a merge key's value brings in.
func (r *reader) mergeSources(v *yaml.Node, what string) ([]entry, bool) {
	d := deref(v)
	if d == nil {
		return nil, false
	}
	switch d.Kind {
	case yaml.MappingNode:
		return r.entries(d, what)
	case yaml.SequenceNode:
		var out []entry
		seen := map[string]bool{}
		ok := true
		for _, item := range d.Content {
			if deref(item) == nil || deref(item).Kind != yaml.MappingNode {
				r.errs.add(r.pos(item), "%s: a merge key (<<) takes a mapping or a list of mappings, got %s", what, describeNode(deref(item)))
				ok = false
				continue
			}
			es, eok := r.entries(item, what)
			ok = ok && eok
			for _, e := range es {
				if !seen[e.key] {
					seen[e.key] = true
					out = append(out, e)
				}
			}
		}
		return out, ok
	}
	r.errs.add(r.pos(v), "%s: a merge key (<<) takes a mapping or a list of mappings, got %s", what, describeNode(d))
	return nil, false
}

func nodeOr(n *yaml.Node) *yaml.Node {
	if n == nil {
		return &yaml.Node{}
	}
	return n
}

// describeNode names what a node is, for messages.
func describeNode(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v, err := scalarValue(n)
		if err != nil {
			return fmt.Sprintf("%q", n.Value)
		}
		return describeValue(v)
	}
	return "nothing"
}

// describeValue names a decoded value, for messages.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %s", formatFloat(x))
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

// scalarValue decodes a scalar node as YAML 1.2's core schema does: nil,
// bool, int, float64 or string. Timestamps stay strings.
func scalarValue(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("bad boolean %q", n.Value)
		}
		return b, nil
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil && i == int64(int(i)) {
			return int(i), nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("bad integer %q", n.Value)
		}
		switch x := v.(type) {
		case int:
			return x, nil
		case int64:
			return int(x), nil
		case uint64:
			return nil, fmt.Errorf("integer %s is too large", n.Value)
		case float64:
			return x, nil
		}
		return nil, fmt.Errorf("bad integer %q", n.Value)
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return f, nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("bad number %q", n.Value)
		}
		return f, nil
	}
	return nil, fmt.Errorf("unsupported YAML tag %s on %q", n.Tag, n.Value)
}

// formatFloat writes f the shortest way that reads back exactly, as ids and
// messages show numbers.
func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// parseYAML parses src into a document node, turning yaml.v3's errors and
// panics into positioned errors.
func parseYAML(file string, src []byte) (root *yaml.Node, err error) {
	defer func() {
		if p := recover(); p != nil {
			root, err = nil, &Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("YAML parser failed: %v", p)}
		}
	}()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, yamlError(file, src, err)
	}
	return &doc, nil
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlError positions a yaml.v3 syntax error. yaml.v3 reports the line where
// the enclosing block began (or none), not the line of the problem, and
// never a column; so yamlError finds the first line at which a prefix of the
// document fails with the same problem, and reports file:line: message.
func yamlError(file string, src []byte, err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{Pos: Pos{File: file}, Msg: "YAML syntax: " + err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	if l := firstFailingLine(src, msg, max(line, 1)); l > 0 {
		line = l
	}
	return &Error{Pos: Pos{File: file, Line: line}, Msg: "YAML syntax: " + msg + syntaxHint(msg)}
}

// maxLocateBytes bounds the work of firstFailingLine: it re-parses prefixes
// of the document, quadratic in the worst case.
const maxLocateBytes = 4 << 20

// firstFailingLine returns the smallest line n >= from such that lines 1..n
// fail to parse with message msg, or 0 if none does within the work bound.
func firstFailingLine(src []byte, msg string, from int) int {
	lines := strings.SplitAfter(string(src), "\n")
	work := 0
	prefix := strings.Join(lines[:min(from-1, len(lines))], "")
	for n := from; n <= len(lines); n++ {
		prefix += lines[n-1]
		work += len(prefix)
		if work > maxLocateBytes {
			return 0
		}
		var doc yaml.Node
		if err := safeUnmarshal([]byte(prefix), &doc); err != nil {
			if mm := yamlLine.FindStringSubmatch(err.Error()); mm != nil && mm[2] == msg {
				return n
			}
		}
	}
	return 0
}

func safeUnmarshal(src []byte, n *yaml.Node) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("yaml: %v", p)
		}
	}()
	return yaml.Unmarshal(src, n)
}

// syntaxHint adds advice to yaml.v3's terser messages.
func syntaxHint(msg string) string {
	switch {
	case strings.Contains(msg, "did not find expected key"):
		return " (check the indentation)"
	case strings.Contains(msg, "mapping values are not allowed"):
		return " (quote a value that contains \": \", or check the indentation)"
	case strings.Contains(msg, "found character that cannot start any token"):
		return " (tabs cannot indent YAML; quote values starting with @ or `)"
	case strings.Contains(msg, "did not find expected ',' or ']'"), strings.Contains(msg, "did not find expected ',' or '}'"):
		return " (an unclosed [ or {, or a value that needs quotes)"
	}
	return ""
}
