package stage

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Type is the type of a param. Values reach a stage in one canonical Go type
// per Type, listed with each constant.
type Type int

// Param types.
const (
	Int    Type = iota + 1 // int
	Float                  // float64; integers are accepted and converted
	String                 // string
	Bool                   // bool
	// Path is a file or directory path, written relative to the directory the
	// runner is started in (the repo root) or absolute. Stages receive it
	// resolved to an absolute path. The stage key covers the content of the
	// file or directory, not its spelling.
	Path
	List   // []int, []float64, []string or []bool, after Elem
	Object // Params, after Fields, defaults filled in
	Map    // map[string]any with free keys, values after Elem
)

// String names the type as error messages show it.
func (t Type) String() string {
	switch t {
	case Int:
		return "integer"
	case Float:
		return "number"
	case String:
		return "string"
	case Bool:
		return "boolean"
	case Path:
		return "path"
	case List:
		return "list"
	case Object:
		return "mapping"
	case Map:
		return "mapping"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Param is the schema of one param: its name, type, default and bounds.
type Param struct {
	Name string
	Type Type
	Doc  string
	// Default is the value used when the spec leaves the param out, in the
	// param's canonical type. A param with neither Default nor Required may be
	// absent; Params then holds no entry for it.
	Default any
	// Required params must be given in the spec.
	Required bool
	// Min and Max bound numeric values (and the elements of numeric lists),
	// inclusively unless MinExclusive is set.
	Min, Max *float64
	// MinExclusive makes Min a strict bound: the value must exceed it (a
	// learning rate > 0).
	MinExclusive bool
	// Enum lists the allowed values of a string param (or of list elements).
	Enum []string
	// Elem is the element type of a List or Map param: Int, Float, String or Bool.
	Elem Type
	// Fields is the schema of an Object param.
	Fields []Param
}

// Bound returns a pointer to v, for Param.Min and Param.Max literals.
func Bound(v float64) *float64 { return &v }

func (p Param) check() error {
	switch p.Type {
	case Int, Float, String, Bool, Path:
	case List, Map:
		switch p.Elem {
		case Int, Float, String, Bool:
		default:
			return fmt.Errorf("param %q: %v needs a scalar Elem type", p.Name, p.Type)
		}
	case Object:
		seen := map[string]bool{}
		for _, f := range p.Fields {
			if seen[f.Name] {
				return fmt.Errorf("param %q: field %q declared twice", p.Name, f.Name)
			}
			seen[f.Name] = true
			if err := f.check(); err != nil {
				return fmt.Errorf("param %q: %w", p.Name, err)
			}
		}
	default:
		return fmt.Errorf("param %q: unknown type %d", p.Name, int(p.Type))
	}
	if p.Default != nil && p.Required {
		return fmt.Errorf("param %q: required params have no default", p.Name)
	}
	if p.Default != nil {
		if _, err := p.Convert(p.Default); err != nil {
			return fmt.Errorf("param %q: default: %w", p.Name, err)
		}
	}
	return nil
}

// Convert checks a decoded value (as yaml or json decoding produce: int,
// int64, float64, string, bool, []any, map[string]any) against the schema and
// returns it in the canonical type. For Object params it fills in defaults.
// Errors name the offending value but not the param, so callers can add their
// own position.
func (p Param) Convert(v any) (any, error) {
	switch p.Type {
	case List:
		return p.convertList(v)
	case Map:
		return p.convertMap(v)
	case Object:
		return p.convertObject(v)
	}
	return p.scalar(v)
}

// elem is the schema of a List's or Map's elements: the element type, with
// the param's bounds and enum.
func (p Param) elem() Param {
	return Param{Type: p.Elem, Min: p.Min, Max: p.Max, MinExclusive: p.MinExclusive, Enum: p.Enum}
}

// convertList converts a List param's value to a slice of its element type.
func (p Param) convertList(v any) (any, error) {
	items, ok := asList(v)
	if !ok {
		return nil, fmt.Errorf("want a list of %ss, got %s", p.Elem, describe(v))
	}
	switch p.Elem {
	case Int:
		return convertItems[int](p.elem(), items)
	case Float:
		return convertItems[float64](p.elem(), items)
	case String:
		return convertItems[string](p.elem(), items)
	case Bool:
		return convertItems[bool](p.elem(), items)
	}
	return p.scalar(v)
}

// convertItems converts each item through elem into a []T.
func convertItems[T any](elem Param, items []any) (any, error) {
	out := make([]T, len(items))
	for i, it := range items {
		c, err := elem.Convert(it)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = c.(T)
	}
	return out, nil
}

// convertMap converts a Map param's value, each value through the element
// type.
func (p Param) convertMap(v any) (any, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, fmt.Errorf("want a mapping, got %s", describe(v))
	}
	elem := p.elem()
	out := make(map[string]any, len(m))
	for k, it := range m {
		c, err := elem.Convert(it)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = c
	}
	return out, nil
}

// convertObject converts an Object param's value field by field, filling
// in defaults and refusing unknown keys.
func (p Param) convertObject(v any) (any, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, fmt.Errorf("want a mapping with keys %s, got %s", fieldNames(p.Fields), describe(v))
	}
	for k := range m {
		if _, ok := findField(p.Fields, k); !ok {
			return nil, fmt.Errorf("unknown key %q (want %s)", k, fieldNames(p.Fields))
		}
	}
	out := Params{}
	for _, f := range p.Fields {
		fv, ok := m[f.Name]
		if !ok {
			if f.Required {
				return nil, fmt.Errorf("missing key %q", f.Name)
			}
			if f.Default == nil {
				continue
			}
			fv = f.Default
		}
		c, err := f.Convert(fv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		out[f.Name] = c
	}
	return out, nil
}

func (p Param) scalar(v any) (any, error) {
	switch p.Type {
	case Int:
		var i int
		switch x := v.(type) {
		case int:
			i = x
		case int64:
			i = int(x)
		case float64:
			if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
				return nil, fmt.Errorf("want an integer, got %v", x)
			}
			i = int(x)
		default:
			return nil, fmt.Errorf("want an integer, got %s", describe(v))
		}
		if err := p.inRange(float64(i)); err != nil {
			return nil, err
		}
		return i, nil
	case Float:
		var f float64
		switch x := v.(type) {
		case int:
			f = float64(x)
		case int64:
			f = float64(x)
		case float64:
			f = x
		default:
			return nil, fmt.Errorf("want a number, got %s", describe(v))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a finite number, got %v", f)
		}
		if err := p.inRange(f); err != nil {
			return nil, err
		}
		return f, nil
	case String, Path:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a %s, got %s", p.Type, describe(v))
		}
		if p.Type == Path && s == "" {
			return nil, fmt.Errorf("want a path, got an empty string")
		}
		if len(p.Enum) > 0 {
			for _, e := range p.Enum {
				if e == s {
					return s, nil
				}
			}
			return nil, fmt.Errorf("want one of %s, got %q%s", strings.Join(p.Enum, ", "), s, DidYouMean(s, p.Enum))
		}
		return s, nil
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false, got %s", describe(v))
		}
		return b, nil
	}
	return nil, fmt.Errorf("want a %s, got %s", p.Type, describe(v))
}

func (p Param) inRange(f float64) error {
	if p.Min != nil && p.MinExclusive && !(f > *p.Min) {
		return fmt.Errorf("%s is not above %s", number(f), number(*p.Min))
	}
	if p.Min != nil && !(f >= *p.Min) {
		return fmt.Errorf("%s is below the minimum %s", number(f), number(*p.Min))
	}
	if p.Max != nil && !(f <= *p.Max) {
		return fmt.Errorf("%s is above the maximum %s", number(f), number(*p.Max))
	}
	return nil
}

// number formats f for messages: whole numbers in full up to 2^53
// (1048576, not 1.048576e+06), others in Go's shortest form.
func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case []int:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out, true
	case []float64:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out, true
	case []string:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out, true
	case []bool:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out, true
	}
	return nil, false
}

func asMap(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case Params:
		return map[string]any(x), true
	}
	return nil, false
}

func findField(fs []Param, name string) (Param, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f, true
		}
	}
	return Param{}, false
}

func fieldNames(fs []Param) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, int64:
		return fmt.Sprintf("the integer %v", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any, Params:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// Params holds a stage's resolved params in canonical types. Its accessors
// panic when a name is absent or has another type: after validation that is a
// programming error in the stage, and the runner turns the panic into the
// stage's error.
type Params map[string]any

// Has reports whether the param is present.
func (p Params) Has(name string) bool { _, ok := p[name]; return ok }

func get[T any](p Params, name string) T {
	v, ok := p[name]
	if !ok {
		panic(fmt.Sprintf("param %q is not set", name))
	}
	t, ok := v.(T)
	if !ok {
		var zero T
		panic(fmt.Sprintf("param %q is %T, not %T", name, v, zero))
	}
	return t
}

// Int returns an Int param.
func (p Params) Int(name string) int { return get[int](p, name) }

// Float returns a Float param.
func (p Params) Float(name string) float64 { return get[float64](p, name) }

// String returns a String or Path param.
func (p Params) String(name string) string { return get[string](p, name) }

// Bool returns a Bool param.
func (p Params) Bool(name string) bool { return get[bool](p, name) }

// Ints returns a List param of Int elements.
func (p Params) Ints(name string) []int { return get[[]int](p, name) }

// Floats returns a List param of Float elements.
func (p Params) Floats(name string) []float64 { return get[[]float64](p, name) }

// Strings returns a List param of String elements.
func (p Params) Strings(name string) []string { return get[[]string](p, name) }

// Object returns an Object param.
func (p Params) Object(name string) Params { return get[Params](p, name) }

// Map returns a Map param.
func (p Params) Map(name string) map[string]any { return get[map[string]any](p, name) }

// Resolve converts params given by name (as decoded values) the way the
// runner does for a spec: unknown names and missing required params are
// errors, each value goes through its Param.Convert, and absent params take
// their defaults. Tests of stage kinds build their Env.Params with it.
func (k *Kind) Resolve(given map[string]any) (Params, error) {
	names := make([]string, 0, len(given))
	for name := range given {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := k.Param(name); !ok {
			return nil, fmt.Errorf("kind %s: unknown param %q", k.Name, name)
		}
	}
	out := Params{}
	for _, p := range k.Params {
		v, ok := given[p.Name]
		if !ok {
			if p.Required {
				return nil, fmt.Errorf("kind %s: missing required param %q", k.Name, p.Name)
			}
			if p.Default == nil {
				continue
			}
			v = p.Default
		}
		c, err := p.Convert(v)
		if err != nil {
			return nil, fmt.Errorf("kind %s: param %s: %w", k.Name, p.Name, err)
		}
		out[p.Name] = c
	}
	return out, nil
}
