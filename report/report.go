// Package report renders a Markdown document from a text/template over the
// cached artifacts of specs, so that a results page is regenerated from the
// cache, byte for byte, with no number copied by hand.
//
// A template reads artifacts by spec name and stage instance id:
//
//	{{ file "htr_lenet_fashionmnist_cpu" "table" "table.md" }}       the text of a file
//	{{ with json "te_lenet_fashionmnist_cpu" "spectrum[epoch=1,layer=full]" "summary.json" }}{{ .loss }}{{ end }}
//	![curves]({{ figure "htr_lenet_fashionmnist_cpu" "curves" "curves.png" }})   a copied figure's link
//	{{ timings }}                                                    wall time per stage kind, a Markdown table
//	{{ timings "spec" ... }}                                         the same for some specs only
//	{{ seconds "htr_lenet_fashionmnist_cpu" "htr[seed=0]" }}         one stage's recorded wall time
//	{{ file "s" "table" "table.md" | headings 2 }}                   Markdown headings two levels down
//	{{ printf "%.2f" (sub .a .b) }}                                 arithmetic: add, sub, mul, div, abs
//
// Every stage a template names must be cached; a missing one is an error
// that names it. Figures are copied into an assets directory under stable
// names, and only when their bytes differ, so rendering twice changes
// nothing.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// Stage is one stage instance of a spec as the report sees it.
type Stage struct {
	Spec string // the spec's name
	ID   string // the instance id, e.g. "spectrum[epoch=3,layer=fc1.weight]"
	Kind string // the stage kind
	// Dir is the artifact directory; empty when the stage is not computed.
	Dir string
	// Seconds is the wall time recorded when the artifact was computed.
	Seconds float64
}

// Options configure Render.
type Options struct {
	// Stages lists every instance of the specs the template may name.
	Stages []Stage
	// AssetsDir receives copies of the figures the template names.
	AssetsDir string
	// LinkDir is the directory links are written relative to (the directory
	// of the rendered document).
	LinkDir string
}

// Render executes the template text (named name in errors) and returns the
// document. It copies the figures the template names into o.AssetsDir.
func Render(name, text string, o Options) ([]byte, error) {
	r := &renderer{o: o, byKey: map[string]Stage{}}
	for _, s := range o.Stages {
		r.byKey[s.Spec+"\x00"+s.ID] = s
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"file":     r.file,
		"json":     r.json,
		"figure":   r.figure,
		"seconds":  r.seconds,
		"timings":  r.timings,
		"headings": headings,
		"minutes":  func(s float64) string { return fmt.Sprintf("%.1f", s/60) },
		"add":      func(a, b any) (float64, error) { return arith(a, b, func(x, y float64) float64 { return x + y }) },
		"sub":      func(a, b any) (float64, error) { return arith(a, b, func(x, y float64) float64 { return x - y }) },
		"mul":      func(a, b any) (float64, error) { return arith(a, b, func(x, y float64) float64 { return x * y }) },
		"div":      func(a, b any) (float64, error) { return arith(a, b, func(x, y float64) float64 { return x / y }) },
		"abs":      func(a any) (float64, error) { return arith(a, 0, func(x, _ float64) float64 { return math.Abs(x) }) },
	}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return buf.Bytes(), nil
}

// headings moves every ATX heading of a Markdown text n levels down ("# T"
// becomes "### T" for n = 2), so that an embedded file nests under the
// document's own sections; fenced code blocks are left alone.
func headings(n int, text string) string {
	lines := strings.Split(text, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(l, "#") {
			continue
		}
		level := len(l) - len(strings.TrimLeft(l, "#"))
		if level <= 6 && (len(l) == level || l[level] == ' ') {
			lines[i] = strings.Repeat("#", min(level+n, 6)) + l[level:]
		}
	}
	return strings.Join(lines, "\n")
}

// arith applies f to two numbers as templates hold them (JSON numbers are
// float64; literals in a template are int or float64).
func arith(a, b any, f func(x, y float64) float64) (float64, error) {
	x, err := toFloat(a)
	if err != nil {
		return 0, err
	}
	y, err := toFloat(b)
	if err != nil {
		return 0, err
	}
	return f(x, y), nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("want a number, got %T %v", v, v)
}

type renderer struct {
	o     Options
	byKey map[string]Stage
}

func (r *renderer) stage(spec, id string) (Stage, error) {
	s, ok := r.byKey[spec+"\x00"+id]
	if !ok {
		return Stage{}, fmt.Errorf("no stage %q in spec %q", id, spec)
	}
	if s.Dir == "" {
		return Stage{}, fmt.Errorf("stage %s of spec %s is not computed: run its spec first", id, spec)
	}
	return s, nil
}

func (r *renderer) path(spec, id, name string) (string, error) {
	s, err := r.stage(spec, id)
	if err != nil {
		return "", err
	}
	if name != filepath.Clean(name) || filepath.IsAbs(name) || strings.HasPrefix(name, "..") {
		return "", fmt.Errorf("%s: %q is not a file inside the artifact", id, name)
	}
	return filepath.Join(s.Dir, name), nil
}

// read returns the bytes of a file in a stage's artifact.
func (r *renderer) read(spec, id, name string) ([]byte, error) {
	p, err := r.path(spec, id, name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", spec, id, err)
	}
	return b, nil
}

func (r *renderer) file(spec, id, name string) (string, error) {
	b, err := r.read(spec, id, name)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n"), nil
}

func (r *renderer) json(spec, id, name string) (any, error) {
	b, err := r.read(spec, id, name)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", spec, id, name, err)
	}
	return v, nil
}

// assetName is the stable file name of a copied figure.
func assetName(spec, id, name string) string {
	clean := strings.NewReplacer("[", "_", "]", "", "=", "-", ",", "_", "/", "_").Replace(id)
	return spec + "__" + clean + "__" + strings.ReplaceAll(name, "/", "_")
}

func (r *renderer) figure(spec, id, name string) (string, error) {
	b, err := r.read(spec, id, name)
	if err != nil {
		return "", err
	}
	if r.o.AssetsDir == "" {
		return "", fmt.Errorf("figure %s: no assets directory to copy it into", name)
	}
	if err := os.MkdirAll(r.o.AssetsDir, 0o755); err != nil {
		return "", fmt.Errorf("figure: %w", err)
	}
	dst := filepath.Join(r.o.AssetsDir, assetName(spec, id, name))
	if err := WriteFile(dst, b); err != nil {
		return "", fmt.Errorf("figure %s: %w", name, err)
	}
	rel, err := filepath.Rel(r.o.LinkDir, dst)
	if err != nil {
		return "", fmt.Errorf("figure %s: %w", name, err)
	}
	return filepath.ToSlash(rel), nil
}

func (r *renderer) seconds(spec, id string) (float64, error) {
	s, err := r.stage(spec, id)
	if err != nil {
		return 0, err
	}
	return s.Seconds, nil
}

// timings writes a Markdown table of the recorded wall time per stage kind
// over every computed stage of the given specs (all specs when none given).
func (r *renderer) timings(specs ...string) (string, error) {
	want := map[string]bool{}
	for _, s := range specs {
		want[s] = true
	}
	type agg struct {
		n          int
		total, max float64
	}
	kinds := map[string]*agg{}
	missing := 0
	seen := map[string]bool{} // a stage shared by two specs was computed once
	for _, s := range r.o.Stages {
		if len(want) > 0 && !want[s.Spec] {
			continue
		}
		if s.Dir == "" {
			missing++
			continue
		}
		if seen[s.Dir] {
			continue
		}
		seen[s.Dir] = true
		a := kinds[s.Kind]
		if a == nil {
			a = &agg{}
			kinds[s.Kind] = a
		}
		a.n++
		a.total += s.Seconds
		a.max = math.Max(a.max, s.Seconds)
	}
	if missing > 0 {
		return "", fmt.Errorf("timings: %d stages are not computed: run the specs first", missing)
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| stage kind | stages | total (min) | mean (s) | longest (s) |\n|---|---:|---:|---:|---:|\n")
	for _, k := range names {
		a := kinds[k]
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f |\n", k, a.n, a.total/60, a.total/float64(a.n), a.max)
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// WriteFile writes the document to path atomically, leaving the file
// untouched when its content is already b.
func WriteFile(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return atomicfile.WriteFile(path, b, 0o644)
}
