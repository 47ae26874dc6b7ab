package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/stage"
)

// canonicalJSON encodes v as canonical JSON: object keys sorted (struct
// descriptions too), no insignificant space, no HTML escaping, numbers as
// encoding/json writes them (shortest round-trip form, so 1e-2 and 0.01
// agree), and -0 written as 0. It handles the types params and descriptions
// hold and is several times faster than encoding/json, which matters when
// a plan hashes ten thousand descriptions; its output equals encoding/json's
// for every value it accepts (see TestCanonicalMatchesEncodingJSON).
func canonicalJSON(v any) ([]byte, error) {
	return appendCanonical(make([]byte, 0, 256), v)
}

func appendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		return appendFloat(b, x)
	case string:
		return appendString(b, x), nil
	case artifacts.Digest:
		return appendString(b, string(x)), nil
	case []int:
		return appendArray(b, x, func(b []byte, e int) ([]byte, error) { return strconv.AppendInt(b, int64(e), 10), nil })
	case []float64:
		return appendArray(b, x, appendFloat)
	case []string:
		return appendArray(b, x, func(b []byte, e string) ([]byte, error) { return appendString(b, e), nil })
	case []bool:
		return appendArray(b, x, func(b []byte, e bool) ([]byte, error) { return strconv.AppendBool(b, e), nil })
	case []artifacts.Digest:
		return appendArray(b, x, func(b []byte, e artifacts.Digest) ([]byte, error) { return appendString(b, string(e)), nil })
	case []any:
		return appendArray(b, x, appendCanonical)
	case map[string]any:
		return appendObject(b, x)
	case stage.Params:
		return appendObject(b, x)
	case map[string][]artifacts.Digest:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return appendObject(b, m)
	case *Description:
		return appendCanonical(b, x.fields())
	case Description:
		return appendCanonical(b, x.fields())
	}
	return nil, fmt.Errorf("canonical JSON: unsupported value of type %T", v)
}

// appendArray appends xs as a JSON array, each element by elem.
func appendArray[T any](b []byte, xs []T, elem func([]byte, T) ([]byte, error)) ([]byte, error) {
	b = append(b, '[')
	for i, e := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = elem(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// fields lists the description as a map, so that its keys are sorted too.
func (d *Description) fields() map[string]any {
	inputs := make(map[string]any, len(d.Inputs))
	for k, e := range d.Inputs {
		inputs[k] = e
	}
	return map[string]any{"kind": d.Kind, "version": d.Version, "params": d.Params, "inputs": inputs}
}

func appendObject[M ~map[string]any](b []byte, m M) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendCanonical(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendFloat writes f as encoding/json does, with -0 as 0.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("canonical JSON: unsupported number %v", f)
	}
	if f == 0 {
		return append(b, '0'), nil
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendString writes s as a JSON string: printable ASCII directly, anything
// else through encoding/json (without HTML escaping) so that escapes match.
func appendString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
