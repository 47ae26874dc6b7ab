package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/stage"
)

// fixture is a working directory with a cache, for running specs.
type fixture struct {
	t     *testing.T
	dir   string
	store *artifacts.Store
	reg   stage.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	s, err := artifacts.Open(filepath.Join(dir, ".runner"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, dir: dir, store: s, reg: fakekinds.Registry()}
}

func (f *fixture) parse(name, src string, sets ...pipelines.Set) *pipelines.Pipeline {
	f.t.Helper()
	p, err := pipelines.Parse(name, []byte(src), pipelines.Options{Registry: f.reg, Sets: sets, BaseDir: f.dir})
	if err != nil {
		f.t.Fatalf("parse %s: %v", name, err)
	}
	return p
}

func (f *fixture) opts() Options {
	return Options{Store: f.store, Jobs: 4, WorkDir: f.dir}
}

func (f *fixture) run(src string, mod func(*Options)) Summary {
	f.t.Helper()
	o := f.opts()
	if mod != nil {
		mod(&o)
	}
	sum, err := Run(context.Background(), []*pipelines.Pipeline{f.parse("spec.yaml", src)}, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return sum
}

// outcomes groups the ids of a summary by outcome.
func outcomes(s Summary) map[Outcome][]string {
	out := map[Outcome][]string{}
	for _, r := range s.Results {
		out[r.Outcome] = append(out[r.Outcome], r.ID)
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}

func resultOf(t *testing.T, s Summary, id string) Result {
	t.Helper()
	for _, r := range s.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s", id)
	return Result{}
}

func value(t *testing.T, s Summary, id string) float64 {
	t.Helper()
	r := resultOf(t, s, id)
	res, err := fakekinds.ReadResult(r.Dir)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return res.Value
}

// threeLevels is a 3-level DAG: a → b[i] → c, plus an independent d.
const threeLevels = `
name: three
stages:
  a: {kind: gen, with: {value: 1e-2, n: 100}}
  b:
    kind: gen
    matrix: {i: [1, 2, 3]}
    needs: {base: a}
    with: {value: "${i}", mode: a}
  c:
    kind: sum
    needs: {in: "b[*]"}
  d: {kind: gen, with: {value: 5}}
`

func TestIncrementalRerun(t *testing.T) {
	f := newFixture(t)
	first := f.run(threeLevels, nil)
	if !first.OK() || first.Ran != 6 {
		t.Fatalf("first run: %s %+v", first, outcomes(first))
	}
	// a = 0.01×100 = 1; b[i] = i + 1; c = 2+3+4 = 9.
	if v := value(t, first, "c"); v != 9 {
		t.Fatalf("c = %v, want 9", v)
	}
	if s := first.String(); !strings.HasPrefix(s, "6 stages: 6 ran, 0 cached, 0 failed (") || !strings.HasSuffix(s, " s)") {
		t.Errorf("summary line %q", s)
	}

	// Comments, key order, flow vs block style, 0.01 for 1e-2 and a
	// renamed stage (with its references) change no key.
	same := `
# the same DAG, written differently
name: three
stages:
  dd:   # renamed from d
    with: {value: 5.0}
    kind: gen
  c: {needs: {in: "bee[*]"}, kind: sum}
  bee:
    with:
      mode: a
      value: "${i}"
    needs: {base: a}
    matrix: {i: [1, 2, 3]}
    kind: gen
  a:
    kind: gen
    with: {n: 100, value: 0.01}
`
	again := f.run(same, nil)
	if again.Ran != 0 || again.Cached != 6 {
		t.Fatalf("rewritten spec: %s %+v", again, outcomes(again))
	}

	// Setting n: "${i}" changes the params of b[i=2] and b[i=3] only: for
	// b[i=1] it spells out the default (1), so its key stays. Exactly those
	// two and c rerun.
	changed := strings.Replace(threeLevels, `with: {value: "${i}", mode: a}`, `with: {value: "${i}", mode: a, n: "${i}"}`, 1)
	third := f.run(changed, nil)
	got := outcomes(third)
	if !reflect.DeepEqual(got[Ran], []string{"b[i=2]", "b[i=3]", "c"}) {
		t.Fatalf("after changing n: ran %v, want b[i=2], b[i=3], c (cached %v)", got[Ran], got[Cached])
	}
	// b[2] = 2×2 + 1 = 5, b[3] = 3×3 + 1 = 10: c = 2 + 5 + 10.
	if v := value(t, third, "c"); v != 17 {
		t.Errorf("c = %v, want 17", v)
	}

	// A param that changes b's key but not its output reruns b only: c's
	// key covers b's digest, which is unchanged (early cut-off).
	labelled := strings.Replace(changed, `mode: a, n:`, `mode: a, label: x, n:`, 1)
	fourth := f.run(labelled, nil)
	got = outcomes(fourth)
	if !reflect.DeepEqual(got[Ran], []string{"b[i=1]", "b[i=2]", "b[i=3]"}) || !containsString(got[Cached], "c") {
		t.Errorf("label change: ran %v cached %v; want b only", got[Ran], got[Cached])
	}
}

// TestPlanReasonsCopiedSpec: a renamed copy of a spec with one param
// edited reruns that stage only, and the plan compares it with the same
// stage of the original.
func TestPlanReasonsCopiedSpec(t *testing.T) {
	f := newFixture(t)
	f.run(threeLevels, nil)
	cp := strings.Replace(threeLevels, "name: three", "name: mine", 1)
	cp = strings.Replace(cp, "with: {value: 5}", "with: {value: 6}", 1)
	entries, err := Plan([]*pipelines.Pipeline{f.parse("mine.yaml", cp)}, Options{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got := e.Action() + ": " + strings.Join(e.Reasons, " ")
		want := "cached: "
		if e.ID == "d" {
			want = "run: new (spec three has this stage with param value 5 → 6)"
		}
		if got != want {
			t.Errorf("%s: %q, want %q", e.ID, got, want)
		}
	}
}

func TestPlanReasons(t *testing.T) {
	f := newFixture(t)
	f.run(threeLevels, nil)
	changed := strings.Replace(threeLevels, "value: 1e-2", "value: 0.005", 1)
	changed = strings.Replace(changed, "  d: {kind: gen, with: {value: 5}}", "  d: {kind: gen, with: {value: 5}}\n  e: {kind: gen}", 1)
	p := f.parse("spec.yaml", changed)
	entries, err := Plan([]*pipelines.Pipeline{p}, Options{Store: f.store, Force: []string{"d"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		got[e.ID] = e.Action() + ": " + strings.Join(e.Reasons, "; ")
		if e.Action() == "cached" && (e.Key == "" || e.Dir == "") {
			t.Errorf("%s cached without key or dir", e.ID)
		}
	}
	want := map[string]string{
		"a":      "run: param value 0.01 → 0.005",
		"b[i=1]": "run: input base is recomputed first",
		"b[i=2]": "run: input base is recomputed first",
		"b[i=3]": "run: input base is recomputed first",
		"c":      "run: input in is recomputed first",
		"d":      "run: forced",
		"e":      "run: new",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan\n got %v\nwant %v", got, want)
	}

	// A new implementation version of gen.
	reg := fakekinds.Registry()
	gen2 := *fakekinds.Gen
	gen2.Version = 2
	reg["gen"] = &gen2
	p2, err := pipelines.Parse("spec.yaml", []byte(threeLevels), pipelines.Options{Registry: reg, BaseDir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	entries, err = Plan([]*pipelines.Pipeline{p2}, Options{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[0]; e.ID != "a" || e.Cached || strings.Join(e.Reasons, "; ") != "implementation v1 → v2" {
		t.Errorf("version bump: %+v", e)
	}

	// Plan changes nothing: the original spec is still fully cached.
	entries, _ = Plan([]*pipelines.Pipeline{f.parse("spec.yaml", threeLevels)}, Options{Store: f.store})
	for _, e := range entries {
		if !e.Cached {
			t.Errorf("%s not cached after planning other specs: %v", e.ID, e.Reasons)
		}
	}
}

func TestInputChangedReason(t *testing.T) {
	f := newFixture(t)
	src := "stages:\n  a: {kind: gen, with: {value: 1}}\n  b: {kind: gen, needs: {base: a}}\n"
	f.run(src, nil)
	// Make a's result differ, run only a by running a spec without b under
	// another name, then plan the original: b's input changed.
	f.run(strings.Replace(src, "value: 1}", "value: 2}", 1), nil)
	p := f.parse("spec.yaml", src)
	// a with value 1 is cached; b's key with a's digest is cached too.
	entries, _ := Plan([]*pipelines.Pipeline{p}, Options{Store: f.store})
	if !entries[0].Cached || !entries[1].Cached {
		t.Fatalf("plan %+v", entries)
	}
	// Remove b's record: its reason compares with the last run (value 2).
	entries, _ = Plan([]*pipelines.Pipeline{f.parse("spec.yaml", strings.Replace(src, "b: {kind: gen,", "b: {kind: gen, with: {n: 2},", 1))}, Options{Store: f.store})
	if r := strings.Join(entries[1].Reasons, "; "); r != "param n 1 → 2; input base changed" {
		t.Errorf("b reasons %q", r)
	}
}

func TestKeyIgnoresSpellingAndName(t *testing.T) {
	f := newFixture(t)
	keyOf := func(src, file string) artifacts.Key {
		p, err := pipelines.Parse(file, []byte(src), pipelines.Options{Registry: f.reg, BaseDir: f.dir})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := Plan([]*pipelines.Pipeline{p}, Options{Store: f.store})
		if err != nil {
			t.Fatal(err)
		}
		return entries[0].Key
	}
	base := keyOf("stages:\n  s: {kind: gen, with: {value: 0.01, n: 2}}\n", "one.yaml")
	for _, src := range []string{
		"name: other\nstages:\n  renamed: {kind: gen, with: {n: 2, value: 1e-2}}\n",
		"stages:\n  s:\n    # comment\n    with:\n      value: 1.0e-2\n      n: 2\n      mode: a   # the default, written out\n    kind: gen\n",
		"vars: {lr: 0.010}\nstages:\n  s: {kind: gen, with: {value: \"${lr}\", n: 2.0}}\n",
	} {
		if k := keyOf(src, "two.yaml"); k != base {
			t.Errorf("key changed for\n%s", src)
		}
	}
	if keyOf("stages:\n  s: {kind: gen, with: {value: 0.011, n: 2}}\n", "one.yaml") == base {
		t.Error("a different value gave the same key")
	}
}

func TestPathParamKeyCoversContent(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.dir, "data"), 0o777)
	os.WriteFile(filepath.Join(f.dir, "data", "x.bin"), []byte("hello"), 0o666)
	keyOf := func(path string) artifacts.Key {
		p := f.parse("s.yaml", "stages:\n  s: {kind: gen, with: {src: \""+path+"\"}}\n")
		entries, err := Plan([]*pipelines.Pipeline{p}, Options{Store: f.store})
		if err != nil {
			t.Fatal(err)
		}
		if entries[0].Error != "" {
			t.Fatal(entries[0].Error)
		}
		return entries[0].Key
	}
	k1 := keyOf("data/x.bin")
	if k2 := keyOf(filepath.Join(f.dir, "data", "..", "data", "x.bin")); k2 != k1 {
		t.Error("two spellings of one file give different keys")
	}
	os.WriteFile(filepath.Join(f.dir, "data", "x.bin"), []byte("hello, changed"), 0o666)
	if keyOf("data/x.bin") == k1 {
		t.Error("changed content kept the key")
	}
	// A missing path is a stage error, naming the param.
	p := f.parse("s.yaml", "stages:\n  s: {kind: gen, with: {src: missing.bin}}\n")
	sum, err := Run(context.Background(), []*pipelines.Pipeline{p}, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Results[0]; r.Outcome != Failed || !strings.Contains(r.Err.Error(), "param src") || !strings.Contains(r.Err.Error(), "missing.bin") {
		t.Errorf("missing path: %+v", r)
	}
}

func TestBackendAndDownloadsReachTheStage(t *testing.T) {
	f := newFixture(t)
	src := "stages:\n  g: {kind: gen}\n"
	sum := f.run(src, func(o *Options) { o.Backend = "xla:cuda" })
	log, err := os.ReadFile(filepath.Join(resultOf(t, sum, "g").Dir, artifacts.LogName))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`backend="xla:cuda" downloads=%s`, f.store.Downloads())
	if !strings.Contains(string(log), want) {
		t.Errorf("log.txt lacks %q:\n%s", want, log)
	}
	// The backend is not part of the key.
	again := f.run(src, func(o *Options) { o.Backend = "go" })
	if again.Cached != 1 {
		t.Errorf("another backend reran the stage: %s", again)
	}
}

func TestSharedStageAcrossSpecs(t *testing.T) {
	f := newFixture(t)
	a := f.parse("a.yaml", "stages:\n  data: {kind: gen, with: {value: 3}}\n  x: {kind: gen, needs: {base: data}}\n")
	b := f.parse("b.yaml", "stages:\n  dataset: {kind: gen, with: {value: 3.0}}\n  y: {kind: gen, needs: {base: dataset}, with: {n: 2}}\n")
	sum, err := Run(context.Background(), []*pipelines.Pipeline{a, b}, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Ran != 3 || sum.Cached != 1 {
		t.Errorf("two specs sharing a stage: %s %+v", sum, outcomes(sum))
	}
	for _, link := range []string{"results/a/data", "results/b/dataset", "results/a/x", "results/b/y"} {
		if _, err := fakekinds.ReadResult(filepath.Join(f.dir, link)); err != nil {
			t.Errorf("%s: %v", link, err)
		}
	}
	if ra, rb := resultOf(t, sum, "data"), resultOf(t, sum, "dataset"); ra.Key != rb.Key || ra.Dir != rb.Dir {
		t.Errorf("shared stage: keys %s %s", ra.Key.Short(), rb.Key.Short())
	}
}

func TestResultsView(t *testing.T) {
	f := newFixture(t)
	f.run(threeLevels, nil)
	link := filepath.Join(f.dir, "results", "three", "b[i=2]")
	target, err := os.Readlink(link)
	if err != nil || filepath.IsAbs(target) {
		t.Fatalf("link %s → %q, %v; want a relative link", link, target, err)
	}
	if r, err := fakekinds.ReadResult(link); err != nil || r.Value != 3 {
		t.Errorf("via link: %+v, %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(link, artifacts.LogName)); err != nil {
		t.Errorf("log.txt missing from the artifact: %v", err)
	}
	// Dropping a stage from the spec drops its link.
	f.run(strings.Replace(threeLevels, "  d: {kind: gen, with: {value: 5}}\n", "", 1), nil)
	if _, err := os.Lstat(filepath.Join(f.dir, "results", "three", "d")); err == nil {
		t.Error("link of a removed stage survived")
	}
}

func TestFailureCancelsRest(t *testing.T) {
	f := newFixture(t)
	src := `
stages:
  bad: {kind: gen, with: {fail: true}}
  after: {kind: gen, needs: {base: bad}}
  slow: {kind: gen, with: {sleep_ms: 30000}}
`
	start := time.Now()
	sum := f.run(src, func(o *Options) { o.Jobs = 2 })
	if time.Since(start) > 20*time.Second {
		t.Error("the failure did not cancel the slow stage")
	}
	got := outcomes(sum)
	if !reflect.DeepEqual(got[Failed], []string{"bad"}) || !reflect.DeepEqual(got[Skipped], []string{"after", "slow"}) {
		t.Errorf("outcomes %v", got)
	}
	if s := sum.String(); !strings.HasPrefix(s, "3 stages: 0 ran, 0 cached, 3 failed") {
		t.Errorf("summary %q", s)
	}
	bad := resultOf(t, sum, "bad")
	if len(bad.LogTail) != logTailLines || bad.LogTail[len(bad.LogTail)-2] != "log line 30" {
		t.Errorf("log tail %q", bad.LogTail)
	}
	if data, err := os.ReadFile(bad.LogFile); err != nil || !strings.Contains(string(data), "log line 1\n") {
		t.Errorf("kept log %s: %v", bad.LogFile, err)
	}
	if r := resultOf(t, sum, "after"); r.Err == nil || r.Err.Error() != "input bad failed" {
		t.Errorf("after: %v", r.Err)
	}
	assertNoTemp(t, f.store)
}

func TestKeepGoing(t *testing.T) {
	f := newFixture(t)
	src := `
stages:
  bad: {kind: gen, with: {fail: true}}
  after: {kind: gen, needs: {base: bad}}
  later: {kind: sum, needs: {in: "after[*]"}}
  other: {kind: gen, with: {sleep_ms: 200}}
  next: {kind: gen, needs: {base: other}}
`
	sum := f.run(src, func(o *Options) { o.KeepGoing = true; o.Jobs = 2 })
	got := outcomes(sum)
	if !reflect.DeepEqual(got[Ran], []string{"next", "other"}) || !reflect.DeepEqual(got[Failed], []string{"bad"}) ||
		!reflect.DeepEqual(got[Skipped], []string{"after", "later"}) {
		t.Errorf("keep-going outcomes %v", got)
	}
	if r := resultOf(t, sum, "later"); r.Err.Error() != "input after failed" {
		t.Errorf("later: %v", r.Err)
	}
}

func TestPanicBecomesError(t *testing.T) {
	f := newFixture(t)
	sum := f.run("stages:\n  p: {kind: gen, with: {panic: true}}\n", nil)
	r := sum.Results[0]
	if r.Outcome != Failed || r.Err.Error() != "panic: gen: asked to panic" {
		t.Fatalf("result %+v", r)
	}
	data, _ := os.ReadFile(r.LogFile)
	if !strings.Contains(string(data), "runtime/debug.Stack") && !strings.Contains(string(data), "goroutine ") {
		t.Errorf("stack missing from the log:\n%s", data)
	}
}

func TestCancelLeavesNothingHalfWritten(t *testing.T) {
	f := newFixture(t)
	marks := t.TempDir()
	t.Setenv("FAKEKINDS_MARK", marks)
	src := "stages:\n  quick: {kind: gen}\n  slow: {kind: gen, with: {sleep_ms: 60000}}\n  after: {kind: gen, needs: {base: slow}}\n"
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if entries, _ := os.ReadDir(marks); len(entries) > 0 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	p := f.parse("spec.yaml", src)
	sum, err := Run(ctx, []*pipelines.Pipeline{p}, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.OK() {
		t.Errorf("summary %s, interrupted %v", sum, sum.Interrupted)
	}
	assertNoTemp(t, f.store)
	st, _ := f.store.Status()
	if st.Records != 1 || st.Failed != 0 {
		t.Errorf("after cancel: %d records (want quick's only), %d failed logs", st.Records, st.Failed)
	}
	entries, _ := Plan([]*pipelines.Pipeline{p}, Options{Store: f.store})
	if r := strings.Join(entries[1].Reasons, "; "); entries[1].ID != "slow" || r != "its last run did not finish" {
		t.Errorf("plan after cancel: %s: %q", entries[1].ID, r)
	}
	// The next run picks up where this one stopped.
	t.Setenv("FAKEKINDS_FAST", "1")
	again := f.run(src, nil)
	if !again.OK() || again.Cached != 1 || again.Ran != 2 {
		t.Errorf("rerun: %s", again)
	}
}

func assertNoTemp(t *testing.T, s *artifacts.Store) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if len(entries) != 0 {
		t.Errorf("tmp/ holds %d entries", len(entries))
	}
}

func TestForceAndRecheck(t *testing.T) {
	f := newFixture(t)
	src := "stages:\n  g: {kind: gen, with: {value: 4}}\n  r: {kind: nondet}\n  down: {kind: gen, needs: {base: g}}\n"
	f.run(src, nil)
	forced := f.run(src, func(o *Options) { o.Force = []string{"g"} })
	got := outcomes(forced)
	// g reruns, produces the same digest, so down stays cached.
	if !reflect.DeepEqual(got[Ran], []string{"g"}) || !reflect.DeepEqual(got[Cached], []string{"down", "r"}) {
		t.Errorf("force: %v", got)
	}
	checked := f.run(src, func(o *Options) { o.Recheck = []string{"g", "r"} })
	g, r := resultOf(t, checked, "g"), resultOf(t, checked, "r")
	if g.Outcome != Ran || !g.Rechecked {
		t.Errorf("recheck of a deterministic stage: %+v", g)
	}
	if r.Outcome != Failed || !strings.Contains(r.Err.Error(), "not deterministic") || !strings.Contains(r.Err.Error(), "random.txt: content differs") {
		t.Errorf("recheck of a random stage: %v", r.Err)
	}
	// A recheck does not replace the cached artifact.
	if e, _ := Plan([]*pipelines.Pipeline{f.parse("spec.yaml", src)}, Options{Store: f.store}); !e[1].Cached {
		t.Error("recheck dropped the cached result")
	}
	if _, err := Run(context.Background(), []*pipelines.Pipeline{f.parse("spec.yaml", src)}, Options{Store: f.store, Force: []string{"nosuch"}}); err == nil || !strings.Contains(err.Error(), "--force: nosuch matches no stage") {
		t.Errorf("bad --force: %v", err)
	}
}

func TestExec(t *testing.T) {
	f := newFixture(t)
	src := "stages:\n  a: {kind: gen, with: {value: 2, size: 1000}}\n  b: {kind: gen, needs: {base: a}, with: {n: 3}}\n"
	sum := f.run(src, nil)
	b := resultOf(t, sum, "b")
	ctx := context.Background()
	// Cached: nothing runs.
	rec, ran, err := Exec(ctx, f.store, f.reg, b.Key, ExecOptions{})
	if err != nil || ran || rec.Digest != b.Digest {
		t.Fatalf("Exec of a cached key: %+v, %v, %v", rec, ran, err)
	}
	// Forced: recomputed from the cache alone, same digest.
	rec, ran, err = Exec(ctx, f.store, f.reg, b.Key, ExecOptions{Force: true})
	if err != nil || !ran || rec.Digest != b.Digest {
		t.Fatalf("forced Exec: %+v, %v, %v", rec, ran, err)
	}
	// A binary whose kind has another version refuses.
	reg := fakekinds.Registry()
	gen2 := *fakekinds.Gen
	gen2.Version = 7
	reg["gen"] = &gen2
	if _, _, err := Exec(ctx, f.store, reg, b.Key, ExecOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "wants gen v1, this runner has v7") {
		t.Errorf("version mismatch: %v", err)
	}
	// A job whose input list differs from what its key covers is refused.
	data, _ := f.store.ReadDesc(b.Key)
	a := resultOf(t, sum, "a")
	other := strings.Repeat("0", 64)
	swapped := bytes.Replace(data, []byte(`"digest": "`+string(a.Digest)+`"`), []byte(`"digest": "`+other+`"`), 1)
	if bytes.Equal(swapped, data) {
		t.Fatal("test set-up: no input digest in the job")
	}
	f.store.WriteDesc(b.Key, swapped)
	if _, _, err := Exec(ctx, f.store, f.reg, b.Key, ExecOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "its key covers "+a.Digest.Short()) {
		t.Errorf("swapped input: %v", err)
	}
	// A damaged input is refused.
	f.store.WriteDesc(b.Key, data)
	damage(t, a.Dir, "payload.bin", func(p string) error { return os.Truncate(p, 1) })
	if _, _, err := Exec(ctx, f.store, f.reg, b.Key, ExecOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "is damaged: payload.bin: size 1, want 1000") {
		t.Errorf("damaged input: %v", err)
	}
	// An altered description is refused.
	f.store.WriteDesc(b.Key, bytes.Replace(data, []byte(`"n": 3`), []byte(`"n": 4`), 1))
	if _, _, err := Exec(ctx, f.store, f.reg, b.Key, ExecOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("altered description: %v", err)
	}
}

// recorder is a Reporter that counts concurrent stages.
type recorder struct {
	mu               sync.Mutex
	running, maxRun  int
	started, results []string
}

func (r *recorder) Started(id string) stage.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running++
	r.maxRun = max(r.maxRun, r.running)
	r.started = append(r.started, id)
	return stage.Discard
}

func (r *recorder) Done(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.Outcome == Ran || res.Outcome == Failed {
		r.running--
	}
	r.results = append(r.results, res.ID)
}
func (r *recorder) Note(string) {}
func (r *recorder) Close()      {}

func TestJobsBoundParallelism(t *testing.T) {
	f := newFixture(t)
	src := "stages:\n  s: {kind: gen, matrix: {i: {range: [1, 12]}}, with: {value: \"${i}\", sleep_ms: 40}}\n  t: {kind: sum, needs: {in: \"s[*]\"}}\n"
	rec := &recorder{}
	sum := f.run(src, func(o *Options) { o.Jobs = 3; o.Reporter = rec })
	if !sum.OK() || value(t, sum, "t") != 78 {
		t.Fatalf("%s", sum)
	}
	if rec.maxRun != 3 {
		t.Errorf("at most %d stages ran at once, want 3", rec.maxRun)
	}
	if rec.results[len(rec.results)-1] != "t" {
		t.Errorf("t finished before its inputs: %v", rec.results)
	}
}

// TestPlainReporterProgress: in a log, a stage prints its start, a progress
// line at most every 30 s while a unit goes on, one when a unit of a second
// or more ends, and its outcome; a quick stage prints its start and outcome
// only.
func TestPlainReporterProgress(t *testing.T) {
	var buf bytes.Buffer
	r := NewPlainReporter(&buf, false)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	p := r.Started("train")
	for epoch := 1; epoch <= 2; epoch++ {
		p.Start(fmt.Sprintf("epoch %d/2", epoch), 100)
		for i := 0; i < 100; i++ {
			clock = clock.Add(time.Second) // 100 s an epoch
			p.Advance(1)
		}
		p.Finish()
		p.Start(fmt.Sprintf("evaluate %d/2", epoch), 4)
		p.Advance(4) // instant: no line
		p.Finish()
	}
	r.Done(Result{ID: "train", Outcome: Ran, Duration: 200 * time.Second, Reasons: []string{"new"}})
	quick := r.Started("quick")
	quick.Start("steps", 10)
	for i := 0; i < 10; i++ {
		quick.Advance(1)
	}
	quick.Finish()
	r.Done(Result{ID: "quick", Outcome: Ran, Duration: 0, Reasons: []string{"new"}})
	r.Done(Result{ID: "cachedone", Outcome: Cached})
	r.Close()
	want := []string{
		"run      train",
		"  train: epoch 1/2  30% 30/100 1.00/s ETA 1m10s",
		"  train: epoch 1/2  60% 60/100 1.00/s ETA 40s",
		"  train: epoch 1/2  90% 90/100 1.00/s ETA 10s",
		"  train: epoch 1/2 100% 100/100 1.00/s",
		"  train: epoch 2/2  30% 30/100 1.00/s ETA 1m10s",
		"  train: epoch 2/2  60% 60/100 1.00/s ETA 40s",
		"  train: epoch 2/2  90% 90/100 1.00/s ETA 10s",
		"  train: epoch 2/2 100% 100/100 1.00/s",
		"ran      train  200.0 s  (new)",
		"run      quick",
		"ran      quick  0.0 s  (new)",
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("output:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
}

func TestTerminalReporter(t *testing.T) {
	var buf safeBuffer
	r := NewTerminalReporter(&buf, func() int { return 100 }, false)
	p := r.Started("spectrum[epoch=3,layer=full]")
	p.Start("lanczos", 80)
	p.Advance(20)
	time.Sleep(3 * terminalRefresh)
	r.Done(Result{ID: "spectrum[epoch=3,layer=full]", Outcome: Ran, Duration: time.Second})
	r.Close()
	out := buf.String()
	if !strings.Contains(out, "lanczos [#####...............]  25% 20/80") {
		t.Errorf("no status line with a bar in %q", out)
	}
	if !strings.Contains(out, "ran      spectrum[epoch=3,layer=full]  1.0 s\n") || !strings.Contains(out, "\x1b[1A\x1b[2K") {
		t.Errorf("no outcome line or no redraw in %q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if len([]rune(strings.TrimLeft(line, "\x1b[1A2K\r"))) >= 100 {
			t.Errorf("line wider than the terminal: %q", line)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBadOutputsFail(t *testing.T) {
	f := newFixture(t)
	f.reg.Register(&stage.Kind{Name: "linker", Version: 1, Run: func(ctx context.Context, e *stage.Env) error {
		e.Logf("making a link")
		return os.Symlink("/etc/passwd", filepath.Join(e.OutDir, "link"))
	}})
	f.reg.Register(&stage.Kind{Name: "logger", Version: 1, Run: func(ctx context.Context, e *stage.Env) error {
		return os.WriteFile(filepath.Join(e.OutDir, artifacts.LogName), []byte("mine"), 0o666)
	}})
	sum := f.run("stages:\n  l: {kind: linker}\n  g: {kind: logger}\n", func(o *Options) { o.KeepGoing = true })
	l, g := resultOf(t, sum, "l"), resultOf(t, sum, "g")
	if l.Outcome != Failed || !strings.Contains(l.Err.Error(), "link is a symlink, not a regular file") {
		t.Errorf("symlink output: %+v", l)
	}
	if data, err := os.ReadFile(l.LogFile); err != nil || !strings.Contains(string(data), "making a link") {
		t.Errorf("log of a stage whose output was refused: %v", err)
	}
	if g.Outcome != Failed || !strings.Contains(g.Err.Error(), "reserved for the runner's log") {
		t.Errorf("log.txt output: %+v", g)
	}
	assertNoTemp(t, f.store)
}

// TestScratchSurvivesFailureUntilStored checks the contract of
// stage.Env.Scratch: the same directory comes back to a rerun of the same
// key after a failure, it is removed once the artifact is stored, and a
// recheck gets none (it must recompute from nothing).
func TestScratchSurvivesFailureUntilStored(t *testing.T) {
	f := newFixture(t)
	var seen []string
	resumable := &stage.Kind{Name: "resumable", Version: 1, Run: func(ctx context.Context, e *stage.Env) error {
		seen = append(seen, e.Scratch)
		if e.Scratch == "" {
			return os.WriteFile(filepath.Join(e.OutDir, "out.txt"), []byte("done"), 0o644)
		}
		marker := filepath.Join(e.Scratch, "half.txt")
		if _, err := os.Stat(marker); err != nil {
			if err := os.WriteFile(marker, []byte("epoch 1"), 0o644); err != nil {
				return err
			}
			return errors.New("crash after epoch 1")
		}
		return os.WriteFile(filepath.Join(e.OutDir, "out.txt"), []byte("done"), 0o644)
	}}
	f.reg.Register(resumable)
	src := "stages:\n  r: {kind: resumable}\n"
	if s := f.run(src, nil); s.Failed != 1 {
		t.Fatalf("first run: %s", s)
	}
	if s := f.run(src, nil); s.Ran != 1 {
		t.Fatalf("second run: %s", s)
	}
	if len(seen) != 2 || seen[0] == "" || seen[0] != seen[1] {
		t.Fatalf("scratch dirs of the two runs: %q, want one and the same", seen)
	}
	if _, err := os.Stat(seen[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch dir still there after the artifact was stored: %v", err)
	}
	if s := f.run(src, func(o *Options) { o.Recheck = []string{"r"} }); s.Ran != 1 || seen[2] != "" {
		t.Errorf("recheck: %s, scratch %q (want none)", s, seen[2])
	}
}

// TestRunDirNotDigested: what a stage writes into run/ (wall times) and the
// runner's run.json are kept in the artifact but change no digest, so a
// recomputed stage reproduces its digest and a recheck needs no list of
// volatile files; any other difference still fails the recheck.
func TestRunDirNotDigested(t *testing.T) {
	f := newFixture(t)
	stable := 1
	wallTimes := &stage.Kind{Name: "walltimes", Version: 1,
		Run: func(ctx context.Context, e *stage.Env) error {
			r := fmt.Sprint(time.Now().UnixNano())
			e.SetRunInfo("note", r)
			if err := os.WriteFile(filepath.Join(e.RunDir, "timings.csv"), []byte("seconds\n"+r+"\n"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(e.OutDir, "summary.json"), []byte(fmt.Sprintf(`{"loss": %d}`, stable)), 0o644)
		}}
	f.reg.Register(wallTimes)
	src := "stages:\n  w: {kind: walltimes}\n"
	first := resultOf(t, f.run(src, nil), "w")
	if info := runInfo(t, first.Dir); info["stage"] != "w" || info["kind"] != "walltimes" || info["key"] != string(first.Key) || info["executor"] != "local" || info["note"] == nil {
		t.Errorf("run.json: %v", info)
	}
	forced := resultOf(t, f.run(src, func(o *Options) { o.Force = []string{"w"} }), "w")
	if forced.Outcome != Ran || forced.Digest != first.Digest {
		t.Errorf("recomputed: %v %s, want digest %s", forced.Outcome, forced.Digest.Short(), first.Digest.Short())
	}
	if s := f.run(src, func(o *Options) { o.Recheck = []string{"w"} }); s.Failed != 0 {
		t.Fatalf("recheck with only run/ differences failed: %v", resultOf(t, s, "w").Err)
	}
	stable = 2
	s := f.run(src, func(o *Options) { o.Recheck = []string{"w"} })
	if r := resultOf(t, s, "w"); r.Outcome != Failed || !strings.Contains(r.Err.Error(), "summary.json: ") || strings.Contains(r.Err.Error(), "timings.csv") {
		t.Errorf("recheck with a changed result: %v", r.Err)
	}
}

// damage rewrites file rel of the artifact in dir as root or a user with
// write access could, through the results/ view.
func damage(t *testing.T, dir, rel string, how func(p string) error) {
	t.Helper()
	p := filepath.Join(dir, rel)
	os.Chmod(filepath.Dir(p), 0o755)
	os.Chmod(p, 0o644)
	if err := how(p); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedHitRecomputed: a cached artifact edited, truncated or deleted
// after it was stored is not served: the stage is recomputed with the reason
// said, the damaged object is replaced, and what depends on it, given the
// same digest back, stays cached.
func TestDamagedHitRecomputed(t *testing.T) {
	src := "stages:\n  a: {kind: gen, with: {value: 2, size: 5000}}\n  b: {kind: gen, needs: {base: a}}\n"
	for _, c := range []struct {
		name, file, reason string
		how                func(p string) error
	}{
		{"same size", "payload.bin", "payload.bin: content differs", func(p string) error {
			data, _ := os.ReadFile(p)
			data[100] ^= 0xff
			return os.WriteFile(p, data, 0o644)
		}},
		{"truncated", "payload.bin", "payload.bin: size 10, want 5000", func(p string) error { return os.Truncate(p, 10) }},
		{"deleted", "result.json", "result.json: missing", os.Remove},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			first := f.run(src, nil)
			a := resultOf(t, first, "a")
			damage(t, a.Dir, c.file, c.how)
			// Mark the change: same-size rewrites within the clock's
			// resolution still get a new modification time on Linux, but
			// make it certain.
			old := time.Now().Add(-time.Hour)
			os.Chtimes(filepath.Join(a.Dir, c.file), old, old)
			entries, err := Plan([]*pipelines.Pipeline{f.parse("spec.yaml", src)}, f.opts())
			if err != nil {
				t.Fatal(err)
			}
			if entries[0].Cached || !strings.Contains(strings.Join(entries[0].Reasons, " "), "its cached result is damaged ("+c.reason) {
				t.Errorf("plan of a damaged artifact: %+v", entries[0])
			}
			again := f.run(src, nil)
			ra := resultOf(t, again, "a")
			if ra.Outcome != Ran || ra.Digest != a.Digest || !strings.Contains(strings.Join(ra.Reasons, " "), c.reason) {
				t.Errorf("damaged a: %v %s %v", ra.Outcome, ra.Digest.Short(), ra.Reasons)
			}
			if rb := resultOf(t, again, "b"); rb.Outcome != Cached {
				t.Errorf("b: %v (its input came back with the same digest)", rb.Outcome)
			}
			rep, err := f.store.Verify(nil)
			if err != nil || len(rep.Problems) != 0 {
				t.Errorf("verify after the repair: %+v %v", rep.Problems, err)
			}
		})
	}
}

// TestForceReplacesDamagedObject: --force on a stage whose stored object is
// damaged in a way the cheap check cannot see (same size, same time) puts
// an intact copy in its place instead of keeping the damaged one.
func TestForceReplacesDamagedObject(t *testing.T) {
	f := newFixture(t)
	src := "stages:\n  a: {kind: gen, with: {value: 2, size: 5000}}\n"
	a := resultOf(t, f.run(src, nil), "a")
	p := filepath.Join(a.Dir, "payload.bin")
	info, _ := os.Stat(p)
	damage(t, a.Dir, "payload.bin", func(p string) error {
		data, _ := os.ReadFile(p)
		data[0] ^= 1
		return os.WriteFile(p, data, 0o644)
	})
	os.Chtimes(p, info.ModTime(), info.ModTime()) // invisible to CheckObject
	if rep, _ := f.store.Verify(nil); len(rep.Problems) != 1 {
		t.Fatalf("verify sees %d problems, want 1", len(rep.Problems))
	}
	forced := resultOf(t, f.run(src, func(o *Options) { o.Force = []string{"a"} }), "a")
	if forced.Digest != a.Digest {
		t.Fatalf("forced digest %s, want %s", forced.Digest.Short(), a.Digest.Short())
	}
	if rep, _ := f.store.Verify(nil); len(rep.Problems) != 0 {
		t.Errorf("after --force: %+v", rep.Problems)
	}
	if q, _ := os.ReadDir(filepath.Join(f.store.Dir(), "quarantine")); len(q) == 0 {
		t.Error("the damaged copy was not set aside in quarantine/")
	}
}

// TestPathChangedDuringRunNotStored: a file named by a Path param that
// changes while the stage reads it makes the stage fail; nothing is stored
// under a key that describes other content.
func TestPathChangedDuringRunNotStored(t *testing.T) {
	f := newFixture(t)
	src := filepath.Join(f.dir, "in.txt")
	os.WriteFile(src, []byte("before"), 0o666)
	marks := t.TempDir()
	t.Setenv("FAKEKINDS_MARK", marks)
	spec := "stages:\n  g: {kind: gen, with: {src: in.txt, sleep_ms: 3000}}\n"
	go func() {
		for {
			if es, _ := os.ReadDir(marks); len(es) > 0 {
				os.WriteFile(src, []byte("after!"), 0o666)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	sum := f.run(spec, nil)
	r := resultOf(t, sum, "g")
	if r.Outcome != Failed || !strings.Contains(r.Err.Error(), "param src: content changed while the stage ran") {
		t.Fatalf("changed path: %v %v", r.Outcome, r.Err)
	}
	if _, ok, _ := f.store.Get(r.Key); ok {
		t.Error("the result was stored")
	}
}

// TestLightStagesFirst: with one worker, a light stage that becomes ready
// starts before the heavy stages queued ahead of it.
func TestLightStagesFirst(t *testing.T) {
	f := newFixture(t)
	light := *fakekinds.Sum
	light.Light = true
	f.reg["sum"] = &light
	trace := filepath.Join(t.TempDir(), "trace")
	t.Setenv("FAKEKINDS_TRACE", trace)
	f.run(`
name: light
stages:
  a: {kind: gen}
  heavy:
    kind: gen
    matrix: {i: [1, 2, 3]}
    needs: {base: a}
    with: {value: "${i}"}
  table: {kind: sum, needs: {in: a}}
  late: {kind: sum, needs: {in: "heavy[*]"}}
`, func(o *Options) { o.Jobs = 1 })
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(b))
	want := []string{"a", "table", "heavy[i=1]", "heavy[i=2]", "heavy[i=3]", "late"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("start order %v, want %v", got, want)
	}
}
