package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/internal/fakekinds"
)

// workdir is a repo-like directory with specs and a cache, in which tests
// start runner processes.
type workdir struct {
	t   *testing.T
	dir string
	env []string
}

func newWorkdir(t *testing.T) *workdir {
	t.Helper()
	return &workdir{t: t, dir: t.TempDir()}
}

func (w *workdir) write(name, content string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// command prepares a runner process (this test binary acting as runner).
func (w *workdir) command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = w.dir
	cmd.Env = append(append(os.Environ(), asRunnerEnv+"=1", "RUNNER_CACHE=", "GOMLX_BACKEND="), w.env...)
	return cmd
}

// runner runs a runner process to completion.
func (w *workdir) runner(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	cmd := w.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

var summaryRE = regexp.MustCompile(`^(\d+) stages: (\d+) ran, (\d+) cached, (\d+) failed \(\d+\.\d s\)$`)

// summary parses the last line of run's output.
func summary(t *testing.T, stdout string) (n, ran, cached, failed int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	m := summaryRE.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q is not a summary; output:\n%s", lines[len(lines)-1], stdout)
	}
	atoi := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return atoi(m[1]), atoi(m[2]), atoi(m[3]), atoi(m[4])
}

const cliSpec = `
name: demo
vars: {lr: 0.01}
stages:
  data: {kind: gen, with: {value: 2, size: 3000}}
  train:
    kind: gen
    needs: {base: data}
    with: {value: "${lr}", n: 10}
  snap:
    kind: gen
    matrix: {epoch: {range: [1, 3]}}
    needs: {base: train}
    with: {n: "${epoch}"}
  grid: {kind: sum, needs: {in: "snap[*]"}}
`

func TestRunPlanShow(t *testing.T) {
	w := newWorkdir(t)
	w.write("specs/demo.yaml", cliSpec)
	out, errOut, code := w.runner("run", "specs/demo.yaml", "-j", "2")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if n, ran, cached, failed := summary(t, out); n != 6 || ran != 6 || cached != 0 || failed != 0 {
		t.Errorf("first run summary: %d %d %d %d", n, ran, cached, failed)
	}
	// data = 2; train = 0.01×10 + 2 = 2.1; snap[e] = e + 2.1; grid = 6 + 6.3.
	r, err := fakekinds.ReadResult(filepath.Join(w.dir, "results/demo/grid"))
	if err != nil || fmt.Sprintf("%.6f", r.Value) != "12.300000" {
		t.Errorf("grid via results view: %+v, %v", r, err)
	}
	out, _, code = w.runner("run", "specs/demo.yaml")
	if _, ran, cached, _ := summary(t, out); code != 0 || ran != 0 || cached != 6 {
		t.Errorf("no-op rerun:\n%s", out)
	}

	out, _, code = w.runner("plan", "specs/demo.yaml", "--set", "lr=0.005")
	if code != 0 {
		t.Fatalf("plan exit %d", code)
	}
	for _, want := range []string{
		"ACTION  STAGE          KIND  KEY           WHY\n",
		"cached  data           gen   ",
		"param value 0.01 → 0.005\n",
		"run     snap[epoch=2]  gen   -             input base is recomputed first\n",
		"6 stages: 1 cached, 5 to run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = w.runner("plan", "--json", "specs/demo.yaml")
	var entries []map[string]any
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 6 {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if entries[0]["id"] != "data" || entries[0]["action"] != "cached" || len(entries[0]["key"].(string)) != 64 {
		t.Errorf("plan --json entry %v", entries[0])
	}
	out, _, code = w.runner("plan", "specs/demo.yaml", "--explain", "train")
	if code != 0 || !strings.Contains(out, `"kind":"gen"`) || !strings.Contains(out, `"value":0.01`) || !strings.Contains(out, `"inputs":{"base":["`) {
		t.Errorf("plan --explain:\n%s", out)
	}

	out, _, _ = w.runner("show", "specs/demo.yaml")
	if !strings.Contains(out, "snap[epoch=3]  "+filepath.Join(w.dir, ".runner", "objects")) {
		t.Errorf("show:\n%s", out)
	}
	out, _, _ = w.runner("show", "specs/demo.yaml", "data")
	if !strings.Contains(out, "3000  payload.bin") || !strings.Contains(out, "3 files, 3020 bytes") {
		t.Errorf("show data:\n%s", out)
	}
	out, _, _ = w.runner("show", "specs/demo.yaml", "--set", "lr=0.5")
	if !strings.Contains(out, "train          (not computed)") {
		t.Errorf("show with a changed var:\n%s", out)
	}
}

func TestDagFormats(t *testing.T) {
	w := newWorkdir(t)
	w.write("demo.yaml", cliSpec)
	out, _, code := w.runner("dag", "demo.yaml")
	if code != 0 || !strings.HasPrefix(out, "flowchart LR\n") || !strings.Contains(out, `n1["train"]`) || !strings.Contains(out, "n0 -->|base| n1") {
		t.Errorf("mermaid:\n%s", out)
	}
	out, _, _ = w.runner("dag", "demo.yaml", "--format", "dot", "--stages")
	for _, want := range []string{`digraph "demo" {`, `"snap" [label="snap ×3"];`, `"snap" -> "grid" [label="in"];`} {
		if !strings.Contains(out, want) {
			t.Errorf("dot lacks %q:\n%s", want, out)
		}
	}
}

func TestSpecErrorsAndUsage(t *testing.T) {
	w := newWorkdir(t)
	w.write("bad.yaml", "stages:\n  a: {kind: gen, wiht: {n: 1}}\n  b: {kind: gne}\n")
	_, errOut, code := w.runner("run", "bad.yaml")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	want := "bad.yaml:2:18: stage a: unknown key \"wiht\" (did you mean \"with\"?); a stage has \"kind\", \"doc\", \"matrix\", \"needs\" and \"with\"\n" +
		"bad.yaml:3:13: unknown stage kind \"gne\" (did you mean \"gen\"?); known kinds: chunks, gen, job, nondet, sum, table\n"
	if errOut != want {
		t.Errorf("stderr\n%s\nwant\n%s", errOut, want)
	}
	if _, errOut, code := w.runner("frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %s", code, errOut)
	}
	if _, errOut, code := w.runner("plna"); !strings.Contains(errOut, `did you mean "plan"?`) || code != exitUsage {
		t.Errorf("typo: %s", errOut)
	}
	out, errOut, code := w.runner("help")
	if code != 0 || !strings.Contains(out, "exec-stage") || !strings.Contains(out, "$RUNNER_CACHE") {
		t.Errorf("help:\n%s", out)
	}
	out, errOut, code = w.runner("run", "-h")
	if code != 0 || !strings.Contains(out, "usage: runner run SPEC...") || !strings.Contains(out, "-keep-going") || errOut != "" {
		t.Errorf("run -h: stdout\n%s\nstderr\n%s", out, errOut)
	}
	if _, errOut, code := w.runner("run", "--bogus", "bad.yaml"); code != exitUsage || errOut != "flag provided but not defined: -bogus\nrun \"runner run -h\" for usage\n" {
		t.Errorf("unknown flag: %d %q", code, errOut)
	}
	out, _, _ = w.runner("kinds")
	if !strings.Contains(out, "gen (v1): Writes value×n") || !regexp.MustCompile(`\n  opts.per_class +integer +10 +\[≥ 1\]\n`).MatchString(out) ||
		!strings.Contains(out, "input in (many, optional): values to add") {
		t.Errorf("kinds:\n%s", out)
	}
	if _, errOut, code := w.runner("run", "bad.yaml", "--set", "nope"); code != exitUsage || !strings.Contains(errOut, "want name=value") {
		t.Errorf("bad --set: %d %s", code, errOut)
	}
}

func TestFailureOutput(t *testing.T) {
	w := newWorkdir(t)
	w.write("f.yaml", "stages:\n  bad: {kind: gen, with: {fail: true}}\n  good: {kind: gen}\n  after: {kind: gen, needs: {base: bad}}\n")
	out, _, code := w.runner("run", "f.yaml", "--keep-going", "-j", "1")
	if code != exitFailed {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"FAILED   bad: gen: asked to fail", "  | log line 30", "  full log: ", "skipped  after: input bad failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n, ran, cached, failed := summary(t, out); n != 3 || ran != 1 || cached != 0 || failed != 2 {
		t.Errorf("summary %d %d %d %d", n, ran, cached, failed)
	}
}

func TestGCStatusVerifyExec(t *testing.T) {
	w := newWorkdir(t)
	w.write("a.yaml", "stages:\n  x: {kind: gen, with: {value: 1}}\n  y: {kind: gen, needs: {base: x}}\n")
	w.write("b.yaml", "stages:\n  z: {kind: gen, with: {value: 9}}\n")
	for _, spec := range []string{"a.yaml", "b.yaml"} {
		if out, errOut, code := w.runner("run", spec); code != 0 {
			t.Fatalf("run %s: %s%s", spec, out, errOut)
		}
	}
	out, _, _ := w.runner("status")
	if !strings.Contains(out, "records:      3") || !strings.Contains(out, "locks held:   0 of 3") || !strings.Contains(out, "runs active:  no") {
		t.Errorf("status:\n%s", out)
	}

	if _, errOut, code := w.runner("gc"); code != exitUsage || !strings.Contains(errOut, "refusing to run without a scope") {
		t.Errorf("gc without scope: %d %s", code, errOut)
	}
	out, _, code := w.runner("gc", "--keep", "a.yaml", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "would remove 1 records and 1 artifacts") {
		t.Errorf("gc dry run: %s", out)
	}
	out, _, code = w.runner("gc", "--keep", "a.yaml")
	if code != 0 || !strings.HasPrefix(out, "removed 1 records and 1 artifacts") {
		t.Errorf("gc: %s", out)
	}
	out, _, _ = w.runner("run", "a.yaml")
	if _, _, cached, _ := summary(t, out); cached != 2 {
		t.Errorf("kept spec not cached after gc:\n%s", out)
	}
	out, _, _ = w.runner("run", "b.yaml")
	if _, ran, _, _ := summary(t, out); ran != 1 {
		t.Errorf("collected spec not recomputed:\n%s", out)
	}

	// Corrupt x's result: verify reports it, quarantines it, exits 1; the
	// next run recomputes x (and y stays cached: same digest again).
	target, _ := filepath.EvalSymlinks(filepath.Join(w.dir, "results/a/x/result.json"))
	os.Chmod(target, 0o644)
	os.WriteFile(target, []byte(`{"value": 666}`), 0o644)
	out, _, code = w.runner("verify")
	if code != exitFailed || !strings.Contains(out, "result.json: ") || !strings.Contains(out, "quarantined") {
		t.Errorf("verify: %d\n%s", code, out)
	}
	out, _, code = w.runner("verify")
	if code != 0 || !strings.Contains(out, ": 0 problems") {
		t.Errorf("verify after quarantine: %d\n%s", code, out)
	}
	out, _, _ = w.runner("run", "a.yaml", "-v")
	if _, ran, cached, _ := summary(t, out); ran != 1 || cached != 1 || !strings.Contains(out, "ran      x") {
		t.Errorf("rerun after quarantine:\n%s", out)
	}

	// exec-stage runs a key from the cache alone.
	planOut, _, _ := w.runner("plan", "--json", "a.yaml")
	var entries []struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	json.Unmarshal([]byte(planOut), &entries)
	out, errOut, code := w.runner("exec-stage", "--force", "--cache", ".runner", entries[1].Key)
	if code != 0 || !strings.HasPrefix(out, "ran "+entries[1].Key+" ") {
		t.Errorf("exec-stage: %d %s %s", code, out, errOut)
	}
	out, _, code = w.runner("exec-stage", entries[1].Key)
	if code != 0 || !strings.HasPrefix(out, "cached ") {
		t.Errorf("exec-stage of a cached key: %d %s", code, out)
	}
	if _, errOut, code := w.runner("exec-stage", strings.Repeat("ab", 32)); code != exitFailed || !strings.Contains(errOut, "no description of key") {
		t.Errorf("exec-stage of an unknown key: %d %s", code, errOut)
	}
}

// TestTwoProcesses starts two runners on one cache at once, each with -j 4:
// both succeed and no stage runs twice.
func TestTwoProcesses(t *testing.T) {
	w := newWorkdir(t)
	trace := filepath.Join(w.dir, "trace.txt")
	w.env = []string{"FAKEKINDS_TRACE=" + trace}
	w.write("p.yaml", `
stages:
  base: {kind: gen, with: {sleep_ms: 50}}
  s:
    kind: gen
    matrix: {i: {range: [1, 16]}}
    needs: {base: base}
    with: {value: "${i}", sleep_ms: 60}
  total: {kind: sum, needs: {in: "s[*]"}}
`)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < 2; i++ {
		cmd := w.command("run", "p.yaml", "-j", "4")
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &b)
	}
	totalRan := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i])
		}
		n, ran, cached, failed := summary(t, outs[i].String())
		if n != 18 || ran+cached != 18 || failed != 0 {
			t.Errorf("process %d: %s", i, outs[i])
		}
		totalRan += ran
	}
	counts, err := fakekinds.Traced(trace)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 18 {
		t.Errorf("%d distinct stages ran, want 18", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s ran %d times", id, n)
		}
	}
	if totalRan != 18 {
		t.Errorf("the two runs report %d ran in total, want 18", totalRan)
	}
}

// TestKillMidStage kills a runner with SIGKILL while a stage is half way
// through writing its output, then reruns: it completes, and verify finds
// nothing corrupt.
func TestKillMidStage(t *testing.T) {
	w := newWorkdir(t)
	marks := filepath.Join(w.dir, "marks")
	os.Mkdir(marks, 0o777)
	w.env = []string{"FAKEKINDS_MARK=" + marks}
	w.write("k.yaml", `
stages:
  a: {kind: gen, with: {size: 100000}}
  b: {kind: gen, needs: {base: a}, with: {size: 5000, sleep_ms: 60000}}
  c: {kind: gen, needs: {base: b}}
`)
	cmd := w.command("run", "k.yaml")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForMark(t, marks, 1)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// b's half-written output is left under tmp/, and no record trusts it.
	tmp, _ := os.ReadDir(filepath.Join(w.dir, ".runner/tmp"))
	if len(tmp) != 1 {
		t.Errorf("tmp/ after the kill holds %d entries, want b's", len(tmp))
	}
	statusOut, _, _ := w.runner("status")
	if !strings.Contains(statusOut, "records:      1") || !strings.Contains(statusOut, "locks held:   0") {
		t.Errorf("status after kill:\n%s", statusOut)
	}
	w.env = append(w.env, "FAKEKINDS_FAST=1")
	rerun, errOut, code := w.runner("run", "k.yaml")
	if code != 0 {
		t.Fatalf("rerun: %d\n%s%s", code, rerun, errOut)
	}
	if n, ran, cached, failed := summary(t, rerun); n != 3 || ran != 2 || cached != 1 || failed != 0 {
		t.Errorf("rerun summary:\n%s", rerun)
	}
	tmp, _ = os.ReadDir(filepath.Join(w.dir, ".runner/tmp"))
	if len(tmp) != 0 {
		t.Errorf("tmp/ after the rerun holds %d entries", len(tmp))
	}
	verifyOut, _, code := w.runner("verify")
	if code != 0 || !strings.Contains(verifyOut, "verified 3 artifacts") || !strings.Contains(verifyOut, ": 0 problems") {
		t.Errorf("verify: %d\n%s", code, verifyOut)
	}
}

// TestInterrupt sends SIGINT during a stage: the runner cancels it, removes
// its temp dir, prints the summary last and exits 130.
func TestInterrupt(t *testing.T) {
	w := newWorkdir(t)
	marks := filepath.Join(w.dir, "marks")
	os.Mkdir(marks, 0o777)
	w.env = []string{"FAKEKINDS_MARK=" + marks}
	w.write("i.yaml", "stages:\n  slow: {kind: gen, with: {sleep_ms: 60000}}\n  quick: {kind: gen}\n")
	cmd := w.command("run", "i.yaml", "-j", "2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForMark(t, marks, 1)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit: %v\n%s", err, out.String())
	}
	if time.Since(start) > 10*time.Second {
		t.Error("cancellation took too long")
	}
	if !strings.Contains(out.String(), "interrupted: finished stages are cached") {
		t.Errorf("output:\n%s", out.String())
	}
	if n, _, _, failed := summary(t, out.String()); n != 2 || failed != 1 {
		t.Errorf("summary:\n%s", out.String())
	}
	if tmp, _ := os.ReadDir(filepath.Join(w.dir, ".runner/tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d entries after Ctrl-C", len(tmp))
	}
}

func waitForMark(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if entries, _ := os.ReadDir(dir); len(entries) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the stage never started")
}

// campaignSpec mixes kinds that write wall times into run/ (gen, chunks), a
// resumable stage (chunks keeps each finished chunk in its scratch dir), a
// matrix and a fan-in, with sleeps so that kills land inside stages.
const campaignSpec = `
stages:
  a: {kind: gen, with: {size: 300000, sleep_ms: 100}}
  c: {kind: chunks, needs: {base: a}, with: {n: 12, sleep_ms: 60}}
  b:
    kind: gen
    matrix: {i: [1, 2, 3, 4]}
    needs: {base: a}
    with: {value: "${i}", size: 2000, sleep_ms: 250}
  s: {kind: sum, needs: {in: ["b[*]", c]}}
`

// digests returns the artifact digest of every stage of spec, as `runner
// show SPEC ARGS...` prints it (ARGS: --set name=value, say).
func (w *workdir) digests(spec string, args ...string) map[string]string {
	w.t.Helper()
	out, errOut, code := w.runner(append([]string{"show", spec}, args...)...)
	if code != 0 {
		w.t.Fatalf("show: %d %s", code, errOut)
	}
	d := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			d[f[0]] = filepath.Base(f[1])
		}
	}
	return d
}

// TestKillCampaign kills a runner with SIGKILL at several pseudo-random
// points (fixed seed), then lets it finish: every stage's digest equals
// that of an uninterrupted run in another directory, and verify finds the
// cache clean.
func TestKillCampaign(t *testing.T) {
	clean := newWorkdir(t)
	clean.write("c.yaml", campaignSpec)
	if out, errOut, code := clean.runner("run", "c.yaml", "-j", "2"); code != 0 {
		t.Fatalf("uninterrupted run: %d\n%s%s", code, out, errOut)
	}
	want := clean.digests("c.yaml")
	if len(want) != 7 {
		t.Fatalf("uninterrupted run has %d digests: %v", len(want), want)
	}

	w := newWorkdir(t)
	w.write("c.yaml", campaignSpec)
	rng := rand.New(rand.NewPCG(11, 12))
	const kills = 8
	var stored []string // records after each kill
	for i := 0; i < kills; i++ {
		cmd := w.command("run", "c.yaml", "-j", "2")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(450)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		recs, _ := filepath.Glob(filepath.Join(w.dir, ".runner/keys/*/*.json"))
		descs, _ := filepath.Glob(filepath.Join(w.dir, ".runner/keys/*/*.desc.json"))
		stored = append(stored, strconv.Itoa(len(recs)-len(descs)))
	}
	out, errOut, code := w.runner("run", "c.yaml", "-j", "2")
	if code != 0 {
		t.Fatalf("final run: %d\n%s%s", code, out, errOut)
	}
	got := w.digests("c.yaml")
	for id, d := range want {
		if got[id] != d {
			t.Errorf("%s: digest %.12s after %d kills, %.12s uninterrupted", id, got[id], kills, d)
		}
	}
	verifyOut, _, code := w.runner("verify")
	if code != 0 || !strings.Contains(verifyOut, ": 0 problems") {
		t.Errorf("verify: %d\n%s", code, verifyOut)
	}
	t.Logf("%d kills, stages stored after each: %s; final run: %s", kills, strings.Join(stored, " "), lastLine(out))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// nsRunner runs a runner process in a private mount namespace, after the
// shell commands setup (mounts seen by that process only). It needs root
// and unshare(1); the test is skipped without them.
func (w *workdir) nsRunner(setup string, args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	if os.Geteuid() != 0 {
		w.t.Skip("needs root for a private mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		w.t.Skip("needs unshare(1) (util-linux)")
	}
	if err := exec.Command(unshare, "-m", "--propagation", "private", "true").Run(); err != nil {
		w.t.Skipf("cannot make a mount namespace here: %v", err)
	}
	cmd := w.command()
	cmd.Path = unshare
	cmd.Args = append([]string{unshare, "-m", "--propagation", "private", "sh", "-c", "set -e; " + setup + "; exec \"$0\" \"$@\"", os.Args[0]}, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestReadOnlyCache: a cache on a read-only file system serves what it
// holds, and a stage that must run fails in one line saying why.
func TestReadOnlyCache(t *testing.T) {
	w := newWorkdir(t)
	w.write("r.yaml", "vars: {v: 1}\nstages:\n  a: {kind: gen, with: {value: \"${v}\"}}\n  b: {kind: gen, needs: {base: a}}\n")
	if out, errOut, code := w.runner("run", "r.yaml"); code != 0 {
		t.Fatalf("first run: %d %s%s", code, out, errOut)
	}
	ro := "mount --bind .runner .runner && mount -o remount,bind,ro .runner"
	out, errOut, code := w.nsRunner(ro, "run", "r.yaml")
	if n, _, cached, failed := summary(t, out); code != 0 || n != 2 || cached != 2 || failed != 0 {
		t.Errorf("cached run on a read-only cache: %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = w.nsRunner(ro, "run", "r.yaml", "--set", "v=2")
	if code == 0 || !strings.Contains(out, "FAILED   a: must run (param value 1 → 2), but cache ") || !strings.Contains(out, "is read-only") {
		t.Errorf("run needing a stage on a read-only cache: %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "panic") {
		t.Errorf("panic:\n%s%s", out, errOut)
	}
}

// TestDiskFull runs a stage whose output does not fit on the cache's file
// system (a 512 KiB tmpfs): it fails with the system's error, nothing is
// stored or left in tmp/, the other stage is stored, and verify is clean.
func TestDiskFull(t *testing.T) {
	w := newWorkdir(t)
	w.write("f.yaml", "stages:\n  big: {kind: gen, with: {size: 2000000}}\n  small: {kind: gen, with: {size: 1000}}\n")
	tmpfs := "mkdir -p cache && mount -t tmpfs -o size=512k tmpfs cache"
	out, errOut, code := w.nsRunner(tmpfs, "run", "f.yaml", "--cache", "cache", "--keep-going", "-j", "1")
	if code == 0 || !strings.Contains(out, "FAILED   big:") || !strings.Contains(out, "no space left on device") {
		t.Errorf("disk full: %d\n%s%s", code, out, errOut)
	}
	t.Logf("disk full:\n%s", out)
	if n, ran, _, failed := summary(t, out); n != 2 || ran != 1 || failed != 1 {
		t.Errorf("summary:\n%s", out)
	}
	if strings.Contains(out+errOut, "panic") {
		t.Errorf("panic:\n%s%s", out, errOut)
	}
	// The tmpfs lives as long as the namespace: check it from inside.
	check := "ls cache/tmp | wc -l; ls cache/keys/*/ | grep -v desc | grep -c '.json$' || true"
	out, errOut, code = w.nsRunner(tmpfs+"; ("+w.command().Args[0]+" run f.yaml --cache cache --keep-going -j 1 >/dev/null 2>&1 || true); "+check+"; true", "verify", "--cache", "cache")
	lines := strings.Fields(out)
	if code != 0 || len(lines) < 2 || lines[0] != "0" || lines[1] != "1" || !strings.Contains(out, ": 0 problems") {
		t.Errorf("after the failure: tmp entries, records, verify: %d\n%s%s", code, out, errOut)
	}
}
