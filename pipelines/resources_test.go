package pipelines

import (
	"reflect"
	"testing"
)

func TestResourcesFor(t *testing.T) {
	src := `
name: r
resources:
  default: {time: "60", account: lab}
  gen: {mem: 4G, cpus: 2, extra: ["--constraint=avx2"]}
  snap: {mem: 8G}
  "snap[epoch=2]": {gpus: "a100:1", extra: ["--nice=5"], local: false}
  train: {partition: gpu}
  sum: {local: true}
stages:
  train: {kind: gen}
  snap: {kind: gen, matrix: {epoch: [1, 2]}, needs: {in: train}}
  sums: {kind: sum, needs: {in: "snap[*]"}}
`
	p, err := Parse("r.yaml", []byte(src), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	for id, want := range map[string]Resources{
		// Rules apply default, kind, stage, then instance refs, field by field.
		"train":         {Time: "60", Account: "lab", Mem: "4G", CPUs: 2, Partition: "gpu", Extra: []string{"--constraint=avx2"}},
		"snap[epoch=1]": {Time: "60", Account: "lab", Mem: "8G", CPUs: 2, Extra: []string{"--constraint=avx2"}},
		"snap[epoch=2]": {Time: "60", Account: "lab", Mem: "8G", CPUs: 2, GPUs: "a100:1", Local: &no, Extra: []string{"--constraint=avx2", "--nice=5"}},
		"sums":          {Time: "60", Account: "lab", Local: &yes},
	} {
		got := p.ResourcesFor(p.Instance(id))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", id, got, want)
		}
	}
	if p.ResourcesFor(p.Instance("train")).IsZero() || !(Resources{}).IsZero() {
		t.Error("IsZero")
	}
}

// A stage key never covers resources: they are not params.
func TestResourcesAreNotParams(t *testing.T) {
	a, err := Parse("a.yaml", []byte("resources: {gen: {mem: 1G}}\nstages:\n  x: {kind: gen}\n"), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", []byte("stages:\n  x: {kind: gen}\n"), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Instances[0].Params, b.Instances[0].Params) {
		t.Errorf("params differ: %v and %v", a.Instances[0].Params, b.Instances[0].Params)
	}
}
