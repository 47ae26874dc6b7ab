package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner"
	"github.com/hessian-spectra/runner/stage"
)

func TestDecide(t *testing.T) {
	at := time.Unix(1000, 0)
	listed := func(s State) look {
		return look{queried: true, listed: true, status: JobStatus{State: s}, at: at}
	}
	gone := look{queried: true, at: at}
	for _, c := range []struct {
		name    string
		l       look
		f       followState
		retries int
		want    verdict
		after   followState // the state decide leaves (when checked)
	}{
		{"result stored, job failed", look{queried: true, listed: true, status: JobStatus{State: Failed}, present: true}, followState{attempt: 1}, 0, succeed, followState{attempt: 1}},
		{"result stored, queue silent", look{present: true}, followState{}, 0, succeed, followState{}},
		{"queue silent", look{}, followState{attempt: 1}, 0, keepWaiting, followState{attempt: 1}},
		{"queued", listed(Queued), followState{attempt: 1}, 0, keepWaiting, followState{attempt: 1}},
		{"running clears adoption and grace", listed(Running), followState{adopted: true, attempt: 1, goneSince: at}, 0, keepWaiting, followState{attempt: 1}},
		{"node failed, retries left", listed(NodeFailed), followState{attempt: 1}, 1, resubmit, followState{attempt: 1}},
		{"node failed, none left", listed(NodeFailed), followState{attempt: 2}, 1, fail, followState{attempt: 2}},
		{"preempted, no retries", listed(Preempted), followState{attempt: 1}, 0, fail, followState{attempt: 1}},
		{"node failed before adoption", listed(NodeFailed), followState{adopted: true, attempt: 3}, 0, resubmitFresh, followState{adopted: true, attempt: 3}},
		{"stage error", listed(Failed), followState{attempt: 1}, 5, fail, followState{attempt: 1}},
		{"timeout not retried", listed(TimedOut), followState{attempt: 1}, 5, fail, followState{attempt: 1}},
		{"out of memory not retried", listed(OutOfMemory), followState{attempt: 1}, 5, fail, followState{attempt: 1}},
		{"cancelled not retried", listed(Cancelled), followState{attempt: 1}, 5, fail, followState{attempt: 1}},
		{"failed before adoption", listed(Failed), followState{adopted: true, attempt: 1}, 0, resubmitFresh, followState{adopted: true, attempt: 1}},
		{"completed without result: grace starts", listed(Succeeded), followState{attempt: 1}, 0, graceWait, followState{attempt: 1, goneSince: at}},
		{"completed, grace not over", listed(Succeeded), followState{attempt: 1, goneSince: at.Add(-4 * time.Second)}, 0, graceWait, followState{attempt: 1, goneSince: at.Add(-4 * time.Second)}},
		{"completed, grace over", listed(Succeeded), followState{attempt: 1, goneSince: at.Add(-5 * time.Second)}, 0, fail, followState{attempt: 1, goneSince: at.Add(-5 * time.Second)}},
		{"gone: grace starts", gone, followState{attempt: 1}, 0, graceWait, followState{attempt: 1, goneSince: at}},
		{"gone, grace over", gone, followState{attempt: 1, goneSince: at.Add(-time.Minute)}, 0, fail, followState{attempt: 1, goneSince: at.Add(-time.Minute)}},
		{"gone before adoption, grace over", gone, followState{adopted: true, attempt: 1, goneSince: at.Add(-time.Minute)}, 0, resubmitFresh, followState{adopted: true, attempt: 1, goneSince: at.Add(-time.Minute)}},
		{"unknown state counts as gone", listed(Unknown), followState{attempt: 1}, 0, graceWait, followState{attempt: 1, goneSince: at}},
	} {
		f := c.f
		if got := decide(c.l, &f, c.retries, 5*time.Second); got != c.want || f != c.after {
			t.Errorf("%s: %v %+v, want %v %+v", c.name, got, f, c.want, c.after)
		}
	}
}

const fiveSpec = `
name: five
stages:
  a: {kind: job, with: {value: 1}}
  b: {kind: job, needs: {in: a}, with: {value: 2}}
  c: {kind: job, needs: {in: a}, with: {value: 3}}
  d: {kind: job, needs: {in: [b, c]}, with: {value: 4}}
  e: {kind: table, needs: {in: [d, a]}}
`

func TestDAGOnFakeQueue(t *testing.T) {
	e := newEnv(t)
	p := e.parse(fiveSpec)
	sum, out := e.run(context.Background(), p, nil)
	if !sum.OK() || sum.Ran != 5 {
		t.Fatalf("summary %v\n%s", sum, out)
	}
	// a=1, b=3, c=4, d=11, e=d+a=12.
	if v := e.value("five", "e"); v != 12 {
		t.Errorf("e = %v, want 12", v)
	}
	if n := len(e.q.submitted()); n != 4 {
		t.Errorf("%d jobs submitted, want 4 (the table runs in the head)", n)
	}
	for _, want := range []string{`(?m)^queued   a  \(fake job 1\)$`, `(?m)^run      a$`, `(?m)^ran      a  \d+\.\d s  \(new\)  \[fake job 1 on n1\]$`, `(?m)^ran      e  \d+\.\d s  \(new\)$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
	if logs, _ := os.ReadDir(filepath.Join(e.store.Dir(), "fake", "logs")); len(logs) != 0 {
		t.Errorf("logs of successful jobs left: %v", logs)
	}
	if !regexp.MustCompile(`(?m)^fake: 4 jobs; submit→start median \d+\.\d s \(max \d+\.\d s\), end→seen median \d+\.\d s \(max \d+\.\d s\), \d+ queue queries$`).MatchString(out) {
		t.Errorf("no overhead line in the output:\n%s", out)
	}
	sum, out = e.run(context.Background(), p, nil)
	if sum.Cached != 5 || len(e.q.submitted()) != 4 {
		t.Errorf("rerun: %v, %d jobs in all\n%s", sum, len(e.q.submitted()), out)
	}
}

func TestJobSpecAndResources(t *testing.T) {
	e := newEnv(t)
	p := e.parse(`
name: res
resources:
  default: {time: "10"}
  job: {mem: 2G, partition: cpu}
  b: {gpus: 1, extra: ["--constraint=avx2"]}
  t: {local: false}
stages:
  a: {kind: job, with: {value: 1}}
  b: {kind: job, needs: {in: a}, with: {value: 2}}
  t: {kind: table, needs: {in: b}}
  l: {kind: table, needs: {in: a}}
`)
	sum, out := e.run(context.Background(), p, func(o *Options) { o.Overrides.Partition = "gpu" })
	if !sum.OK() {
		t.Fatalf("%v\n%s", sum, out)
	}
	specs := e.q.submitted()
	byStage := map[string]JobSpec{}
	for _, s := range specs {
		byStage[s.Stage] = s
	}
	if len(specs) != 3 || byStage["l"].Key != "" {
		t.Fatalf("submitted %d jobs (%v); want a, b and t (local: false) but not l", len(specs), byStage)
	}
	b := byStage["b"]
	if r := b.Resources; r.Time != "10" || r.Mem != "2G" || r.Partition != "gpu" || r.GPUs != "1" || len(r.Extra) != 1 {
		t.Errorf("b's resources: %+v", r)
	}
	if !strings.HasPrefix(b.Name, "runner-") || !strings.HasSuffix(b.Name, "-"+string(b.Key)[:16]) || !strings.Contains(b.Comment, "key="+string(b.Key)) || !strings.Contains(b.Comment, "stage=b") {
		t.Errorf("name %q, comment %q", b.Name, b.Comment)
	}
	if !strings.Contains(b.Script, "exec-stage --cache '"+e.store.Dir()+"' "+string(b.Key)) || !strings.Contains(b.Script, "objects/") {
		t.Errorf("script:\n%s", b.Script)
	}
	if b.Dir != e.store.Dir() || !strings.HasSuffix(b.Log, string(b.Key)+".%j.log") {
		t.Errorf("dir %s, log %s", b.Dir, b.Log)
	}
	// Resources are in no key: the same spec without them is cached.
	q := e.parse(`
name: res
stages:
  a: {kind: job, with: {value: 1}}
  b: {kind: job, needs: {in: a}, with: {value: 2}}
  t: {kind: table, needs: {in: b}}
  l: {kind: table, needs: {in: a}}
`)
	if sum, _ := e.run(context.Background(), q, nil); sum.Cached != 4 {
		t.Errorf("without resources: %v", sum)
	}
}

func TestStageFailureSkipsDependants(t *testing.T) {
	e := newEnv(t)
	p := e.parse(`
name: f
stages:
  a: {kind: job, with: {value: 1}}
  bad: {kind: job, needs: {in: a}, with: {fail: true}}
  after: {kind: job, needs: {in: bad}}
  other: {kind: job, needs: {in: a}, with: {value: 5}}
`)
	sum, out := e.run(context.Background(), p, nil)
	if sum.Ran != 2 || sum.Failed != 1 || sum.Skipped != 1 {
		t.Fatalf("%v\n%s", sum, out)
	}
	if !regexp.MustCompile(`(?m)^FAILED   bad: fake job \d+ on n1: JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0: job: asked to fail`).MatchString(out) ||
		!strings.Contains(out, "skipped  after: input bad failed") || !strings.Contains(out, "  full log: "+e.store.Dir()) {
		t.Errorf("output:\n%s", out)
	}
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
}

func TestNodeFailureResubmits(t *testing.T) {
	for _, retries := range []int{0, 1} {
		e := newEnv(t)
		p := e.parse("stages:\n  a: {kind: job, with: {value: 1}}\n")
		e.q.fate = func(j *fakeJob) string {
			if j.st.ID == "1" {
				return "NODE_FAIL"
			}
			return ""
		}
		sum, out := e.run(context.Background(), p, func(o *Options) { o.Retries = retries })
		specs := e.q.submitted()
		if retries == 0 {
			if sum.Failed != 1 || len(specs) != 1 || !strings.Contains(out, "JobState=NODE_FAIL Reason=None ExitCode=0:0 (attempt 1; --fake-retries 0)") {
				t.Errorf("retries 0: %v, %d jobs\n%s", sum, len(specs), out)
			}
			continue
		}
		if !sum.OK() || len(specs) != 2 || len(specs[1].Exclude) != 1 || specs[1].Exclude[0] != "n1" {
			t.Errorf("retries 1: %v, jobs %+v\n%s", sum, specs, out)
		}
		if !strings.Contains(out, "resubmitting (attempt 2 of 2)") || !strings.Contains(out, "queued   a  (fake job 2)") {
			t.Errorf("output:\n%s", out)
		}
	}
}

func TestLimitsAndCancellationAreNotRetried(t *testing.T) {
	for _, raw := range []string{"TIMEOUT", "CANCELLED", "FAILED"} {
		e := newEnv(t)
		p := e.parse("stages:\n  a: {kind: job, with: {value: 1}}\n")
		e.q.fate = func(*fakeJob) string { return raw }
		sum, out := e.run(context.Background(), p, func(o *Options) { o.Retries = 3 })
		if sum.Failed != 1 || len(e.q.submitted()) != 1 || !strings.Contains(out, "JobState="+raw) {
			t.Errorf("%s: %v, %d jobs\n%s", raw, sum, len(e.q.submitted()), out)
		}
	}
}

// TestLatencyWait hides results from the head for a while, as a network
// file system does, with the hook the executor reads the cache through.
func TestLatencyWait(t *testing.T) {
	for _, c := range []struct {
		hide    time.Duration
		wait    time.Duration
		succeed bool
	}{
		{300 * time.Millisecond, 2 * time.Second, true},
		{time.Hour, 300 * time.Millisecond, false},
	} {
		e := newEnv(t)
		p := e.parse("stages:\n  a: {kind: job, with: {value: 1}}\n")
		x := e.executor(p, func(o *Options) { o.LatencyWait = c.wait })
		var refreshes atomic.Int64
		var visibleFrom atomic.Int64 // unix nanos; 0 until the job completes
		x.resultOf = func(k artifacts.Key, refresh bool) (artifacts.Record, bool, error) {
			if refresh {
				refreshes.Add(1)
			}
			rec, ok, err := e.store.Get(k)
			if !ok {
				return rec, ok, err
			}
			visibleFrom.CompareAndSwap(0, time.Now().Add(c.hide).UnixNano())
			if time.Now().UnixNano() < visibleFrom.Load() {
				return artifacts.Record{}, false, nil
			}
			return rec, ok, err
		}
		var out syncBuffer
		rep := runner.NewPlainReporter(&out, false)
		sum, err := runner.Run(context.Background(), []*pipelines.Pipeline{p}, runner.Options{Store: e.store, Jobs: 1, Executor: x, Reporter: rep})
		if err != nil {
			t.Fatal(err)
		}
		if c.succeed {
			if !sum.OK() || refreshes.Load() == 0 {
				t.Errorf("hidden %v, wait %v: %v, %d refreshes\n%s", c.hide, c.wait, sum, refreshes.Load(), out.String())
			}
			continue
		}
		if sum.Failed != 1 || !strings.Contains(out.String(), "JobState=COMPLETED Reason=None ExitCode=0:0, but its result did not appear in the cache within 300ms (raise --fake-latency-wait") {
			t.Errorf("hidden for good: %v\n%s", sum, out.String())
		}
	}
}

func TestFlakyQueryDoesNotFail(t *testing.T) {
	e := newEnv(t)
	e.q.queryFails = 4
	e.q.hold = make(chan struct{}) // the queue answers before the jobs end
	time.AfterFunc(time.Second, func() { close(e.q.hold) })
	p := e.parse(fiveSpec)
	sum, out := e.run(context.Background(), p, nil)
	if !sum.OK() {
		t.Fatalf("%v\n%s", sum, out)
	}
	if n := strings.Count(e.notes.String(), "querying the queue failed"); n != 1 || !strings.Contains(e.notes.String(), "fake: the queue answers again") {
		t.Errorf("notes:\n%s", e.notes)
	}
}

func TestTransientSubmission(t *testing.T) {
	transient := &TransientError{Err: errors.New("sbatch: Socket timed out on send/recv operation")}
	for _, queued := range []bool{false, true} {
		e := newEnv(t)
		e.q.submitErrs = []error{transient}
		e.q.queueAnyway = queued // the timed-out submission queued its job all the same
		e.q.hold = make(chan struct{})
		time.AfterFunc(3*time.Second, func() { close(e.q.hold) })
		p := e.parse("stages:\n  a: {kind: job, with: {value: 1}}\n")
		sum, out := e.run(context.Background(), p, nil)
		calls := 2
		if queued {
			calls = 1 // found by name before trying again
		}
		if !sum.OK() || len(e.q.submitted()) != 1 || e.q.calls != calls || !strings.Contains(out, "submission failed (sbatch: Socket timed out") {
			t.Errorf("queued anyway %v: %v, %d jobs, %d submissions (want 1 and %d)\n%s", queued, sum, len(e.q.submitted()), e.q.calls, calls, out)
		}
	}
}

func TestPermanentSubmissionError(t *testing.T) {
	e := newEnv(t)
	e.q.submitErrs = []error{errors.New("sbatch: Batch job submission failed: Invalid partition name specified")}
	p := e.parse("stages:\n  a: {kind: job, with: {value: 1}}\n  b: {kind: job, needs: {in: a}}\n")
	sum, out := e.run(context.Background(), p, nil)
	if sum.Failed != 1 || sum.Skipped != 1 || !strings.Contains(out, "FAILED   a: sbatch: Batch job submission failed: Invalid partition name specified\n") {
		t.Errorf("%v\n%s", sum, out)
	}
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
}

// TestAdoption starts a run with a record (and a job) left by a run that is
// gone, for each state a record can be in.
func TestAdoption(t *testing.T) {
	const spec = "stages:\n  a: {kind: job, with: {value: 7}}\n"
	for _, c := range []struct {
		name string
		// prepare leaves a record (and perhaps a job); it returns how many
		// jobs the run must submit itself.
		prepare func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int
		note    string
	}{
		{"no record", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int { return 1 }, ""},
		{"submitting, job queued (crash between sbatch and record)", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			r := x.newRecord(t, 1, nil)
			r.Run = "deadrun"
			e.must(x.rec.create(r))
			e.submitDirect(x, t)
			return 0
		}, "found fake job 1 by name"},
		{"submitting, no job (crash before sbatch)", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			r := x.newRecord(t, 1, nil)
			r.Run = "deadrun"
			e.must(x.rec.create(r))
			return 1
		}, ""},
		{"corrupt record, job queued", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			e.must(os.WriteFile(x.rec.path(k), []byte("{garbage"), 0o666))
			e.submitDirect(x, t)
			return 0
		}, "found fake job 1 by name"},
		{"submitted by a dead run, job running", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			id := e.submitDirect(x, t)
			r := x.newRecord(t, 1, nil)
			r.Run, r.State, r.Job = "deadrun", stateSubmitted, id
			e.must(x.rec.create(r))
			return 0
		}, ""},
		{"submitted by a dead run, job failed", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			e.q.fate = func(j *fakeJob) string {
				if j.st.ID == "1" {
					return "FAILED"
				}
				return ""
			}
			close(e.q.hold) // this one fails now
			e.q.hold = nil
			id := e.submitDirect(x, t)
			r := x.newRecord(t, 1, nil)
			r.Run, r.State, r.Job = "deadrun", stateSubmitted, id
			e.must(x.rec.create(r))
			for e.q.state(id) != Failed {
				time.Sleep(5 * time.Millisecond)
			}
			return 1
		}, "before this run adopted it; submitting it again"},
		{"submitted by a dead run, job purged, result stored", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			close(e.q.hold) // this one runs now
			e.q.hold = nil
			id := e.submitDirect(x, t)
			r := x.newRecord(t, 1, nil)
			r.Run, r.State, r.Job = "deadrun", stateSubmitted, id
			e.must(x.rec.create(r))
			for {
				if _, ok, _ := e.store.Get(k); ok {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			e.q.mu.Lock()
			e.q.jobs[0].purged = true
			e.q.mu.Unlock()
			return 0
		}, ""},
		{"submitted by a live run", func(e *env, x *Executor, k artifacts.Key, t *runner.Task) int {
			live, err := artifacts.LockPath(context.Background(), x.rec.runLock("liverun"), nil)
			e.must(err)
			e.t.Cleanup(func() { live.Unlock() })
			id := e.submitDirect(x, t)
			r := x.newRecord(t, 1, nil)
			r.Run, r.State, r.Job = "liverun", stateSubmitted, id
			e.must(x.rec.create(r))
			return 0
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.parse(spec)
			k := e.key(p, "a")
			x := e.executor(p, nil)
			task := e.task(p, k)
			e.q.hold = make(chan struct{})
			want := c.prepare(e, x, k, task)
			before := len(e.q.submitted())
			if e.q.hold != nil {
				close(e.q.hold)
			}
			res := x.Execute(context.Background(), task)
			x.Close(false, func(string) {})
			if res.Err != nil {
				t.Fatalf("Execute: %v", res.Err)
			}
			if got := len(e.q.submitted()) - before; got != want {
				t.Errorf("%d jobs submitted by the run, want %d", got, want)
			}
			rec, ok, _ := e.store.Get(k)
			if !ok || rec.Digest != res.Digest {
				t.Errorf("result %+v, cache %+v %v", res, rec, ok)
			}
			if recs := e.records(); len(recs) != 0 {
				t.Errorf("records left: %+v", recs)
			}
			if c.note != "" && !strings.Contains(e.taskNotes.String(), c.note) {
				t.Errorf("notes lack %q:\n%s", c.note, e.taskNotes.String())
			}
		})
	}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// submitDirect queues t's job as an earlier run would have.
func (e *env) submitDirect(x *Executor, t *runner.Task) string {
	e.t.Helper()
	e.must(e.store.WriteDesc(t.Key, t.Desc))
	id, err := e.q.Submit(context.Background(), x.jobSpec(t, nil))
	e.must(err)
	return id
}

// task is the Task a run would give the executor for key k of p's first
// stage, which has no inputs.
func (e *env) task(p *pipelines.Pipeline, k artifacts.Key) *runner.Task {
	e.t.Helper()
	inst := p.Instances[0]
	params := map[string]any(inst.Params)
	j := runner.Job{
		Description: runner.Description{Kind: inst.Stage.Kind.Name, Version: inst.Stage.Kind.Version, Params: params},
		ID:          inst.ID, Spec: p.Name, Params: params,
	}
	key, err := j.Description.Key()
	e.must(err)
	if key != k {
		e.t.Fatalf("described key %s, planned %s", key.Short(), k.Short())
	}
	j.Key = key
	desc, err := json.Marshal(j)
	e.must(err)
	return &runner.Task{Key: k, ID: inst.ID, Spec: p.Name, Kind: inst.Stage.Kind, Desc: desc, Events: &e.taskNotes}
}

// taskEvents records a task's events as text.
type taskEvents struct {
	mu sync.Mutex
	b  strings.Builder
}

func (ev *taskEvents) Queued(job string)     { ev.add("queued " + job) }
func (ev *taskEvents) Waiting(reason string) { ev.add("waiting " + reason) }
func (ev *taskEvents) Running() stage.Progress {
	ev.add("running")
	return stage.Discard
}
func (ev *taskEvents) Note(msg string) { ev.add(msg) }
func (ev *taskEvents) add(s string) {
	ev.mu.Lock()
	ev.b.WriteString(s + "\n")
	ev.mu.Unlock()
}
func (ev *taskEvents) String() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.b.String()
}

const threeSpec = `
name: three
stages:
  a: {kind: job, matrix: {i: [1, 2, 3]}, with: {value: "${i}"}}
`

// TestStopCancelsOrDetaches interrupts a run whose jobs are queued: without
// Detach it cancels them in one call and removes their records; with it
// they stay, and the next run adopts them instead of submitting again.
func TestStopCancelsOrDetaches(t *testing.T) {
	for _, detach := range []bool{false, true} {
		e := newEnv(t)
		p := e.parse(threeSpec)
		e.q.hold = make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for len(e.q.submitted()) < 3 {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
		sum, out := e.run(ctx, p, func(o *Options) { o.Detach = detach })
		if !sum.Interrupted || sum.Skipped != 3 {
			t.Fatalf("detach %v: %v\n%s", detach, sum, out)
		}
		if !detach {
			if len(e.q.cancels) != 1 || len(e.q.cancels[0]) != 3 || !strings.Contains(out, "fake: cancelled 3 jobs (1 2 3)") {
				t.Errorf("cancels %v\n%s", e.q.cancels, out)
			}
			if recs := e.records(); len(recs) != 0 {
				t.Errorf("records left: %+v", recs)
			}
			continue
		}
		if len(e.q.cancels) != 0 || len(e.records()) != 3 || !strings.Contains(out, "fake: left 3 jobs in the queue (1 2 3)") {
			t.Errorf("detached: cancels %v, %d records\n%s", e.q.cancels, len(e.records()), out)
		}
		jobs, err := List(context.Background(), e.store, e.q)
		if err != nil || len(jobs) != 3 || !jobs[0].Orphan || !jobs[0].Listed || jobs[0].Status.State != Queued {
			t.Errorf("List: %+v, %v", jobs, err)
		}
		close(e.q.hold)
		sum, out = e.run(context.Background(), p, nil)
		// Jobs that finished before the run looked are cached, the others
		// adopted; none is submitted again.
		if !sum.OK() || len(e.q.submitted()) != 3 || strings.Count(out, ", adopted)") != sum.Ran || len(e.records()) != 0 {
			t.Errorf("next run: %v, %d jobs in all, records %v\n%s", sum, len(e.q.submitted()), e.records(), out)
		}
	}
}

// TestTwoRunsShareJobs runs the same spec twice at once on one cache:
// every key is submitted once, one run computes each stage and the other
// follows its job.
func TestTwoRunsShareJobs(t *testing.T) {
	e := newEnv(t)
	p := e.parse(fiveSpec)
	e.q.hold = make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { close(e.q.hold) })
	var wg sync.WaitGroup
	sums := make([]runner.Summary, 2)
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], _ = e.run(context.Background(), p, nil)
		}()
	}
	wg.Wait()
	if n := len(e.q.submitted()); n != 4 {
		t.Errorf("%d jobs submitted for 4 keys", n)
	}
	for i, s := range sums {
		if !s.OK() {
			t.Errorf("run %d: %v", i, s)
		}
	}
	if sums[0].Ran+sums[1].Ran < 5 || sums[0].Ran+sums[0].Cached != 5 {
		t.Errorf("summaries %v and %v", sums[0], sums[1])
	}
}

func TestCancelOrphans(t *testing.T) {
	e := newEnv(t)
	p := e.parse(threeSpec)
	e.q.hold = make(chan struct{})
	defer close(e.q.hold)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(e.q.submitted()) < 3 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	e.run(ctx, p, func(o *Options) { o.Detach = true })
	jobs, err := Cancel(context.Background(), e.store, e.q, true)
	if err != nil || len(jobs) != 3 || len(e.q.cancels) != 1 || len(e.records()) != 0 {
		t.Errorf("Cancel: %d jobs, %v; cancels %v; records %v", len(jobs), err, e.q.cancels, e.records())
	}
}
