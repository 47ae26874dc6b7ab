package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/stage"
)

// Description is the complete description of one stage computation. The
// stage key is the SHA-256 of its canonical JSON (see canonicalJSON: keys
// sorted, no spaces, numbers in shortest round-trip form, so 1e-2 and 0.01
// agree). It holds neither
// the spec file, nor the stage's name or id, nor the backend: two specs that
// contain the same computation share its key.
type Description struct {
	Kind    string `json:"kind"`    // the stage kind's name
	Version int    `json:"version"` // its implementation version
	// Params are the resolved params with defaults filled in; a Path param
	// is replaced by "sha256:" and the content digest of what it names.
	Params map[string]any `json:"params"`
	// Inputs lists the digests of the input artifacts by input name, in
	// binding order.
	Inputs map[string][]artifacts.Digest `json:"inputs"`
}

// Canonical returns the canonical JSON of d.
func (d *Description) Canonical() ([]byte, error) {
	if d.Params == nil {
		d.Params = map[string]any{}
	}
	if d.Inputs == nil {
		d.Inputs = map[string][]artifacts.Digest{}
	}
	return canonicalJSON(d)
}

// Key returns the stage key of d.
func (d *Description) Key() (artifacts.Key, error) {
	c, err := d.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return artifacts.Key(hex.EncodeToString(sum[:])), nil
}

// keyParams returns params as they enter the key: Path params (nested ones
// included) replaced by the content digest of the file or directory.
func keyParams(schema []stage.Param, params stage.Params, h *artifacts.PathHasher) (map[string]any, error) {
	out := make(map[string]any, len(params))
	for name, v := range params {
		out[name] = v
	}
	for _, p := range schema {
		v, ok := params[p.Name]
		if !ok {
			continue
		}
		switch p.Type {
		case stage.Path:
			path, _ := v.(string)
			d, err := h.Digest(path)
			if err != nil {
				return nil, fmt.Errorf("param %s: %w", p.Name, err)
			}
			out[p.Name] = "sha256:" + string(d)
		case stage.Object:
			sub, _ := v.(stage.Params)
			kp, err := keyParams(p.Fields, sub, h)
			if err != nil {
				return nil, fmt.Errorf("param %s.%w", p.Name, trimParam(err))
			}
			out[p.Name] = kp
		}
	}
	return out, nil
}

// trimParam drops the "param " prefix of a nested error, so that nested
// names read "param opts.dir: ...".
func trimParam(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "param "))
}

// Job is everything needed to run one stage from the cache alone, as
// `runner exec-stage` does: the description whose hash is the key, and what
// the stage receives that the key leaves out.
type Job struct {
	Key         artifacts.Key `json:"key"`         // the hash of Description
	Description Description   `json:"description"` // what the key covers
	// ID and Spec name the instance that asked for the key.
	ID   string `json:"id"`
	Spec string `json:"spec"`
	// Params are the params as the stage receives them (Path params
	// absolute).
	Params map[string]any `json:"params"`
	// Inputs are the input artifacts by name, in binding order.
	Inputs map[string][]JobInput `json:"inputs"`
}

// JobInput is one input artifact of a job.
type JobInput struct {
	Stage  string           `json:"stage"`            // id of the producing instance
	Matrix map[string]any   `json:"matrix,omitempty"` // its matrix values
	Digest artifacts.Digest `json:"digest"`           // the artifact
}

// encodeJob writes j as indented JSON, for the cache's .desc.json files.
func encodeJob(j *Job) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decodeJob reads a job and checks that its description hashes to its key.
func decodeJob(data []byte) (*Job, error) {
	var j Job
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("job description: %w", err)
	}
	if j.Description.Params == nil {
		j.Description.Params = map[string]any{}
	}
	if j.Params == nil {
		j.Params = map[string]any{}
	}
	numbers(j.Description.Params)
	numbers(j.Params)
	for _, ins := range j.Inputs {
		for i := range ins {
			numbers(ins[i].Matrix)
		}
	}
	k, err := j.Description.Key()
	if err != nil {
		return nil, err
	}
	if k != j.Key {
		return nil, fmt.Errorf("job description hashes to %s, not to its key %s: it was altered", k.Short(), j.Key.Short())
	}
	return &j, nil
}

// numbers turns json.Numbers into int where they are integers, float64
// otherwise, recursively, in place; it returns the converted value.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
		return x
	}
	return v
}

// convertParams turns decoded JSON params back into a stage's canonical
// types, through its schema.
func convertParams(k *stage.Kind, raw map[string]any) (stage.Params, error) {
	out := stage.Params{}
	for name, v := range raw {
		p, ok := k.Param(name)
		if !ok {
			return nil, fmt.Errorf("kind %s has no param %q", k.Name, name)
		}
		c, err := p.Convert(v) // Convert accepts integers for Float params

		if err != nil {
			return nil, fmt.Errorf("param %s: %w", name, err)
		}
		out[name] = c
	}
	return out, nil
}

// flatten lists the leaves of a params tree as dotted names with their
// canonical JSON values, for reasons such as "param opts.alpha 0.5 → 1".
func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, e := range m {
			flatten(prefix+k+".", e, out)
		}
		return
	}
	if m, ok := v.(stage.Params); ok {
		flatten(prefix, map[string]any(m), out)
		return
	}
	b, err := canonicalJSON(v)
	if err != nil {
		b = []byte(fmt.Sprint(v))
	}
	out[strings.TrimSuffix(prefix, ".")] = string(b)
}

// paramChanges describes how params changed from old to cur.
func paramChanges(old, cur map[string]any) []string {
	a, b := map[string]string{}, map[string]string{}
	flatten("", old, a)
	flatten("", cur, b)
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		x, okx := a[k]
		y, oky := b[k]
		switch {
		case okx && oky && x == y:
		case strings.HasPrefix(x, `"sha256:`) && strings.HasPrefix(y, `"sha256:`):
			out = append(out, fmt.Sprintf("param %s: content changed", k))
		case !okx:
			out = append(out, fmt.Sprintf("param %s (unset) → %s", k, shorten(y)))
		case !oky:
			out = append(out, fmt.Sprintf("param %s %s → (unset)", k, shorten(x)))
		default:
			out = append(out, fmt.Sprintf("param %s %s → %s", k, shorten(x), shorten(y)))
		}
	}
	return out
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:37] + "…"
	}
	return s
}
