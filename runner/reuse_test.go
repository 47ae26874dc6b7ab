package runner

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
)

// runInfo reads an artifact's run/run.json.
func runInfo(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, artifacts.RunDirName, RunInfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReuse: Plan and Run offer a stage the cached artifact of its reuse
// group with the least work left, Exec does too, and a forced stage starts
// from nothing; the digests are those of runs from nothing.
func TestReuse(t *testing.T) {
	f := newFixture(t)
	spec := func(n int) string {
		return strings.ReplaceAll("stages:\n  c: {kind: chunks, with: {n: N, value: 2}}\n", "N", string(rune('0'+n)))
	}
	fresh := map[int]artifacts.Digest{}
	for _, n := range []int{2, 5, 7} {
		g := newFixture(t)
		fresh[n] = resultOf(t, g.run(spec(n), nil), "c").Digest
	}
	for _, n := range []int{2, 7} {
		f.run(spec(n), nil)
	}
	// 5: both cached runs serve; the longer one costs nothing.
	plan, err := Plan([]*pipelines.Pipeline{f.parse("spec.yaml", spec(5))}, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if plan[0].Reuse != "derived from cached run of 7 chunks" || plan[0].Reasons[len(plan[0].Reasons)-1] != plan[0].Reuse {
		t.Errorf("plan: %+v", plan[0])
	}
	r := resultOf(t, f.run(spec(5), nil), "c")
	if r.Digest != fresh[5] || runInfo(t, r.Dir)["chunks_computed"] != 0.0 {
		t.Errorf("derived: digest %s (from nothing %s), run info %v", r.Digest.Short(), fresh[5].Short(), runInfo(t, r.Dir))
	}
	// Exec of a described key that is not stored (its artifact removed)
	// starts from a cached one too.
	if err := os.Remove(f.store.ObjectDir(r.Digest) + ".manifest"); err != nil {
		t.Fatal(err)
	}
	artifacts.RemoveTree(f.store.ObjectDir(r.Digest))
	os.Remove(filepath.Join(f.store.Dir(), "keys", string(r.Key[:2]), string(r.Key)+".json"))
	rec, ran, err := Exec(context.Background(), f.store, f.reg, r.Key, ExecOptions{})
	if err != nil || !ran || rec.Digest != fresh[5] {
		t.Fatalf("Exec: %+v, %v, %v", rec, ran, err)
	}
	if info := runInfo(t, f.store.ObjectDir(rec.Digest)); info["prior"] == nil || info["chunks_computed"] != 0.0 {
		t.Errorf("Exec did not start from a cached run: %v", info)
	}
	// Forced: from nothing.
	sum := f.run(spec(5), func(o *Options) { o.Force = []string{"c"} })
	if r := resultOf(t, sum, "c"); len(r.Reasons) != 1 || r.Reasons[0] != "forced" {
		t.Errorf("forced reasons %v", r.Reasons)
	}
}
