package pipelines

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/stage"
)

const exampleSpec = `
name: demo
doc: a small DAG
vars: {epochs: 3, lr: 1e-2, tag: "run-${epochs}"}
x-base: &base {value: 2, n: 3}
stages:
  data: {kind: gen, with: {<<: *base, label: "${tag}", src: data/file.bin}}
  train:
    kind: gen
    needs: {base: data}
    with: {value: "${lr}", n: "${epochs}", opts: {alpha: 1, dir: /abs/dir}}
  snap:
    kind: gen
    matrix: {layer: [full, conv1.weight], epoch: {range: [1, "${epochs}"]}}
    needs: {base: train}
    with: {n: "${epoch}", label: "${layer}@${epoch}", flags: ["$${literal}", "${layer}"]}
  spectrum:
    kind: gen
    matrix: {epoch: {range: [1, 3]}}
    needs: {in: "snap[epoch=${epoch},*]"}
  grid:
    kind: sum
    needs: {in: ["spectrum[*]", data]}
`

func parseExample(t *testing.T, sets ...Set) *Pipeline {
	t.Helper()
	p, err := Parse("specs/demo.yaml", []byte(exampleSpec), Options{Registry: testRegistry(), Sets: sets, BaseDir: "/repo"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(insts []*Instance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.ID
	}
	return out
}

func TestParseExample(t *testing.T) {
	p := parseExample(t)
	if p.Name != "demo" || p.Doc != "a small DAG" {
		t.Errorf("name %q doc %q", p.Name, p.Doc)
	}
	want := []string{
		"data", "train",
		"snap[epoch=1,layer=full]", "snap[epoch=1,layer=conv1.weight]",
		"snap[epoch=2,layer=full]", "snap[epoch=2,layer=conv1.weight]",
		"snap[epoch=3,layer=full]", "snap[epoch=3,layer=conv1.weight]",
		"spectrum[epoch=1]", "spectrum[epoch=2]", "spectrum[epoch=3]", "grid",
	}
	if got := ids(p.Instances); !reflect.DeepEqual(got, want) {
		t.Fatalf("instances\n got %v\nwant %v", got, want)
	}
	data := p.Instance("data").Params
	// Merge key, text substitution, defaults, relative path resolved.
	wantData := stage.Params{"value": 2.0, "n": 3, "label": "run-3", "mode": "a", "size": 0, "steps": 0,
		"sleep_ms": 0, "fail": false, "panic": false, "src": "/repo/data/file.bin"}
	if !reflect.DeepEqual(data, wantData) {
		t.Errorf("data params\n got %#v\nwant %#v", data, wantData)
	}
	train := p.Instance("train").Params
	// "${lr}" takes the var's type (a float from 1e-2), "${epochs}" an int;
	// the object gets its defaults and keeps an absolute path as is.
	if train["value"] != 0.01 || train["n"] != 3 {
		t.Errorf("train value %#v n %#v", train["value"], train["n"])
	}
	if opts := train.Object("opts"); !reflect.DeepEqual(opts, stage.Params{"alpha": 1.0, "per_class": 10, "dir": "/abs/dir"}) {
		t.Errorf("opts %#v", opts)
	}
	snap := p.Instance("snap[epoch=2,layer=conv1.weight]")
	if snap.Params.Int("n") != 2 || snap.Params.String("label") != "conv1.weight@2" ||
		!reflect.DeepEqual(snap.Params.Strings("flags"), []string{"${literal}", "conv1.weight"}) {
		t.Errorf("snap params %#v", snap.Params)
	}
	if !reflect.DeepEqual(snap.Matrix, map[string]any{"epoch": 2, "layer": "conv1.weight"}) {
		t.Errorf("snap matrix %#v", snap.Matrix)
	}
	spec2 := p.Instance("spectrum[epoch=2]")
	if len(spec2.Inputs) != 1 || spec2.Inputs[0].Name != "in" ||
		!reflect.DeepEqual(ids(spec2.Inputs[0].From), []string{"snap[epoch=2,layer=full]", "snap[epoch=2,layer=conv1.weight]"}) {
		t.Errorf("spectrum[epoch=2] inputs %+v", spec2.Inputs)
	}
	grid := p.Instance("grid")
	if got := ids(grid.Inputs[0].From); !reflect.DeepEqual(got, []string{"spectrum[epoch=1]", "spectrum[epoch=2]", "spectrum[epoch=3]", "data"}) {
		t.Errorf("grid inputs %v", got)
	}
	// Every instance comes after its inputs, and Index is its position.
	for i, inst := range p.Instances {
		if inst.Index != i {
			t.Errorf("%s: Index %d at position %d", inst.ID, inst.Index, i)
		}
		for _, b := range inst.Inputs {
			for _, f := range b.From {
				if f.Index >= i {
					t.Errorf("%s comes before its input %s", inst.ID, f.ID)
				}
			}
		}
	}
}

func TestSetOverrides(t *testing.T) {
	p := parseExample(t, Set{Name: "epochs", Value: "4"}, Set{Name: "lr", Value: "0.5"}, Set{Name: "tag", Value: "fixed"})
	if n := len(p.Stage("snap").Instances); n != 8 {
		t.Errorf("--set epochs=4: %d snap instances, want 8", n)
	}
	if v := p.Instance("train").Params["value"]; v != 0.5 {
		t.Errorf("--set lr=0.5: value %#v", v)
	}
	if l := p.Instance("data").Params["label"]; l != "fixed" {
		t.Errorf("--set tag=fixed: label %#v", l)
	}
	if p.Vars["epochs"] != 4 || p.Vars["tag"] != "fixed" {
		t.Errorf("vars %#v", p.Vars)
	}
	// Vars that depend on an overridden var follow it.
	src := "vars: {epochs: 3, tag: \"e${epochs}\"}\nstages:\n  a: {kind: gen, with: {label: \"${tag}\"}}\n"
	q, err := Parse("x.yaml", []byte(src), Options{Registry: testRegistry(), Sets: []Set{{Name: "epochs", Value: "7"}}})
	if err != nil {
		t.Fatal(err)
	}
	if l := q.Instance("a").Params["label"]; l != "e7" {
		t.Errorf("dependent var: label %#v, want e7", l)
	}
	// A list value.
	q, err = Parse("x.yaml", []byte("vars: {f: []}\nstages:\n  a: {kind: gen, with: {flags: \"${f}\"}}\n"),
		Options{Registry: testRegistry(), Sets: []Set{{Name: "f", Value: "[x, y]"}}})
	if err != nil {
		t.Fatal(err)
	}
	if f := q.Instance("a").Params.Strings("flags"); !reflect.DeepEqual(f, []string{"x", "y"}) {
		t.Errorf("list --set: %v", f)
	}
}

func TestParseSet(t *testing.T) {
	for in, want := range map[string]Set{
		"lr=0.01":   {Name: "lr", Value: "0.01"},
		"tag=a=b":   {Name: "tag", Value: "a=b"},
		"empty=":    {Name: "empty", Value: ""},
		" name =x ": {Name: "name", Value: "x "},
	} {
		got, err := ParseSet(in)
		if err != nil || got != want {
			t.Errorf("ParseSet(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"novalue", "=1", "1x=2", "a-b=1"} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q): no error", bad)
		}
	}
}

func TestMatrixValues(t *testing.T) {
	src := `
stages:
  sweep:
    kind: gen
    matrix: {lr: [0.01, 1e-3, 2], on: [true, false], step: {range: [1, 10, 3]}}
    with: {value: "${lr}", label: "${on}-${step}"}
`
	p, err := Parse("m.yaml", []byte(src), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stage("sweep")
	if !reflect.DeepEqual(st.Axes, []string{"lr", "on", "step"}) || len(st.Instances) != 3*2*4 {
		t.Fatalf("axes %v, %d instances", st.Axes, len(st.Instances))
	}
	want := []string{"sweep[lr=0.01,on=true,step=1]", "sweep[lr=0.01,on=true,step=4]", "sweep[lr=0.01,on=true,step=7]", "sweep[lr=0.01,on=true,step=10]"}
	if got := ids(st.Instances[:4]); !reflect.DeepEqual(got, want) {
		t.Errorf("first instances %v", got)
	}
	inst := p.Instance("sweep[lr=0.001,on=false,step=7]")
	if inst == nil {
		t.Fatal("sweep[lr=0.001,on=false,step=7] missing")
	}
	if inst.Params["value"] != 0.001 || inst.Params["label"] != "false-7" {
		t.Errorf("params %#v", inst.Params)
	}
	// An integer matrix value feeds a Float param as a float.
	if v := p.Instance("sweep[lr=2,on=true,step=1]").Params["value"]; v != 2.0 {
		t.Errorf("value %#v, want float64 2", v)
	}
}

func TestMatch(t *testing.T) {
	p := parseExample(t)
	for pattern, want := range map[string][]string{
		"train":                            {"train"},
		"snap[epoch=1,layer=full]":         {"snap[epoch=1,layer=full]"},
		"snap[layer=full,epoch=1]":         {"snap[epoch=1,layer=full]"},
		"snap[layer=full,*]":               {"snap[epoch=1,layer=full]", "snap[epoch=2,layer=full]", "snap[epoch=3,layer=full]"},
		"spectrum":                         {"spectrum[epoch=1]", "spectrum[epoch=2]", "spectrum[epoch=3]"},
		"snap[epoch=3,layer=conv1.weight]": {"snap[epoch=3,layer=conv1.weight]"},
	} {
		got, err := p.Match(pattern)
		if err != nil || !reflect.DeepEqual(ids(got), want) {
			t.Errorf("Match(%q) = %v, %v; want %v", pattern, ids(got), err, want)
		}
	}
	for pattern, msg := range map[string]string{
		"trian":            `no stage "trian" (did you mean "train"?)`,
		"snap[epoch=9,*]":  "no instance of snap has epoch=9",
		"snap[epoch=1]":    "leaves layer open",
		"snap[layr=full]":  `did you mean "layer"?`,
		"snap[epoch=1,,*]": "want axis=value or *",
	} {
		if _, err := p.Match(pattern); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Match(%q) err = %v, want %q", pattern, err, msg)
		}
	}
}

func TestDefaultNameAndAnchors(t *testing.T) {
	src := `
stages:
  a: {kind: gen, with: &common {value: 3, opts: {per_class: 5}}}
  b: {kind: gen, with: *common}
  c: {kind: gen, with: {<<: *common, value: 4}}
`
	p, err := Parse("dir/my-spec.v2.yaml", []byte(src), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "my-spec.v2" {
		t.Errorf("default name %q", p.Name)
	}
	a, b, c := p.Instance("a").Params, p.Instance("b").Params, p.Instance("c").Params
	if !reflect.DeepEqual(a, b) {
		t.Errorf("alias: %v vs %v", a, b)
	}
	if c["value"] != 4.0 || c.Object("opts").Int("per_class") != 5 {
		t.Errorf("merge with override: %v", c)
	}
}

func TestEditDistanceSuggestions(t *testing.T) {
	for _, c := range []struct {
		word, want string
		cands      []string
	}{
		{"wiht", "with", stageKeys},
		{"stagse", "stages", topKeys},
		{"neds", "needs", stageKeys},
		{"zzz", "", stageKeys},
		{"Kind", "kind", stageKeys},
		{"lr", "", []string{"value", "n"}},
	} {
		if got := stage.Suggest(c.word, c.cands); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
	if d := stage.EditDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", d)
	}
}
