package pipelines

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/stage"
	"gopkg.in/yaml.v3"
)

// Resources are what a stage asks of a cluster executor: where it runs and
// with how much. They place a computation; they never change what it
// computes, so no stage key covers them. The zero value asks for nothing:
// the cluster's defaults apply and nothing is added to the job.
type Resources struct {
	// Local, when set, runs the stage in the head process (true) or as a
	// cluster job (false); unset leaves the executor's default (light kinds
	// and fetch run in the head).
	Local *bool
	// GPUs is a GPU count, optionally with a type ("2", "a100:2").
	GPUs string
	// CPUs is the number of CPUs of the stage's one task (0: the default).
	CPUs int
	// Mem is the memory of the job, in the cluster's notation ("16G", "500M").
	Mem string
	// Time is the time limit, in Slurm's notation ("90", "1:30:00", "2-0").
	Time string
	// Partition, Account and QOS choose where the job is queued and billed.
	Partition, Account, QOS string
	// Extra holds raw flags for the batch system ("--constraint=avx2"),
	// appended in rule order.
	Extra []string
}

// IsZero reports whether r asks for nothing.
func (r Resources) IsZero() bool {
	return r.Local == nil && r.GPUs == "" && r.CPUs == 0 && r.Mem == "" && r.Time == "" &&
		r.Partition == "" && r.Account == "" && r.QOS == "" && len(r.Extra) == 0
}

// Merge returns r with every field that o sets replaced by o's value; Extra
// flags are appended.
func (r Resources) Merge(o Resources) Resources {
	if o.Local != nil {
		v := *o.Local
		r.Local = &v
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&r.GPUs, o.GPUs)
	set(&r.Mem, o.Mem)
	set(&r.Time, o.Time)
	set(&r.Partition, o.Partition)
	set(&r.Account, o.Account)
	set(&r.QOS, o.QOS)
	if o.CPUs != 0 {
		r.CPUs = o.CPUs
	}
	if len(o.Extra) > 0 {
		r.Extra = append(append([]string(nil), r.Extra...), o.Extra...)
	}
	return r
}

// ResourceRule is one entry of a spec's `resources:` block.
type ResourceRule struct {
	// Selector is the entry's key: "default", a stage kind, a stage name or
	// a stage reference such as "spectrum[layer=full,*]".
	Selector string
	Pos      Pos // of the key
	// Resources are the entry's values.
	Resources Resources
	// Extra positions, for messages about single flags.
	ExtraPos []Pos

	kind      bool        // the selector names a stage kind
	stage     bool        // … a stage
	instances []*Instance // … instances (a stage name or a reference)
}

// Resource rule precedence, lowest first: a more specific rule overrides a
// less specific one field by field.
const (
	levelDefault = iota
	levelKind
	levelStage
	levelInstances
)

// ResourcesFor returns the resources of inst: the spec's rules that select
// it merged field by field, the default first, then its kind, its stage and
// references naming its instances, each level in spec order.
func (p *Pipeline) ResourcesFor(inst *Instance) Resources {
	var out Resources
	for level := levelDefault; level <= levelInstances; level++ {
		for _, r := range p.Resources {
			if r.selects(inst, level) {
				out = out.Merge(r.Resources)
			}
		}
	}
	return out
}

func (r *ResourceRule) selects(inst *Instance, level int) bool {
	switch level {
	case levelDefault:
		return r.Selector == "default"
	case levelKind:
		return r.kind && inst.Stage.Kind != nil && inst.Stage.Kind.Name == r.Selector
	case levelStage, levelInstances:
		if r.stage != (level == levelStage) {
			return false
		}
		for _, i := range r.instances {
			if i == inst {
				return true
			}
		}
	}
	return false
}

var resourceFields = []string{"local", "gpus", "cpus", "mem", "time", "partition", "account", "qos", "extra"}

var (
	memRE  = regexp.MustCompile(`^[0-9]+[KMGTkmgt]?$`)
	timeRE = regexp.MustCompile(`^([0-9]+|[0-9]+:[0-9]{1,2}|[0-9]+:[0-9]{1,2}:[0-9]{1,2}|[0-9]+-[0-9]+|[0-9]+-[0-9]+:[0-9]{1,2}|[0-9]+-[0-9]+:[0-9]{1,2}:[0-9]{1,2}|UNLIMITED|INFINITE)$`)
	gpusRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+:)?[0-9]+$`)
	// nameValueRE checks partition, account and QOS names: no spaces, no
	// commas, nothing a shell or sbatch would read twice.
	nameValueRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
)

// readResources reads the `resources:` block; selectors are checked once
// the stages are known (checkResources).
func (b *builder) readResources(n *yaml.Node) {
	if d := deref(n); d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
		return
	}
	es, _ := b.r.entries(n, "resources")
	for _, e := range es {
		rule := ResourceRule{Selector: e.key, Pos: e.kpos}
		fields, _ := b.r.entries(e.value, "resources "+e.key)
		for _, f := range fields {
			b.readResourceField(&rule, f)
		}
		b.p.Resources = append(b.p.Resources, rule)
	}
}

func (b *builder) readResourceField(rule *ResourceRule, f entry) {
	fv := resourceValue{what: fmt.Sprintf("resources %s: %s", rule.Selector, f.key), d: deref(f.value), pos: b.r.pos(nodeOr(f.value))}
	if fv.d != nil && fv.d.Kind == yaml.ScalarNode {
		var err error
		if fv.v, err = scalarValue(fv.d); err != nil {
			b.errs.add(fv.pos, "%s: %v", fv.what, err)
			return
		}
	}
	r := &rule.Resources
	switch f.key {
	case "local":
		x, ok := fv.v.(bool)
		if !ok {
			b.errs.add(fv.pos, "%s: want true or false, got %s", fv.what, describeNode(fv.d))
			return
		}
		r.Local = &x
	case "gpus":
		if s, ok := b.resourceText(fv, gpusRE, `2 or "a100:2"`); ok {
			r.GPUs = s
		}
	case "cpus":
		x, ok := fv.v.(int)
		if !ok || x < 1 {
			b.errs.add(fv.pos, "%s: want a whole number ≥ 1, got %s", fv.what, describeNode(fv.d))
			return
		}
		r.CPUs = x
	case "mem":
		if s, ok := b.resourceText(fv, memRE, `"16G" (K, M, G or T; a bare number is megabytes)`); ok {
			r.Mem = strings.ToUpper(s)
		}
	case "time":
		if s, ok := b.resourceText(fv, timeRE, `"90" (minutes), "1:30:00" or "2-0" (days-hours)`); ok {
			r.Time = s
		}
	case "partition":
		r.Partition, _ = b.resourceText(fv, nameValueRE, "a name")
	case "account":
		r.Account, _ = b.resourceText(fv, nameValueRE, "a name")
	case "qos":
		r.QOS, _ = b.resourceText(fv, nameValueRE, "a name")
	case "extra":
		b.readExtraFlags(rule, fv)
	default:
		b.errs.add(f.kpos, "resources %s: unknown field %q%s; resources have %s", rule.Selector, f.key, stage.DidYouMean(f.key, resourceFields), quoteList(resourceFields))
	}
}

// resourceValue is one field of a resources rule as read: its name for
// messages, its node, position and scalar value (nil for other nodes).
type resourceValue struct {
	what string
	d    *yaml.Node
	pos  Pos
	v    any
}

// resourceText returns a field that wants a string (or a whole number,
// taken as text) matching re; example shows the form in messages.
func (b *builder) resourceText(fv resourceValue, re *regexp.Regexp, example string) (string, bool) {
	var s string
	switch x := fv.v.(type) {
	case string:
		s = x
	case int:
		s = strconv.Itoa(x)
	default:
		b.errs.add(fv.pos, "%s: want a string such as %s, got %s", fv.what, example, describeNode(fv.d))
		return "", false
	}
	if !re.MatchString(s) {
		b.errs.add(fv.pos, "%s: %q is not of the form %s", fv.what, s, example)
		return "", false
	}
	return s, true
}

// readExtraFlags reads the extra field: a list of sbatch flags, each
// starting with '-'.
func (b *builder) readExtraFlags(rule *ResourceRule, fv resourceValue) {
	if fv.d == nil || fv.d.Kind != yaml.SequenceNode {
		b.errs.add(fv.pos, "%s: want a list of flags such as [\"--constraint=avx2\"], got %s", fv.what, describeNode(fv.d))
		return
	}
	for _, item := range fv.d.Content {
		ip := b.r.pos(item)
		it := deref(item)
		s := ""
		if it != nil && it.Kind == yaml.ScalarNode {
			if x, err := scalarValue(it); err == nil {
				s, _ = x.(string)
			}
		}
		if !strings.HasPrefix(s, "-") || strings.ContainsAny(s, "\n\r") {
			b.errs.add(ip, "%s: want a flag starting with '-', got %s", fv.what, describeNode(it))
			continue
		}
		rule.Resources.Extra = append(rule.Resources.Extra, s)
		rule.ExtraPos = append(rule.ExtraPos, ip)
	}
}

// checkResources resolves each rule's selector against the stages and
// kinds of the spec.
func (b *builder) checkResources() {
	for i := range b.p.Resources {
		r := &b.p.Resources[i]
		if r.Selector == "default" {
			continue
		}
		_, r.kind = b.opts.Registry[r.Selector]
		if st := b.p.byStage[r.Selector]; st != nil {
			r.stage, r.instances = true, st.Instances
			continue
		}
		if r.kind {
			continue
		}
		insts, err := b.p.Match(r.Selector)
		if err != nil || len(insts) == 0 {
			why := "it matches no instance"
			if err != nil {
				why = err.Error()
			}
			b.errs.add(r.Pos, "resources %s: want \"default\", a stage kind, a stage name or a reference such as \"spectrum[layer=full,*]\": %s", r.Selector, why)
			continue
		}
		r.instances = insts
	}
}
