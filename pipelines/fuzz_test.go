package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary specs to Parse: it must never panic (Parse turns
// a panic into an "internal error", which fails here), every problem must be
// positioned, and a spec it accepts must be a valid DAG.
func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleSpec))
	files, _ := filepath.Glob("testdata/malformed/*.yaml")
	for _, file := range files {
		if strings.Contains(file, "alias_bomb") {
			continue // slow by design; keeps the fuzzer's iterations fast
		}
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz.yaml", src, Options{Registry: reg, BaseDir: "/base"})
		if err != nil {
			for _, e := range Errors(err) {
				pe, ok := e.(*Error)
				if !ok {
					t.Fatalf("unpositioned error %T: %v", e, e)
				}
				if strings.Contains(pe.Msg, "internal error") || strings.Contains(pe.Msg, "YAML parser failed") {
					t.Fatalf("panic inside Parse: %v", pe)
				}
			}
			return
		}
		seen := map[string]bool{}
		for i, inst := range p.Instances {
			if seen[inst.ID] {
				t.Fatalf("duplicate id %s", inst.ID)
			}
			seen[inst.ID] = true
			if inst.Index != i || p.Instance(inst.ID) != inst {
				t.Fatalf("%s: bad index", inst.ID)
			}
			for _, b := range inst.Inputs {
				for _, from := range b.From {
					if from.Index >= i {
						t.Fatalf("%s before its input %s", inst.ID, from.ID)
					}
				}
			}
			if inst.Stage.Kind == nil {
				t.Fatalf("%s has no kind", inst.ID)
			}
		}
	})
}
