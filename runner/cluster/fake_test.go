package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner"
)

// fakeQueue is a batch system in memory: each job it accepts runs
// `runner exec-stage` in-process (runner.Exec), unless the test decides its
// fate, and it answers queries like squeue -t all.
type fakeQueue struct {
	store *artifacts.Store

	mu   sync.Mutex
	next int
	jobs []*fakeJob
	// fate, when set, gives a job the final Slurm-like state it ends in
	// without running ("NODE_FAIL"), or "" to run it.
	fate func(j *fakeJob) string
	// hold keeps jobs queued until it is closed.
	hold chan struct{}
	// submitErrs are returned by the next submissions, in order; a
	// *TransientError with queued set queues the job all the same.
	submitErrs  []error
	queueAnyway bool
	// queryFails fails the next queries.
	queryFails int
	queries    int
	calls      int // Submit calls
	cancels    [][]string
}

type fakeJob struct {
	spec   JobSpec
	st     JobStatus
	purged bool
	cancel context.CancelFunc
}

func (q *fakeQueue) Name() string { return "fake" }

func (q *fakeQueue) Submit(ctx context.Context, j *JobSpec) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	var err error
	if len(q.submitErrs) > 0 {
		err, q.submitErrs = q.submitErrs[0], q.submitErrs[1:]
		if !q.queueAnyway {
			return "", err
		}
	}
	q.next++
	fj := &fakeJob{spec: *j, st: JobStatus{ID: strconv.Itoa(q.next), Name: j.Name, State: Queued, Raw: "PENDING", Reason: "Priority", Comment: j.Comment}}
	q.jobs = append(q.jobs, fj)
	go q.run(fj)
	return fj.st.ID, err
}

func (q *fakeQueue) set(j *fakeJob, raw string, state State, reason, exit string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j.st.State == Cancelled {
		return
	}
	j.st.Raw, j.st.State, j.st.Reason, j.st.ExitCode = raw, state, reason, exit
	if state == Running {
		j.st.Node = "n1"
	}
}

// run plays a job: queued until hold opens, then running, then its fate or
// a real exec-stage.
func (q *fakeQueue) run(j *fakeJob) {
	ctx, cancel := context.WithCancel(context.Background())
	q.mu.Lock()
	j.cancel = cancel
	hold, fate := q.hold, q.fate
	q.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return
		}
	}
	time.Sleep(5 * time.Millisecond)
	q.set(j, "RUNNING", Running, "None", "")
	if fate != nil {
		if raw := fate(j); raw != "" {
			state := map[string]State{"NODE_FAIL": NodeFailed, "FAILED": Failed, "TIMEOUT": TimedOut, "COMPLETED": Succeeded, "CANCELLED": Cancelled, "PREEMPTED": Preempted}[raw]
			q.set(j, raw, state, "None", "0:0")
			return
		}
	}
	log := strings.ReplaceAll(j.spec.Log, "%j", j.st.ID)
	_, _, err := runner.Exec(ctx, q.store, fakekinds.Registry(), j.spec.Key, runner.ExecOptions{})
	if err != nil {
		os.WriteFile(log, []byte("runner exec-stage: "+err.Error()+"\n"), 0o666)
		q.set(j, "FAILED", Failed, "NonZeroExitCode", "1:0")
		return
	}
	q.set(j, "COMPLETED", Succeeded, "None", "0:0")
}

func (q *fakeQueue) Query(ctx context.Context, names []string) ([]JobStatus, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queries++
	if q.queryFails > 0 {
		q.queryFails--
		return nil, fmt.Errorf("squeue: Socket timed out on send/recv operation")
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []JobStatus
	for _, j := range q.jobs {
		if want[j.spec.Name] && !j.purged {
			out = append(out, j.st)
		}
	}
	return out, nil
}

func (q *fakeQueue) Cancel(ctx context.Context, ids []string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cancels = append(q.cancels, ids)
	for _, j := range q.jobs {
		for _, id := range ids {
			if j.st.ID == id && j.st.State.Live() {
				j.st.Raw, j.st.State, j.st.ExitCode = "CANCELLED", Cancelled, "0:15"
				if j.cancel != nil {
					j.cancel()
				}
			}
		}
	}
	return nil
}

// state returns the state of job id.
func (q *fakeQueue) state(id string) State {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range q.jobs {
		if j.st.ID == id {
			return j.st.State
		}
	}
	return Unknown
}

// submitted returns the specs of the jobs submitted so far.
func (q *fakeQueue) submitted() []JobSpec {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []JobSpec
	for _, j := range q.jobs {
		out = append(out, j.spec)
	}
	return out
}

// env is a cache, a spec and a fake queue.
type env struct {
	t     *testing.T
	dir   string
	store *artifacts.Store
	q     *fakeQueue
	notes *syncBuffer
	// taskNotes receives the events of tasks a test executes directly.
	taskNotes taskEvents
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	s, err := artifacts.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dir: dir, store: s, q: &fakeQueue{store: s}, notes: &syncBuffer{}}
}

func (e *env) parse(src string) *pipelines.Pipeline {
	e.t.Helper()
	p, err := pipelines.Parse("spec.yaml", []byte(src), pipelines.Options{Registry: fakekinds.Registry(), BaseDir: e.dir})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// executor makes an executor of the fake queue with short intervals.
func (e *env) executor(p *pipelines.Pipeline, mod func(*Options)) *Executor {
	e.t.Helper()
	bin := filepath.Join(e.dir, "runner-binary")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	o := Options{Binary: bin, minPoll: 10 * time.Millisecond, Poll: 40 * time.Millisecond, LatencyWait: 200 * time.Millisecond, Retries: 1,
		Note: func(s string) { fmt.Fprintln(e.notes, s) }}
	if mod != nil {
		mod(&o)
	}
	x, err := New(context.Background(), e.store, e.q, []*pipelines.Pipeline{p}, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

// run runs p through an executor made by mod and returns the summary and
// the run's output.
func (e *env) run(ctx context.Context, p *pipelines.Pipeline, mod func(*Options)) (runner.Summary, string) {
	e.t.Helper()
	x := e.executor(p, mod)
	var out syncBuffer
	rep := runner.NewPlainReporter(&out, false)
	sum, err := runner.Run(ctx, []*pipelines.Pipeline{p}, runner.Options{Store: e.store, Jobs: 2, Executor: x, WorkDir: e.dir, Reporter: rep, KeepGoing: true})
	rep.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	return sum, out.String()
}

// key is the key of the first stage of p, whose inputs are all known.
func (e *env) key(p *pipelines.Pipeline, id string) artifacts.Key {
	e.t.Helper()
	entries, err := runner.Plan([]*pipelines.Pipeline{p}, runner.Options{Store: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, en := range entries {
		if en.ID == id {
			return en.Key
		}
	}
	e.t.Fatalf("no key for %s", id)
	return ""
}

// records lists the job records left in the cache.
func (e *env) records() []Record {
	recs, err := records{dir: filepath.Join(e.store.Dir(), "fake")}.list()
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// value reads the result of a stage through the results view.
func (e *env) value(spec, id string) float64 {
	e.t.Helper()
	r, err := fakekinds.ReadResult(filepath.Join(e.dir, "results", spec, id))
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Value
}
