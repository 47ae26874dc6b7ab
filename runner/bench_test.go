package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/pipelines"
)

// The benchmarks share one working directory whose cache holds every stage
// of the generated specs, filled once (about 10-20 s on 2 cores).
var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		artifacts.RemoveTree(benchDir)
	}
	os.Exit(code)
}

// matrixSpec has 10,000 instances: a[i,j] (100×50) and b[i,j], each b
// needing its a.
const matrixSpec = `
name: big
stages:
  a:
    kind: gen
    matrix: {i: {range: [1, 100]}, j: {range: [1, 50]}}
    with: {value: "${i}", n: "${j}"}
  b:
    kind: gen
    matrix: {i: {range: [1, 100]}, j: {range: [1, 50]}}
    needs: {base: "a[i=${i},j=${j}]"}
    with: {label: "b-${i}-${j}"}
`

// explicitSpec writes 10,000 stages out one by one: 5,000 roots and 5,000
// stages that each need one root.
func explicitSpec() string {
	var b strings.Builder
	b.WriteString("name: explicit\nstages:\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "  r%d: {kind: gen, with: {value: %d, label: root}}\n", i, i)
		fmt.Fprintf(&b, "  u%d:\n    kind: gen\n    needs: {base: r%d}\n    with: {n: 2}\n", i, i)
	}
	return b.String()
}

func benchSetup(b *testing.B) (string, *artifacts.Store) {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "runner-bench-")
		if benchErr != nil {
			return
		}
		var s *artifacts.Store
		if s, benchErr = artifacts.Open(filepath.Join(benchDir, ".runner")); benchErr != nil {
			return
		}
		for name, src := range map[string]string{"matrix.yaml": matrixSpec, "explicit.yaml": explicitSpec()} {
			if benchErr = os.WriteFile(filepath.Join(benchDir, name), []byte(src), 0o666); benchErr != nil {
				return
			}
			p, err := pipelines.Load(filepath.Join(benchDir, name), pipelines.Options{Registry: fakekinds.Registry(), BaseDir: benchDir})
			if err != nil {
				benchErr = err
				return
			}
			sum, err := Run(context.Background(), []*pipelines.Pipeline{p}, Options{Store: s, WorkDir: benchDir})
			if err == nil && (!sum.OK() || len(sum.Results) != 10000) {
				err = fmt.Errorf("filling the cache: %s", sum)
			}
			if err != nil {
				benchErr = err
				return
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	s, err := artifacts.Open(filepath.Join(benchDir, ".runner"))
	if err != nil {
		b.Fatal(err)
	}
	return benchDir, s
}

func loadBench(b *testing.B, dir, name string) *pipelines.Pipeline {
	p, err := pipelines.Load(filepath.Join(dir, name), pipelines.Options{Registry: fakekinds.Registry(), BaseDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPlan10k is `runner plan` of a 10,000-stage spec whose stages are
// all cached: parse, expand, compute every key and check the cache.
func BenchmarkPlan10k(b *testing.B) {
	for _, spec := range []string{"matrix.yaml", "explicit.yaml"} {
		b.Run(strings.TrimSuffix(spec, ".yaml"), func(b *testing.B) {
			dir, s := benchSetup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := loadBench(b, dir, spec)
				entries, err := Plan([]*pipelines.Pipeline{p}, Options{Store: s})
				if err != nil {
					b.Fatal(err)
				}
				if len(entries) != 10000 || !entries[9999].Cached {
					b.Fatalf("%d entries, last cached %v", len(entries), entries[len(entries)-1].Cached)
				}
			}
		})
	}
}

// BenchmarkNoopRun10k is `runner run` of a 10,000-stage spec with nothing to
// do: parse, plan, serve all from the cache, refresh the results view and
// the index.
func BenchmarkNoopRun10k(b *testing.B) {
	for _, spec := range []string{"matrix.yaml", "explicit.yaml"} {
		b.Run(strings.TrimSuffix(spec, ".yaml"), func(b *testing.B) {
			dir, s := benchSetup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := loadBench(b, dir, spec)
				sum, err := Run(context.Background(), []*pipelines.Pipeline{p}, Options{Store: s, WorkDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if sum.Cached != 10000 {
					b.Fatalf("no-op run: %s", sum)
				}
			}
		})
	}
}

// BenchmarkParse10k is the parse alone, for comparison.
func BenchmarkParse10k(b *testing.B) {
	for _, spec := range []string{"matrix.yaml", "explicit.yaml"} {
		b.Run(strings.TrimSuffix(spec, ".yaml"), func(b *testing.B) {
			dir, _ := benchSetup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				loadBench(b, dir, spec)
			}
		})
	}
}
