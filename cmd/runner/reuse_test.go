package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const reuseSpec = `
name: r
vars: {n: 4}
stages:
  c: {kind: chunks, with: {n: "${n}", value: 3, sleep_ms: 150}}
  s: {kind: sum, needs: {in: c}}
`

// chunkCounts reads what the chunks stage of spec r recorded in its
// run/run.json: chunks reused from a cached artifact and computed.
func (w *workdir) chunkCounts() (reused, computed int, prior map[string]any) {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "results/r/c/run/run.json"))
	if err != nil {
		w.t.Fatal(err)
	}
	var info struct {
		Reused   int            `json:"chunks_reused"`
		Computed int            `json:"chunks_computed"`
		Prior    map[string]any `json:"prior"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		w.t.Fatal(err)
	}
	return info.Reused, info.Computed, info.Prior
}

// TestReuseExtendsAndDerives: a stage whose only change is its reuse param
// starts from the cached artifact found through the reuse index — plan
// says so — and stores the digest a run from nothing stores, also when the
// extension is killed half way and run again; a smaller value is derived
// without computing anything.
func TestReuseExtendsAndDerives(t *testing.T) {
	clean := newWorkdir(t)
	clean.env = []string{"FAKEKINDS_FAST=1"}
	clean.write("r.yaml", reuseSpec)
	want := map[string]map[string]string{}
	for _, n := range []string{"8", "2"} {
		if out, errOut, code := clean.runner("run", "r.yaml", "--set", "n="+n); code != 0 {
			t.Fatalf("clean run n=%s: %s%s", n, out, errOut)
		}
		want[n] = clean.digests("r.yaml", "--set", "n="+n)
	}

	w := newWorkdir(t)
	marks := filepath.Join(w.dir, "marks")
	os.Mkdir(marks, 0o777)
	w.write("r.yaml", reuseSpec)
	w.env = []string{"FAKEKINDS_FAST=1"}
	if out, errOut, code := w.runner("run", "r.yaml"); code != 0 {
		t.Fatalf("first run: %s%s", out, errOut)
	}
	groups, _ := filepath.Glob(filepath.Join(w.dir, ".runner/index/reuse/*/*.json"))
	if len(groups) != 1 {
		t.Fatalf("reuse index files %v, want the chunks stage's group", groups)
	}
	out, _, _ := w.runner("plan", "r.yaml", "--set", "n=8")
	if !strings.Contains(out, "param n 4 → 8; extends cached run of 4 chunks by 4") {
		t.Errorf("plan does not say the stage extends the cached one:\n%s", out)
	}

	// Kill the extension after its first new chunk, then run it again.
	w.env = []string{"FAKEKINDS_MARK=" + marks}
	cmd := w.command("run", "r.yaml", "--set", "n=8")
	var killed bytes.Buffer
	cmd.Stdout, cmd.Stderr = &killed, &killed
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForMark(t, marks, 2) // the second new chunk is sleeping: the first is in the scratch dir
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	w.env = []string{"FAKEKINDS_FAST=1"}
	out, errOut, code := w.runner("run", "r.yaml", "--set", "n=8")
	if code != 0 || !strings.Contains(out, "extends cached run of 4 chunks by 4") {
		t.Fatalf("run after the kill: %d\n%s%s", code, out, errOut)
	}
	if got := w.digests("r.yaml", "--set", "n=8"); got["c"] != want["8"]["c"] || got["s"] != want["8"]["s"] || got["c"] == "" {
		t.Errorf("extended after a kill: digests %v, from nothing %v", got, want["8"])
	}
	reused, computed, prior := w.chunkCounts()
	if reused != 4 || computed > 3 || prior["how"] != "extends cached run of 4 chunks by 4" {
		t.Errorf("extension reused %d chunks and computed %d after the kill (want 4 and at most 3); prior %v", reused, computed, prior)
	}

	// Smaller: derived from a cached run, nothing computed.
	out, errOut, code = w.runner("run", "r.yaml", "--set", "n=2")
	if code != 0 || !strings.Contains(out, "derived from cached run of") {
		t.Fatalf("n=2: %d\n%s%s", code, out, errOut)
	}
	if got := w.digests("r.yaml", "--set", "n=2"); got["c"] != want["2"]["c"] || got["c"] == "" {
		t.Errorf("derived: digest %s, from nothing %s", got["c"], want["2"]["c"])
	}
	if reused, computed, _ := w.chunkCounts(); reused != 2 || computed != 0 {
		t.Errorf("derived: reused %d, computed %d; want 2 and 0", reused, computed)
	}
	// --force computes from nothing.
	if out, _, _ := w.runner("run", "r.yaml", "--set", "n=2", "--force", "c"); !strings.Contains(out, "(forced)") || strings.Contains(out, "cached run") {
		t.Errorf("forced run:\n%s", out)
	}
	// gc drops the index entries of removed records.
	if _, errOut, code := w.runner("gc", "--keep", "r.yaml", "--set", "n=2"); code != 0 {
		t.Fatalf("gc: %s", errOut)
	}
	b, _ := os.ReadFile(groups[0])
	if strings.Count(string(b), `"key"`) != 1 {
		t.Errorf("reuse index after gc: %s", b)
	}
}
