package main

// Tests of `runner run --executor slurm` on a real one-node Slurm cluster,
// which scripts/slurm-local.sh installs and starts (.ci/run does). They
// skip when no cluster runs, except under CI=true, where that fails
// (testenv.RequireSlurm).
//
// The runner processes are this test binary acting as runner (asRunnerEnv);
// sbatch passes the environment on, so the jobs' exec-stage is this binary
// too, with the fake stage kinds. Each test has its own cache, so its jobs
// carry their own cache id and the tests run in parallel, except those that
// set the node down.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/internal/testenv"
)

// slurmWorkdir is a workdir whose runs use the local cluster, with a
// directory jobs mark when their stage starts sleeping.
func slurmWorkdir(t *testing.T) (*workdir, string) {
	testenv.RequireSlurm(t)
	w := newWorkdir(t)
	marks := filepath.Join(w.dir, "marks")
	if err := os.Mkdir(marks, 0o777); err != nil {
		t.Fatal(err)
	}
	w.env = []string{"FAKEKINDS_MARK=" + marks}
	return w, marks
}

// slurmArgs are the flags of every test run: short intervals.
var slurmArgs = []string{"--executor", "slurm", "--slurm-poll", "2s", "--slurm-latency-wait", "2s"}

func (w *workdir) slurmRun(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	return w.runner(append(append([]string{"run"}, args...), slurmArgs...)...)
}

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// background is a runner process started by start.
type background struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan error
}

func (w *workdir) start(args ...string) *background {
	w.t.Helper()
	b := &background{cmd: w.command(append(append([]string{"run"}, args...), slurmArgs...)...), done: make(chan error, 1)}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	w.t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

// wait waits for the process to exit and returns its exit code.
func (b *background) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err // for the cleanup
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			return -1
		}
		return 0
	case <-time.After(limit):
		t.Fatalf("the runner did not exit within %v; output:\n%s", limit, b.out.String())
	}
	return 0
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func marked(dir string) int {
	entries, _ := os.ReadDir(dir)
	return len(entries)
}

// jobPrefix is the prefix of the names of w's cache's jobs.
func (w *workdir) jobPrefix() string {
	w.t.Helper()
	id, err := os.ReadFile(filepath.Join(w.dir, ".runner/slurm/id"))
	if err != nil {
		w.t.Fatal(err)
	}
	return "runner-" + strings.TrimSpace(string(id)) + "-"
}

// finishedJobs counts the jobs of w's cache in jobcomp.log, by job name
// (one name per key) and JobState.
func (w *workdir) finishedJobs() (byName map[string]int, byState map[string]int) {
	w.t.Helper()
	// The runner may see a job's result before Slurm has ended the job.
	waitFor(w.t, 30*time.Second, "the cache's jobs ending", func() bool { return len(w.liveJobs()) == 0 })
	prefix := w.jobPrefix()
	f, err := os.Open(testenv.SlurmJobcomp)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	byName, byState = map[string]int{}, map[string]int{}
	nameRE := regexp.MustCompile(` Name=(\S+) JobState=(\S+) `)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := nameRE.FindStringSubmatch(sc.Text()); m != nil && strings.HasPrefix(m[1], prefix) {
			byName[m[1]]++
			byState[m[2]]++
		}
	}
	return byName, byState
}

// liveJobs lists the ids of w's cache's jobs that are queued or running.
func (w *workdir) liveJobs() []string {
	w.t.Helper()
	out, err := exec.Command("squeue", "-h", "-t", "pending,running,completing,configuring,suspended", "-o", "%i %j").Output()
	if err != nil {
		w.t.Fatalf("squeue: %v", err)
	}
	prefix := w.jobPrefix()
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if id, name, ok := strings.Cut(l, " "); ok && strings.HasPrefix(name, prefix) {
			ids = append(ids, id)
		}
	}
	return ids
}

// checkNoRecords checks that no job record is left in w's cache: every job
// of its runs settled.
func (w *workdir) checkNoRecords() {
	w.t.Helper()
	if recs := w.records(); len(recs) != 0 {
		w.t.Errorf("job records left: %v", recs)
	}
}

// records lists the job records left in w's cache.
func (w *workdir) records() []string {
	matches, _ := filepath.Glob(filepath.Join(w.dir, ".runner/slurm/*.json"))
	return matches
}

const fiveStages = `
name: five
stages:
  a: {kind: job, with: {value: 1}}
  b: {kind: job, needs: {in: a}, with: {value: 2}}
  c: {kind: job, needs: {in: a}, with: {value: 3}}
  d: {kind: job, needs: {in: [b, c]}, with: {value: 4}}
  e: {kind: table, needs: {in: [d, a]}}
`

func TestSlurmDAGAndRerun(t *testing.T) {
	t.Parallel()
	w, _ := slurmWorkdir(t)
	w.write("five.yaml", fiveStages)
	out, errOut, code := w.slurmRun("five.yaml")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if n, ran, cached, failed := summary(t, out); n != 5 || ran != 5 || cached != 0 || failed != 0 {
		t.Errorf("summary:\n%s", out)
	}
	for _, want := range []string{
		`(?m)^queued   a  \(slurm job \d+\)$`,
		`(?m)^run      a$`,
		`(?m)^ran      d  \d+\.\d s  \(new\)  \[slurm job \d+ on \S+\]$`,
		`(?m)^ran      e  \d+\.\d s  \(new\)$`, // the table ran in the head
		`(?m)^slurm: 4 jobs; submit→start median \d+\.\d s \(max \d+\.\d s\), end→seen median \d+\.\d s \(max \d+\.\d s\), \d+ queue queries$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	r, err := readValue(w, "five", "e")
	if err != nil || r != 12 { // a=1, b=3, c=4, d=11, e=d+a
		t.Errorf("e = %v, %v; want 12", r, err)
	}
	for id, want := range map[string]string{"d": `"executor": "slurm job \d+"`, "e": `"executor": "local"`} {
		info, err := os.ReadFile(filepath.Join(w.dir, "results/five", id, "run", "run.json"))
		if err != nil || !regexp.MustCompile(want).Match(info) {
			t.Errorf("%s's run.json (%v):\n%s", id, err, info)
		}
	}
	byName, byState := w.finishedJobs()
	if len(byName) != 4 || byState["COMPLETED"] != 4 {
		t.Errorf("jobcomp.log: %v %v, want 4 jobs, one per key, completed", byName, byState)
	}
	w.checkNoRecords()
	out, errOut, code = w.slurmRun("five.yaml")
	if code != 0 || !strings.HasPrefix(out, "5 stages: 0 ran, 5 cached, 0 failed") || strings.Contains(out, "queued") {
		t.Errorf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if again, _ := w.finishedJobs(); len(again) != 4 {
		t.Errorf("the rerun submitted jobs: %v", again)
	}
}

// readValue reads a fake stage's value through the results view.
func readValue(w *workdir, spec, id string) (float64, error) {
	r, err := fakekinds.ReadResult(filepath.Join(w.dir, "results", spec, id))
	return r.Value, err
}

func TestSlurmStageFailure(t *testing.T) {
	t.Parallel()
	w, _ := slurmWorkdir(t)
	w.write("f.yaml", `
name: f
stages:
  a: {kind: job}
  crash: {kind: job, needs: {in: a}, with: {exit: 3}}
  after: {kind: job, needs: {in: crash}}
  bad: {kind: job, needs: {in: a}, with: {fail: true}}
`)
	out, errOut, code := w.slurmRun("f.yaml", "--keep-going")
	if code != exitFailed {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`(?m)^FAILED   crash: slurm job \d+ on \S+: JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0$`,
		`(?m)^  \| job crash: exiting with code 3$`,
		`(?m)^  full log: .*/\.runner/slurm/logs/[0-9a-f]{64}\.\d+\.log$`,
		`(?m)^skipped  after: input crash failed$`,
		`(?m)^FAILED   bad: slurm job \d+ on \S+: JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0: job: asked to fail$`,
		`(?m)^  \| log line 30$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if n, ran, _, failed := summary(t, out); n != 4 || ran != 1 || failed != 3 {
		t.Errorf("summary:\n%s", out)
	}
	w.checkNoRecords()
}

func TestSlurmExternalCancel(t *testing.T) {
	t.Parallel()
	w, marks := slurmWorkdir(t)
	w.write("c.yaml", "stages:\n  slow: {kind: job, with: {sleep_ms: 120000}}\n  next: {kind: job, needs: {in: slow}}\n")
	b := w.start("c.yaml")
	waitFor(t, 60*time.Second, "the stage starting", func() bool { return marked(marks) == 1 })
	ids := w.liveJobs()
	if len(ids) != 1 {
		t.Fatalf("live jobs %v", ids)
	}
	if out, err := exec.Command("scancel", ids[0]).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	if code := b.wait(t, 60*time.Second); code != exitFailed {
		t.Errorf("exit %d", code)
	}
	out := b.out.String()
	if !regexp.MustCompile(`(?m)^FAILED   slow: slurm job `+ids[0]+` on \S+: JobState=CANCELLED Reason=None ExitCode=\d+:\d+$`).MatchString(out) ||
		!strings.Contains(out, "skipped  next: input slow failed") {
		t.Errorf("output:\n%s", out)
	}
}

// TestSlurmTimeLimit gives a job a one-minute limit: Slurm enforces limits in
// whole minutes, checked every 30 s, so this test takes 60–100 s.
func TestSlurmTimeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute")
	}
	t.Parallel()
	w, _ := slurmWorkdir(t)
	w.write("t.yaml", "resources:\n  slow: {time: \"1\"}\nstages:\n  slow: {kind: job, with: {sleep_ms: 600000}}\n")
	out, errOut, code := w.slurmRun("t.yaml")
	if code != exitFailed || !regexp.MustCompile(`(?m)^FAILED   slow: slurm job \d+ on \S+: JobState=TIMEOUT Reason=TimeLimit ExitCode=\d+:\d+$`).MatchString(out) ||
		!strings.Contains(out, "DUE TO TIME LIMIT") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

// setNode sets the local cluster's only node's state.
func setNode(t *testing.T, state string) {
	t.Helper()
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	args := []string{"update", "NodeName=" + host, "State=" + state}
	if state == "DOWN" {
		args = append(args, "Reason=runner-test")
	}
	if out, err := exec.Command("scontrol", args...).CombinedOutput(); err != nil {
		t.Fatalf("scontrol %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// TestSlurmNodeDown sets the node down while a job runs on it: the job ends
// NODE_FAIL and the runner resubmits it (excluding the node where another
// can run it: here none can), which runs once the node is back; with
// --slurm-retries 0 the stage fails instead. Not parallel: every job of the
// cluster dies with its node.
func TestSlurmNodeDown(t *testing.T) {
	for _, retries := range []string{"1", "0"} {
		t.Run("retries="+retries, func(t *testing.T) {
			w, marks := slurmWorkdir(t)
			w.write("n.yaml", "stages:\n  slow: {kind: job, with: {sleep_ms: 8000, value: 5}}\n")
			b := w.start("n.yaml", "--slurm-retries", retries)
			waitFor(t, 60*time.Second, "the stage starting", func() bool { return marked(marks) == 1 })
			setNode(t, "DOWN")
			resumed := false
			defer func() {
				if !resumed {
					setNode(t, "RESUME")
				}
			}()
			if retries == "0" {
				setNode(t, "RESUME")
				resumed = true
				if code := b.wait(t, 60*time.Second); code != exitFailed || !regexp.MustCompile(`(?m)^FAILED   slow: slurm job \d+ on \S+: JobState=NODE_FAIL Reason=NodeDown ExitCode=\S+ \(attempt 1; --slurm-retries 0\)$`).MatchString(b.out.String()) {
					t.Errorf("exit %d\n%s", code, b.out.String())
				}
				return
			}
			waitFor(t, 30*time.Second, "the resubmission", func() bool { return strings.Contains(b.out.String(), "resubmitting (attempt 2 of 2)") })
			waitFor(t, 30*time.Second, "the new job pending", func() bool { return strings.Contains(b.out.String(), "  slow: pending (") })
			setNode(t, "RESUME")
			resumed = true
			if code := b.wait(t, 90*time.Second); code != 0 {
				t.Fatalf("exit %d\n%s", code, b.out.String())
			}
			out := b.out.String()
			if !strings.Contains(out, "JobState=NODE_FAIL Reason=NodeDown") || !regexp.MustCompile(`(?m)^ran      slow  \d+\.\d s  \(new\)  \[slurm job \d+ on \S+\]$`).MatchString(out) {
				t.Errorf("output:\n%s", out)
			}
			if v, err := readValue(w, "n", "slow"); v != 5 || err != nil {
				t.Errorf("slow = %v, %v", v, err)
			}
			if _, byState := w.finishedJobs(); byState["NODE_FAIL"] != 1 || byState["COMPLETED"] != 1 {
				t.Errorf("jobcomp.log: %v", byState)
			}
		})
	}
}

const twelveStages = `
name: twelve
stages:
  s: {kind: job, matrix: {i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}, with: {value: "${i}", sleep_ms: SLEEP}}
`

// TestSlurmAdoptAfterKill kills the runner with SIGKILL while 8 jobs run and
// 4 wait: the jobs go on, and the runner started again adopts them all
// instead of submitting: one job per key in jobcomp.log.
func TestSlurmAdoptAfterKill(t *testing.T) {
	t.Parallel()
	w, marks := slurmWorkdir(t)
	w.write("k.yaml", strings.Replace(twelveStages, "SLEEP", "6000", 1))
	b := w.start("k.yaml")
	waitFor(t, 60*time.Second, "jobs running", func() bool { return marked(marks) >= 4 })
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.wait(t, 10*time.Second)
	if n := len(w.liveJobs()); n == 0 {
		t.Fatal("no job left in the queue after the kill")
	}
	out, errOut, code := w.slurmRun("k.yaml")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	_, ran, cached, _ := summary(t, out)
	if ran+cached != 12 || strings.Count(out, ", adopted)") != ran || ran == 0 {
		t.Errorf("rerun: every stage ran in an adopted job or was cached\n%s", out)
	}
	byName, _ := w.finishedJobs()
	if len(byName) != 12 {
		t.Errorf("jobcomp.log has %d keys, want 12: %v", len(byName), byName)
	}
	for name, n := range byName {
		if n != 1 {
			t.Errorf("%d jobs for %s", n, name)
		}
	}
	w.checkNoRecords()
}

// TestSlurmCrashAfterSbatch kills the runner between sbatch and the record
// that says so: the next run finds the job by its name and comment.
func TestSlurmCrashAfterSbatch(t *testing.T) {
	t.Parallel()
	w, _ := slurmWorkdir(t)
	w.write("x.yaml", "stages:\n  a: {kind: job, with: {sleep_ms: 3000, value: 2}}\n")
	env := w.env
	w.env = append(env, "RUNNER_TEST_CRASH=after-submit")
	out, errOut, code := w.slurmRun("x.yaml")
	if code != -1 && code != 137 {
		t.Logf("crashing run: exit %d\n%s%s", code, out, errOut)
	}
	recs := w.records()
	if len(recs) != 1 {
		t.Fatalf("records after the crash: %v", recs)
	}
	if data, _ := os.ReadFile(recs[0]); !strings.Contains(string(data), `"state": "submitting"`) {
		t.Fatalf("record after the crash:\n%s", data)
	}
	w.env = env
	out, errOut, code = w.slurmRun("x.yaml")
	if code != 0 || !regexp.MustCompile(`(?m)^a: found slurm job \d+ by name, submitted by a run that stopped before recording it$`).MatchString(out) {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if byName, _ := w.finishedJobs(); len(byName) != 1 || func() int {
		for _, n := range byName {
			return n
		}
		return 0
	}() != 1 {
		t.Errorf("jobcomp.log: %v, want one job", byName)
	}
}

// TestSlurmInterrupt sends SIGINT while jobs run and wait: within 30 s no
// job of the run is left in the queue, and no record.
func TestSlurmInterrupt(t *testing.T) {
	t.Parallel()
	w, marks := slurmWorkdir(t)
	w.write("i.yaml", strings.Replace(twelveStages, "SLEEP", "120000", 1))
	b := w.start("i.yaml")
	waitFor(t, 60*time.Second, "jobs running", func() bool { return marked(marks) >= 2 })
	start := time.Now()
	b.cmd.Process.Signal(syscall.SIGINT)
	if code := b.wait(t, 30*time.Second); code != exitInterrupted {
		t.Errorf("exit %d\n%s", code, b.out.String())
	}
	waitFor(t, 30*time.Second-time.Since(start), "the queue emptying", func() bool { return len(w.liveJobs()) == 0 })
	if !regexp.MustCompile(`(?m)^slurm: cancelled 12 jobs \(`).MatchString(b.out.String()) {
		t.Errorf("output:\n%s", b.out.String())
	}
	w.checkNoRecords()
}

// TestSlurmDetach leaves the jobs of an interrupted run in the queue; slurm
// ls shows them as orphans and slurm cancel --orphans cancels them.
func TestSlurmDetach(t *testing.T) {
	t.Parallel()
	w, marks := slurmWorkdir(t)
	w.write("d.yaml", "stages:\n  s: {kind: job, matrix: {i: [1, 2]}, with: {value: \"${i}\", sleep_ms: 120000}}\n")
	b := w.start("d.yaml", "--slurm-detach")
	waitFor(t, 60*time.Second, "jobs running", func() bool { return marked(marks) >= 1 })
	b.cmd.Process.Signal(syscall.SIGINT)
	b.wait(t, 30*time.Second)
	if !strings.Contains(b.out.String(), "slurm: left 2 jobs in the queue") || len(w.liveJobs()) != 2 {
		t.Fatalf("live jobs %v\n%s", w.liveJobs(), b.out.String())
	}
	out, _, code := w.runner("slurm", "ls")
	if code != 0 || strings.Count(out, "nobody (orphan)") != 2 {
		t.Errorf("slurm ls:\n%s", out)
	}
	out, _, code = w.runner("slurm", "cancel", "--orphans")
	if code != 0 || !strings.Contains(out, "2 jobs cancelled") {
		t.Errorf("slurm cancel:\n%s", out)
	}
	waitFor(t, 30*time.Second, "the queue emptying", func() bool { return len(w.liveJobs()) == 0 })
	w.checkNoRecords()
}

func TestSlurmBadPartition(t *testing.T) {
	t.Parallel()
	w, _ := slurmWorkdir(t)
	w.write("p.yaml", "stages:\n  a: {kind: job}\n")
	start := time.Now()
	out, errOut, code := w.slurmRun("p.yaml", "--slurm-partition", "nope")
	if code != exitFailed || out != "" || !regexp.MustCompile(`^runner: --slurm-partition: slurm has no partition "nope" \(it has [^)]+\)\n$`).MatchString(errOut) {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	w.write("q.yaml", "resources:\n  job: {partition: nope}\nstages:\n  a: {kind: job}\n")
	out, errOut, code = w.slurmRun("q.yaml")
	if code != exitFailed || !regexp.MustCompile(`^runner: q.yaml:2:3: resources job: slurm has no partition "nope" \(it has [^)]+\)\n$`).MatchString(errOut) {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("a bad partition took %v to report", time.Since(start))
	}
}

// TestSlurmFlakySqueue puts an squeue that fails its first 3 calls first in
// PATH: the run warns and succeeds.
func TestSlurmFlakySqueue(t *testing.T) {
	t.Parallel()
	w, _ := slurmWorkdir(t)
	real, err := exec.LookPath("squeue")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(w.dir, "shims")
	os.Mkdir(bin, 0o777)
	count := filepath.Join(bin, "count")
	shimText := fmt.Sprintf(`#!/bin/sh
n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s
if [ $n -le 3 ]; then echo "squeue: error: Socket timed out on send/recv operation" >&2; exit 1; fi
exec %[2]s "$@"
`, count, real)
	if err := os.WriteFile(filepath.Join(bin, "squeue"), []byte(shimText), 0o755); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "PATH="+bin+":"+os.Getenv("PATH"))
	w.write("five.yaml", strings.Replace(fiveStages, "{value: 1}", "{value: 1, sleep_ms: 3000}", 1))
	out, errOut, code := w.slurmRun("five.yaml")
	if code != 0 || !strings.Contains(out, "slurm: warning: querying the queue failed (1 in a row; retrying): ") || !strings.Contains(out, "slurm: the queue answers again") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	data, _ := os.ReadFile(count)
	if n, _ := strconv.Atoi(strings.TrimSpace(string(data))); n <= 3 {
		t.Errorf("squeue called %d times", n)
	}
}
