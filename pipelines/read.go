package pipelines

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hessian-spectra/runner/stage"
	"gopkg.in/yaml.v3"
)

// builder holds the state of one Parse.
type builder struct {
	opts Options
	errs *errList
	r    *reader
	p    *Pipeline

	vars      map[string]*varDef
	varList   []string
	stages    []*rawStage
	evalNodes int // template nodes × instances, bounded by maxEvalNodes
	// incomplete marks instances whose params or inputs had problems:
	// plan-time checks skip them and what depends on them.
	incomplete map[*Instance]bool
}

type rawStage struct {
	st       *Stage
	kindName string
	kindPos  Pos
	matrix   []rawAxis
	needs    []rawNeed
	needsPos Pos
	with     []rawParam
	withPos  Pos
	ok       bool // the stage's own structure was readable
}

type rawAxis struct {
	name string
	pos  Pos
	// values, or a range [lo, hi] or [lo, hi, step]
	values *tmpl
	rng    *tmpl
}

type rawNeed struct {
	name string
	pos  Pos
	list bool
	refs []*tmpl
}

type rawParam struct {
	name string
	kpos Pos
	t    *tmpl
}

var (
	specNameRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	stageNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

var topKeys = []string{"name", "doc", "vars", "stages", "resources"}

var stageKeys = []string{"kind", "doc", "matrix", "needs", "with"}

// read reads the top level of the spec: its name, doc and vars (with
// --set applied and resolved), and each stage's own structure.

func (b *builder) read(file string, doc *yaml.Node) *Pipeline {
	r := b.r
	name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	b.p = &Pipeline{Name: name, File: file, Vars: map[string]any{}, byID: map[string]*Instance{}, byStage: map[string]*Stage{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		b.errs.add(Pos{File: file, Line: 1, Col: 1}, "spec is empty: want a mapping with %s", quoteList([]string{"stages"}))
		return nil
	}
	top, ok := r.entries(doc.Content[0], "spec")
	if !ok && top == nil {
		return nil
	}
	var stagesNode *yaml.Node
	var stagesPos Pos
	for _, e := range top {
		switch e.key {
		case "name":
			if s, ok := b.stringValue(e.value, "name"); ok {
				if !specNameRE.MatchString(s) {
					b.errs.add(r.pos(e.value), "name %q: use letters, digits, '_', '.' and '-' (it names a results directory)", s)
				} else {
					b.p.Name = s
				}
			}
		case "doc":
			b.p.Doc, _ = b.stringValue(e.value, "doc")
		case "vars":
			b.readVars(e.value)
		case "stages":
			stagesNode, stagesPos = e.value, e.kpos
		case "resources":
			b.readResources(e.value)
		default:
			if strings.HasPrefix(e.key, "x-") {
				continue // extension keys hold anchors for reuse
			}
			b.errs.add(e.kpos, "unknown key %q%s; a spec has %s (and x-* keys for anchors)", e.key, stage.DidYouMean(e.key, topKeys), quoteList(topKeys))
		}
	}
	if !specNameRE.MatchString(b.p.Name) {
		b.errs.add(Pos{File: file, Line: 1, Col: 1}, "spec file name %q cannot name a results directory; add name: to the spec", b.p.Name)
	}
	b.applySets()
	for _, n := range b.varList {
		if v, err := b.varValue(n, b.vars[n].pos); err == nil {
			b.p.Vars[n] = v
		} else if err != errSilent {
			b.errs.addErr(b.vars[n].pos, err)
		}
	}
	if stagesNode == nil {
		b.errs.add(Pos{File: file, Line: doc.Content[0].Line, Col: doc.Content[0].Column}, "spec has no stages: key")
		return b.p
	}
	stageEntries, _ := r.entries(stagesNode, "stages")
	if len(stageEntries) == 0 && deref(stagesNode) != nil && deref(stagesNode).Kind == yaml.MappingNode {
		b.errs.add(stagesPos, "stages: is empty")
	}
	for _, e := range stageEntries {
		b.readStage(e)
	}
	return b.p
}

// stringValue reads a plain string value.
func (b *builder) stringValue(n *yaml.Node, what string) (string, bool) {
	d := deref(n)
	if d != nil && d.Kind == yaml.ScalarNode {
		if v, err := scalarValue(d); err == nil {
			if s, ok := v.(string); ok {
				return s, true
			}
		}
	}
	b.errs.add(b.r.pos(nodeOr(n)), "%s: want a string, got %s", what, describeNode(d))
	return "", false
}

func (b *builder) readStage(e entry) {
	r := b.r
	st := &Stage{Name: e.key, Pos: e.kpos}
	rs := &rawStage{st: st, ok: true}
	if !stageNameRE.MatchString(e.key) {
		b.errs.add(e.kpos, "stage name %q: use letters, digits, '_', '.' and '-', starting with a letter or '_'", e.key)
		rs.ok = false
	}
	b.stages = append(b.stages, rs)
	b.p.Stages = append(b.p.Stages, st)
	b.p.byStage[st.Name] = st
	es, ok := r.entries(e.value, "stage "+e.key)
	if !ok && es == nil {
		rs.ok = false
		return
	}
	haveKind := false
	for _, se := range es {
		switch se.key {
		case "kind":
			haveKind = true
			rs.kindPos = r.pos(nodeOr(se.value))
			if s, ok := b.stringValue(se.value, "kind"); ok {
				rs.kindName = s
				st.Kind = b.opts.Registry[s]
				if st.Kind == nil {
					b.errs.add(rs.kindPos, "unknown stage kind %q%s; known kinds: %s", s, stage.DidYouMean(s, b.opts.Registry.Names()), strings.Join(b.opts.Registry.Names(), ", "))
				}
			}
		case "doc":
			st.Doc, _ = b.stringValue(se.value, "doc")
		case "matrix":
			b.readMatrix(rs, se.value)
		case "needs":
			rs.needsPos = se.kpos
			b.readNeeds(rs, se.value)
		case "with":
			rs.withPos = se.kpos
			b.readWith(rs, se.value)
		default:
			b.errs.add(se.kpos, "stage %s: unknown key %q%s; a stage has %s", e.key, se.key, stage.DidYouMean(se.key, stageKeys), quoteList(stageKeys))
		}
	}
	if !haveKind {
		b.errs.add(e.kpos, "stage %s has no kind:", e.key)
	}
}

func (b *builder) readMatrix(rs *rawStage, n *yaml.Node) {
	es, ok := b.r.entries(n, "matrix")
	if !ok {
		rs.ok = false
	}
	if len(es) == 0 && ok {
		b.errs.add(b.r.pos(n), "matrix: is empty; leave it out for a single instance")
		rs.ok = false
	}
	for _, e := range es {
		if !nameRE.MatchString(e.key) {
			b.errs.add(e.kpos, "matrix axis %q: use letters, digits and _, not starting with a digit", e.key)
			rs.ok = false
			continue
		}
		if _, clash := b.vars[e.key]; clash {
			b.errs.add(e.kpos, "matrix axis %q hides the var of the same name; rename one", e.key)
			rs.ok = false
			continue
		}
		ax := rawAxis{name: e.key, pos: e.kpos}
		d := deref(e.value)
		switch {
		case d != nil && d.Kind == yaml.MappingNode:
			aes, ok := b.r.entries(d, "matrix "+e.key)
			if !ok {
				rs.ok = false
				continue
			}
			for _, ae := range aes {
				if ae.key != "range" {
					b.errs.add(ae.kpos, "matrix %s: unknown key %q%s; write a list of values or {range: [first, last]}", e.key, ae.key, stage.DidYouMean(ae.key, []string{"range"}))
					rs.ok = false
					continue
				}
				ax.rng = b.r.build(ae.value)
			}
			if ax.rng == nil {
				if len(aes) == 0 {
					b.errs.add(b.r.pos(d), "matrix %s: want a list of values or {range: [first, last]}", e.key)
				}
				rs.ok = false
				continue
			}
		default:
			ax.values = b.r.build(e.value)
			if ax.values == nil {
				rs.ok = false
				continue
			}
		}
		rs.matrix = append(rs.matrix, ax)
	}
}

func (b *builder) readNeeds(rs *rawStage, n *yaml.Node) {
	es, ok := b.r.entries(n, "needs")
	if !ok {
		rs.ok = false
	}
	for _, e := range es {
		need := rawNeed{name: e.key, pos: e.kpos}
		d := deref(e.value)
		if d != nil && d.Kind == yaml.SequenceNode {
			need.list = true
			if len(d.Content) == 0 {
				b.errs.add(b.r.pos(d), "needs %s: the list is empty", e.key)
				rs.ok = false
				continue
			}
			for _, item := range d.Content {
				t := b.refTemplate(item, e.key)
				if t == nil {
					rs.ok = false
					continue
				}
				need.refs = append(need.refs, t)
			}
		} else {
			t := b.refTemplate(e.value, e.key)
			if t == nil {
				rs.ok = false
				continue
			}
			need.refs = []*tmpl{t}
		}
		rs.needs = append(rs.needs, need)
	}
}

// refTemplate reads one stage reference, which must be a string.
func (b *builder) refTemplate(n *yaml.Node, input string) *tmpl {
	d := deref(n)
	if d == nil || d.Kind != yaml.ScalarNode {
		b.errs.add(b.r.pos(nodeOr(n)), "needs %s: want a stage reference such as \"train\" or \"snap[epoch=3]\", got %s", input, describeNode(d))
		return nil
	}
	t := b.r.build(n)
	if t != nil && t.kind == tLit {
		if _, ok := t.lit.(string); !ok {
			b.errs.add(t.pos, "needs %s: want a stage reference such as \"train\" or \"snap[epoch=3]\", got %s", input, describeValue(t.lit))
			return nil
		}
	}
	return t
}

func (b *builder) readWith(rs *rawStage, n *yaml.Node) {
	if d := deref(n); d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
		return // `with:` left empty
	}
	es, ok := b.r.entries(n, "with")
	if !ok {
		rs.ok = false
	}
	for _, e := range es {
		t := b.r.build(e.value)
		if t == nil {
			rs.ok = false
			continue
		}
		rs.with = append(rs.with, rawParam{name: e.key, kpos: e.kpos, t: t})
	}
}
