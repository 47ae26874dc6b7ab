package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner"
)

// Options configure an Executor. The zero value of each field means its
// default.
type Options struct {
	// Binary is the runner executable the jobs run; empty means this
	// process's own. New copies it into the cache (see StageBinary).
	Binary string
	// Overrides are resources from the command line, applied over the
	// spec's for every job.
	Overrides pipelines.Resources
	// MaxJobs bounds the jobs queued or running at once (default 200).
	MaxJobs int
	// Poll is the longest interval between two queue queries (default
	// 30 s). Queries start MinPoll apart and the interval grows while
	// nothing changes.
	Poll time.Duration
	// LatencyWait is how long a job that left the queue without its result
	// is looked for in the cache before the stage fails (default 10 s; 0
	// is taken as the default, a negative value as none).
	LatencyWait time.Duration
	// Retries bounds resubmissions of a key after node failures and
	// preemptions (0: none).
	Retries int
	// Detach leaves this run's jobs queued and running when it stops early
	// (Ctrl-C, or a failure without --keep-going); the next run adopts
	// them. Without it they are cancelled.
	Detach bool
	// Note shows messages that concern no single stage (a failed queue
	// query, the jobs cancelled at the end); nil discards them.
	Note func(string)

	// minPoll replaces MinPoll (tests).
	minPoll time.Duration
}

// Defaults.
const (
	DefaultMaxJobs     = 200
	DefaultPoll        = 30 * time.Second
	DefaultLatencyWait = 10 * time.Second
	// MinPoll is the first interval between queue queries.
	MinPoll = time.Second
	// submitTimeout bounds one submission; it is not cut short by Ctrl-C,
	// since a submission killed halfway may have queued its job.
	submitTimeout = 2 * time.Minute
	// submitTries bounds attempts at a submission that fails transiently.
	submitTries = 4
)

// localKinds are the kinds that run in the head process unless their
// resources say `local: false`, besides the light ones: compute nodes often
// have no internet access, and fetching is no work for a cluster.
var localKinds = map[string]bool{"fetch": true}

// Executor runs stages as jobs of a Queue; see the package documentation.
// It implements runner.Executor.
type Executor struct {
	store   *artifacts.Store
	q       Queue
	opts    Options
	rec     records
	cacheID string
	run     string // this run's id
	host    string
	runLock *artifacts.Lock
	tr      *tracker

	mu    sync.Mutex
	owned map[artifacts.Key]string // jobs this run owns whose outcome is not settled: key → job id
	times []jobTimes

	// resultOf looks for key k's artifact; refresh asks to defeat
	// network file system caches first. Tests replace it to simulate a
	// file system on which results appear late.
	resultOf func(k artifacts.Key, refresh bool) (artifacts.Record, bool, error)
}

// jobTimes are the times of one job this run submitted and saw succeed, for
// the overhead line at the end of a run.
type jobTimes struct {
	submitted time.Time // sbatch returned
	started   time.Time // the stage started (its record's Created - Seconds)
	ended     time.Time // the record was written
	seen      time.Time // the executor saw the result
}

// New prepares an executor of the jobs of pipes on q, with the cache store:
// it checks the resources (when q is a Checker) and that the cache and the
// binary are where the nodes can see them, copies the binary into the
// cache, and starts the queue tracker. Close releases it.
func New(ctx context.Context, store *artifacts.Store, q Queue, pipes []*pipelines.Pipeline, opts Options) (*Executor, error) {
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = DefaultMaxJobs
	}
	if opts.minPoll <= 0 {
		opts.minPoll = MinPoll
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	opts.Poll = max(opts.Poll, opts.minPoll)
	switch {
	case opts.LatencyWait == 0:
		opts.LatencyWait = DefaultLatencyWait
	case opts.LatencyWait < 0:
		opts.LatencyWait = 0
	}
	if opts.Note == nil {
		opts.Note = func(string) {}
	}
	if c, ok := q.(Checker); ok {
		var rules []pipelines.ResourceRule
		for _, p := range pipes {
			rules = append(rules, p.Resources...)
		}
		if err := c.Check(ctx, rules, opts.Overrides); err != nil {
			return nil, err
		}
	}
	x := &Executor{store: store, q: q, opts: opts, owned: map[artifacts.Key]string{}}
	x.rec = records{dir: store.Dir() + string(os.PathSeparator) + q.Name()}
	x.resultOf = func(k artifacts.Key, refresh bool) (artifacts.Record, bool, error) {
		get := store.Get
		if refresh {
			get = store.Refresh
		}
		rec, ok, err := get(k)
		if dmg := (*artifacts.DamagedError)(nil); errors.As(err, &dmg) {
			return artifacts.Record{}, false, nil // a miss: exec-stage recomputes it
		}
		return rec, ok, err
	}
	for _, d := range []string{x.rec.dir, x.rec.logDir(), x.rec.dir + "/locks", x.rec.dir + "/runs"} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			return nil, fmt.Errorf("%s executor: %w", q.Name(), err)
		}
	}
	var err error
	if x.cacheID, err = x.rec.cacheID(); err != nil {
		return nil, fmt.Errorf("%s executor: %w", q.Name(), err)
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("%s executor: the runner binary: %w", q.Name(), err)
		}
	}
	if err := checkShared(ctx, q, store.Dir(), opts.Note); err != nil {
		return nil, err
	}
	if x.opts.Binary, err = StageBinary(x.rec.dir, opts.Binary); err != nil {
		return nil, fmt.Errorf("%s executor: %w", q.Name(), err)
	}
	x.host, _ = os.Hostname()
	x.run = randomHex(6)
	if x.runLock, err = artifacts.LockPath(ctx, x.rec.runLock(x.run), nil); err != nil {
		return nil, fmt.Errorf("%s executor: %w", q.Name(), err)
	}
	x.rec.cleanRuns()
	x.start()
	return x, nil
}

// start starts following jobs.
func (x *Executor) start() { x.tr = newTracker(x) }

// Accepts takes every stage but the light kinds, fetch, and those whose
// resources say `local: true` (`local: false` sends even those to the
// queue). Forced and re-checked stages run in the head: a job cannot tell
// its fresh result from the cached one.
func (x *Executor) Accepts(t *runner.Task) bool {
	if t.Forced || t.Recheck {
		return false
	}
	if t.Resources.Local != nil {
		return !*t.Resources.Local
	}
	return !t.Kind.Light && !localKinds[t.Kind.Name]
}

// Slots is Options.MaxJobs.
func (x *Executor) Slots() int { return x.opts.MaxJobs }

// jobName is the name of every job of key k in this cache.
func (x *Executor) jobName(k artifacts.Key) string {
	return "runner-" + x.cacheID + "-" + string(k)[:16]
}

// comment is the comment of a job of t.
func (x *Executor) comment(t *runner.Task) string {
	stage := t.ID
	if len(stage) > 200 {
		stage = stage[:200] + "…"
	}
	return oneLine(fmt.Sprintf("runner cache=%s key=%s spec=%s stage=%s", x.cacheID, t.Key, t.Spec, stage))
}

// commentKey returns the key a job comment names, if it names this cache.
func (x *Executor) commentKey(comment string) artifacts.Key {
	var cache, key string
	for _, f := range strings.Fields(comment) {
		if v, ok := strings.CutPrefix(f, "cache="); ok {
			cache = v
		} else if v, ok := strings.CutPrefix(f, "key="); ok {
			key = v
		}
	}
	if cache != x.cacheID {
		return ""
	}
	return artifacts.Key(key)
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// script is the job script of t: wait until the input artifacts are
// visible on the node (a network file system may show them late), then
// become `runner exec-stage`.
func (x *Executor) script(t *runner.Task) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# runner: stage %s of spec %s, key %s\n", oneLine(t.ID), oneLine(t.Spec), t.Key)
	if len(t.Inputs) > 0 {
		wait := int(x.opts.LatencyWait/time.Second) + 1
		b.WriteString("# Wait for the inputs to be visible here; listing their directories refreshes NFS caches.\n")
		fmt.Fprintf(&b, "n=0\nwhile [ $n -lt %d ]; do\n  ok=1\n  for d in", wait)
		for _, d := range t.Inputs {
			b.WriteString(" " + shellQuote(x.store.ObjectDir(d)))
		}
		b.WriteString("; do\n    ls \"${d%/*}\" >/dev/null 2>&1; [ -d \"$d\" ] || ok=0\n  done\n  [ $ok = 1 ] && break\n  n=$((n+1)); sleep 1\ndone\n")
	}
	fmt.Fprintf(&b, "exec %s exec-stage --cache %s", shellQuote(x.opts.Binary), shellQuote(x.store.Dir()))
	if t.Backend != "" {
		fmt.Fprintf(&b, " --backend %s", shellQuote(t.Backend))
	}
	fmt.Fprintf(&b, " %s\n", t.Key)
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// jobSpec is the job of t for one attempt.
func (x *Executor) jobSpec(t *runner.Task, exclude []string) *JobSpec {
	return &JobSpec{
		Name: x.jobName(t.Key), Comment: x.comment(t), Key: t.Key, Stage: t.ID, Spec: t.Spec,
		Script: x.script(t), Dir: x.store.Dir(), Log: x.rec.logFile(t.Key, "%j"),
		Resources: t.Resources.Merge(x.opts.Overrides), Exclude: exclude,
	}
}

// claim is a job an Execute follows.
type claim struct {
	job     string
	owned   bool // this run owns it (it submitted or took over the job)
	adopted bool // taken over from a run that died: see followState.adopted
	attempt int
	exclude []string
	// submitted is when this run submitted it; zero for adopted jobs.
	submitted time.Time
}

// Execute stores t's description, claims its key (serving it when cached,
// adopting the job of an earlier or concurrent run, or submitting one), and
// follows the job until the key's artifact is in the cache or the job has
// failed for good.
func (x *Executor) Execute(ctx context.Context, t *runner.Task) runner.TaskResult {
	if err := x.store.WriteDesc(t.Key, t.Desc); err != nil {
		return runner.TaskResult{Err: fmt.Errorf("store job description: %w", err)}
	}
	c, res, done := x.claim(ctx, t)
	if done {
		return res
	}
	return x.follow(ctx, t, c)
}

// errRace reports a record created by another process between our read and
// our write, which only a file system without working flock allows.
var errRace = errors.New("job record created concurrently")

// claim decides, under the key's record lock, who computes t's key; done
// is set when it returns the outcome itself.
func (x *Executor) claim(ctx context.Context, t *runner.Task) (c claim, res runner.TaskResult, done bool) {
	waited := false
	for {
		lock, err := x.rec.lock(ctx, t.Key)
		if err != nil {
			return c, runner.TaskResult{Err: err}, true
		}
		c, res, done, retry := x.claimLocked(ctx, t)
		lock.Unlock()
		if !retry {
			return c, res, done
		}
		// Another process holds the key's lock without a job record: a
		// runner computing it in its own process. Wait for it.
		if !waited {
			t.Events.Note(fmt.Sprintf("%s: waiting for another runner computing the same stage (key %s)", t.ID, t.Key.Short()))
			waited = true
		}
		select {
		case <-ctx.Done():
			return c, runner.TaskResult{Err: ctx.Err()}, true
		case <-time.After(time.Second):
		}
	}
}

func (x *Executor) claimLocked(ctx context.Context, t *runner.Task) (c claim, res runner.TaskResult, done, retry bool) {
	k := t.Key
	if rec, ok, err := x.resultOf(k, false); err != nil || ok {
		if r, exists, _ := x.rec.read(k); ok && exists && r.Run != x.run && !x.rec.alive(r.Run) {
			x.rec.remove(k) // left by a run that died after its job stored the key
		}
		return c, runner.TaskResult{Err: err, Cached: ok, Digest: rec.Digest}, true, false
	}
	r, exists, rerr := x.rec.read(k)
	switch {
	case !exists:
		if x.store.Computing(k) {
			return c, res, false, true
		}
		c, err := x.submitLocked(ctx, t, 1, nil, false)
		if errors.Is(err, errRace) {
			return c, res, false, true
		}
		if err != nil {
			return c, runner.TaskResult{Err: err}, true, false
		}
		return c, res, false, false
	case rerr != nil || r.State == stateSubmitting:
		// The run that wrote it held this lock until it knew the job id,
		// so it died in between (or the record is damaged): the job may
		// be queued all the same. Look for it by name.
		j, found, err := x.findJob(ctx, k)
		if err != nil {
			return c, runner.TaskResult{Err: fmt.Errorf("%s: a job for key %s may be queued (record %s) but the queue cannot be asked: %w", t.ID, k.Short(), r.State, err)}, true, false
		}
		if found {
			t.Events.Note(fmt.Sprintf("%s: found %s job %s by name, submitted by a run that stopped before recording it", t.ID, x.q.Name(), j.ID))
			rec := x.newRecord(t, 1, nil)
			rec.State, rec.Job = stateSubmitted, j.ID
			if err := x.rec.write(rec); err != nil {
				return c, runner.TaskResult{Err: err}, true, false
			}
			x.own(k, j.ID)
			return claim{job: j.ID, owned: true, attempt: 1}, res, false, false
		}
		c, err := x.submitLocked(ctx, t, 1, nil, true)
		if err != nil {
			return c, runner.TaskResult{Err: err}, true, false
		}
		return c, res, false, false
	}
	c = claim{job: r.Job, attempt: r.Attempt, exclude: r.Exclude}
	switch {
	case r.Run == x.run:
		c.owned = true
	case x.rec.alive(r.Run):
		// Another live run follows it: follow it too.
	default:
		// Its run died (killed, or detached): take it over.
		r.Run, r.Host, r.PID = x.run, x.host, os.Getpid()
		if err := x.rec.write(r); err != nil {
			return c, runner.TaskResult{Err: err}, true, false
		}
		c.owned, c.adopted = true, true
		x.own(k, r.Job)
	}
	return c, res, false, false
}

// newRecord is a record of t owned by this run.
func (x *Executor) newRecord(t *runner.Task, attempt int, exclude []string) Record {
	return Record{
		Key: t.Key, State: stateSubmitting, Run: x.run, Host: x.host, PID: os.Getpid(),
		Stage: t.ID, Spec: t.Spec, Attempt: attempt, Exclude: exclude, Submitted: time.Now().UTC(),
	}
}

// crashAfterSubmit kills the process between a submission and its record,
// for the test of that crash (RUNNER_TEST_CRASH=after-submit).
var crashAfterSubmit = os.Getenv("RUNNER_TEST_CRASH") == "after-submit"

// submitLocked submits a job for t, recording it before and after; the
// caller holds the record lock. replace says whether a record exists.
func (x *Executor) submitLocked(ctx context.Context, t *runner.Task, attempt int, exclude []string, replace bool) (claim, error) {
	rec := x.newRecord(t, attempt, exclude)
	if replace {
		if err := x.rec.write(rec); err != nil {
			return claim{}, err
		}
	} else if err := x.rec.create(rec); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return claim{}, errRace
		}
		return claim{}, err
	}
	// Not cut short by Ctrl-C: the job this submits is then cancelled by
	// Close, rather than left in an unknown state.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	defer cancel()
	spec := x.jobSpec(t, exclude)
	id, err := x.submit(sctx, t, spec)
	if err != nil && len(exclude) > 0 {
		// Excluding the failed nodes may leave none that can run it (a
		// one-node partition): try them again.
		t.Events.Note(fmt.Sprintf("%s: cannot submit without node %s (%v); submitting with it", t.ID, strings.Join(exclude, ","), err))
		spec.Exclude = nil
		id, err = x.submit(sctx, t, spec)
	}
	if err != nil {
		x.rec.remove(t.Key)
		return claim{}, err
	}
	if crashAfterSubmit {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	rec.State, rec.Job = stateSubmitted, id
	if err := x.rec.write(rec); err != nil {
		// A job nobody can find again must not run.
		x.q.Cancel(sctx, []string{id})
		x.rec.remove(t.Key)
		return claim{}, err
	}
	x.own(t.Key, id)
	return claim{job: id, owned: true, attempt: attempt, exclude: exclude, submitted: time.Now()}, nil
}

// submit submits spec, retrying transient failures; before each retry it
// looks for the job by name, since a submission that timed out may have
// queued it.
func (x *Executor) submit(ctx context.Context, t *runner.Task, spec *JobSpec) (string, error) {
	for try := 1; ; try++ {
		id, err := x.q.Submit(ctx, spec)
		if err == nil {
			return id, nil
		}
		var te *TransientError
		if !errors.As(err, &te) || try >= submitTries || ctx.Err() != nil {
			return "", err
		}
		wait := time.Duration(1<<try) * time.Second
		t.Events.Note(fmt.Sprintf("%s: submission failed (%v); trying again in %v", t.ID, err, wait))
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(wait):
		}
		if j, found, qerr := x.findJob(ctx, t.Key); qerr == nil && found {
			return j.ID, nil
		}
	}
}

// findJob looks for a live job of key k by its name.
func (x *Executor) findJob(ctx context.Context, k artifacts.Key) (JobStatus, bool, error) {
	sts, err := x.q.Query(ctx, []string{x.jobName(k)})
	if err != nil {
		return JobStatus{}, false, err
	}
	var best JobStatus
	found := false
	for _, s := range sts {
		if s.State.Live() && x.commentKey(s.Comment) == k && (!found || jobIDLess(best.ID, s.ID)) {
			best, found = s, true
		}
	}
	return best, found, nil
}

// jobIDLess orders job ids numerically where they are numbers.
func jobIDLess(a, b string) bool {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	if aerr == nil && berr == nil {
		return ai < bi
	}
	return a < b
}

// own marks job id of key k as this run's; disown ends that.
func (x *Executor) own(k artifacts.Key, id string) {
	x.mu.Lock()
	x.owned[k] = id
	x.mu.Unlock()
}

func (x *Executor) disown(k artifacts.Key) {
	x.mu.Lock()
	delete(x.owned, k)
	x.mu.Unlock()
}

// follow waits for c's job to settle, resubmitting it after node failures.
func (x *Executor) follow(ctx context.Context, t *runner.Task, c claim) runner.TaskResult {
	f := &follower{x: x, t: t, c: c, st: followState{adopted: c.adopted, attempt: c.attempt}}
	f.announce(c.adopted || !c.owned)
	w := x.tr.add(t.Key, x.jobName(t.Key), c.job)
	defer x.tr.remove(w)
	for {
		select {
		case <-ctx.Done():
			return runner.TaskResult{Err: ctx.Err(), Where: f.where()}
		case <-w.notify:
		}
		l := w.take()
		f.observe(l)
		switch decide(l, &f.st, x.opts.Retries, x.opts.LatencyWait) {
		case keepWaiting, graceWait:
			continue
		case succeed:
			return f.succeeded(l)
		case fail:
			f.start()
			if f.c.owned {
				x.settle(t.Key, f.c.job, false)
			}
			return x.failure(t, f.c, l, f.where(), f.node)
		case resubmit, resubmitFresh:
			if res, done := f.resubmit(ctx, l); done {
				return res
			}
			w.retarget(f.c.job)
			f.announce(!f.c.owned)
		}
	}
}

// follower is one task's job being followed, across resubmissions.
type follower struct {
	x       *Executor
	t       *runner.Task
	c       claim
	st      followState
	started bool   // Running was called (once per task, whatever the attempts)
	reason  string // the queue's last reason for waiting
	node    string // where the job runs, once known
}

// where names the job ("slurm job 42 on node1").
func (f *follower) where() string {
	s := fmt.Sprintf("%s job %s", f.x.q.Name(), f.c.job)
	if f.node != "" {
		s += " on " + f.node
	}
	return s
}

// announce reports the job as queued, adopted or not.
func (f *follower) announce(adopted bool) {
	queued := f.where()
	if adopted {
		queued += ", adopted"
	}
	f.t.Events.Queued(queued)
}

// start reports the task running, once.
func (f *follower) start() {
	if !f.started {
		f.started = true
		f.t.Events.Running()
	}
}

// observe reports what a look at the queue shows: the node, a new reason
// for waiting, the start.
func (f *follower) observe(l look) {
	if !l.listed {
		return
	}
	if l.status.Node != "" {
		f.node = l.status.Node
	}
	switch l.status.State {
	case Queued:
		if r := l.status.Reason; r != f.reason && r != "" && r != "None" {
			f.reason = r
			f.t.Events.Waiting(r)
		}
	case Running:
		f.start()
	}
}

// succeeded settles a job whose result is stored.
func (f *follower) succeeded(l look) runner.TaskResult {
	f.start()
	f.x.settle(f.t.Key, f.c.job, true)
	if !f.c.submitted.IsZero() {
		f.x.addTimes(f.c.submitted, l)
	}
	return runner.TaskResult{
		Digest: l.record.Digest, Duration: time.Duration(l.record.Seconds * float64(time.Second)),
		Where: f.where(), Cached: !f.c.owned,
	}
}

// resubmit submits the job again after a node failure (excluding the
// node), or afresh for an adopted job; done is set, with the result, when
// it gives up.
func (f *follower) resubmit(ctx context.Context, l look) (runner.TaskResult, bool) {
	c := f.c
	fresh := f.st.adopted
	var exclude []string
	attempt := 1
	if !fresh {
		attempt = c.attempt + 1
		exclude = c.exclude
		if f.node != "" && !slices.Contains(exclude, f.node) {
			exclude = append(append([]string(nil), exclude...), f.node)
		}
	}
	why := fmt.Sprintf("%s job %s ended %s", f.x.q.Name(), c.job, l.status.Detail())
	if !l.listed {
		why = fmt.Sprintf("%s job %s left the queue without its result", f.x.q.Name(), c.job)
	}
	nc, res, done := f.x.resubmit(ctx, f.t, c, attempt, exclude, fresh, why)
	if done {
		return res, true
	}
	f.c, f.node, f.reason = nc, "", ""
	f.st = followState{attempt: nc.attempt}
	return runner.TaskResult{}, false
}

// resubmit submits t again after c's job ended without its result, under
// the record lock, unless another run already did (then it follows that
// job) or the key got cached meanwhile.
func (x *Executor) resubmit(ctx context.Context, t *runner.Task, c claim, attempt int, exclude []string, fresh bool, why string) (claim, runner.TaskResult, bool) {
	lock, err := x.rec.lock(ctx, t.Key)
	if err != nil {
		return c, runner.TaskResult{Err: err}, true
	}
	defer lock.Unlock()
	if rec, ok, err := x.resultOf(t.Key, true); err != nil || ok {
		x.settle(t.Key, c.job, true)
		return c, runner.TaskResult{Err: err, Digest: rec.Digest, Duration: time.Duration(rec.Seconds * float64(time.Second))}, true
	}
	r, exists, rerr := x.rec.read(t.Key)
	if exists && rerr == nil && r.State == stateSubmitted && r.Job != c.job {
		// Another run resubmitted it first.
		x.disown(t.Key)
		return claim{job: r.Job, owned: r.Run == x.run, attempt: r.Attempt, exclude: r.Exclude}, runner.TaskResult{}, false
	}
	if !exists && !fresh {
		// The run owning it gave up: fail as it did.
		x.disown(t.Key)
		return c, runner.TaskResult{Err: fmt.Errorf("%s; the run owning it gave up", why)}, true
	}
	if fresh {
		t.Events.Note(fmt.Sprintf("%s: %s before this run adopted it; submitting it again", t.ID, why))
	} else {
		t.Events.Note(fmt.Sprintf("%s: %s; resubmitting (attempt %d of %d)", t.ID, why, attempt, x.opts.Retries+1))
	}
	nc, err := x.submitLocked(ctx, t, attempt, exclude, exists)
	if err != nil {
		x.disown(t.Key)
		return c, runner.TaskResult{Err: err}, true
	}
	return nc, runner.TaskResult{}, false
}

// settle ends this run's part in job id of key k: it removes the record
// when it still names the job (under the record lock; a record naming
// another job belongs to someone else), and on success the job's log.
func (x *Executor) settle(k artifacts.Key, id string, ok bool) {
	x.disown(k)
	if lock, err := x.rec.lock(context.Background(), k); err == nil {
		if r, exists, err := x.rec.read(k); err == nil && exists && r.Job == id {
			x.rec.remove(k)
			// Removed while held: a process waiting for it finds it gone
			// once it gets it, and locks a new file (artifacts.LockPath).
			os.Remove(x.rec.lockPath(k))
		}
		lock.Unlock()
	}
	if ok {
		os.Remove(x.rec.logFile(k, id))
	}
}

// failure builds the result of a job that failed for good.
func (x *Executor) failure(t *runner.Task, c claim, l look, where, node string) runner.TaskResult {
	log := x.rec.logFile(t.Key, c.job)
	res := runner.TaskResult{Where: where}
	if _, err := os.Stat(log); err == nil {
		res.LogFile = log
	}
	for _, line := range runner.TailLines(log, 20) {
		res.LogTail = append(res.LogTail, strings.TrimPrefix(line, "\t"))
	}
	lw := x.opts.LatencyWait.Round(100 * time.Millisecond)
	var msg string
	switch {
	case !l.listed:
		msg = fmt.Sprintf("%s left the queue without storing its result (looked for it in the cache for %v; raise --%s-latency-wait if the shared file system is slow)", where, lw, x.q.Name())
	case l.status.State == Succeeded:
		msg = fmt.Sprintf("%s: %s, but its result did not appear in the cache within %v (raise --%s-latency-wait if the shared file system is slow)", where, l.status.Detail(), lw, x.q.Name())
	case l.status.State == NodeFailed || l.status.State == Preempted:
		msg = fmt.Sprintf("%s: %s (attempt %d; --%s-retries %d)", where, l.status.Detail(), c.attempt, x.q.Name(), x.opts.Retries)
	case l.status.State == Failed:
		msg = fmt.Sprintf("%s: %s", where, l.status.Detail())
		if e := stageError(log, t.ID); e != "" {
			msg += ": " + e
		}
	default:
		// A limit or a cancellation: what the stage said of being
		// stopped ("context canceled") adds nothing.
		msg = fmt.Sprintf("%s: %s", where, l.status.Detail())
	}
	if l.listed && l.status.State == Failed && res.LogFile == "" {
		n := node
		if n == "" {
			n = "its node"
		}
		msg += fmt.Sprintf("; it wrote no output (%s): the node could not start it — are the cache %s and the runner binary on a file system %s sees?", log, x.store.Dir(), n)
	}
	res.Err = errors.New(msg)
	return res
}

// stageError finds the error `runner exec-stage` printed in a job's log,
// without the prefixes that name the command and the stage (the failure
// line names the stage already).
func stageError(log, id string) string {
	for _, line := range runner.TailLines(log, 200) {
		if e, ok := strings.CutPrefix(line, "runner exec-stage: "); ok {
			return strings.TrimPrefix(e, id+": ")
		}
	}
	return ""
}

func (x *Executor) addTimes(submitted time.Time, l look) {
	ended := l.record.Created
	started := ended.Add(-time.Duration(l.record.Seconds * float64(time.Second)))
	x.mu.Lock()
	x.times = append(x.times, jobTimes{submitted: submitted, started: started, ended: ended, seen: l.at})
	x.mu.Unlock()
}

// Close stops following jobs. When the run stopped early it cancels the
// jobs this run owns, in one call, and removes their records, unless
// Options.Detach leaves them for the next run to adopt. It then shows the
// overheads of the jobs that succeeded and releases the run.
func (x *Executor) Close(cancelled bool, note func(string)) error {
	x.tr.close()
	x.mu.Lock()
	owned := make(map[artifacts.Key]string, len(x.owned))
	for k, id := range x.owned {
		owned[k] = id
	}
	x.mu.Unlock()
	var err error
	if cancelled && len(owned) > 0 {
		ids := make([]string, 0, len(owned))
		for _, id := range owned {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return jobIDLess(ids[i], ids[j]) })
		if x.opts.Detach {
			note(fmt.Sprintf("%s: left %d jobs in the queue (%s); the next run adopts them, `runner %s cancel` cancels them", x.q.Name(), len(ids), strings.Join(ids, " "), x.q.Name()))
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = x.q.Cancel(ctx, ids)
			cancel()
			if err != nil {
				err = fmt.Errorf("%s: cancel jobs %s: %w", x.q.Name(), strings.Join(ids, " "), err)
			} else {
				note(fmt.Sprintf("%s: cancelled %d jobs (%s)", x.q.Name(), len(ids), strings.Join(ids, " ")))
			}
			for k, id := range owned {
				x.settle(k, id, false)
			}
		}
	}
	if line := x.overheads(); line != "" {
		note(line)
	}
	x.runLock.Unlock()
	os.Remove(x.rec.runLock(x.run))
	return err
}

// overheads describes the waiting the queue added to the jobs this run saw
// succeed: from submission to the stage's start, and from the stage's end
// to the moment the executor saw its result.
func (x *Executor) overheads() string {
	x.mu.Lock()
	ts := append([]jobTimes(nil), x.times...)
	x.mu.Unlock()
	if len(ts) == 0 {
		return ""
	}
	var start, seen []float64
	for _, t := range ts {
		start = append(start, t.started.Sub(t.submitted).Seconds())
		seen = append(seen, t.seen.Sub(t.ended).Seconds())
	}
	return fmt.Sprintf("%s: %d jobs; submit→start median %.1f s (max %.1f s), end→seen median %.1f s (max %.1f s), %d queue queries",
		x.q.Name(), len(ts), median(start), slices.Max(start), median(seen), slices.Max(seen), x.tr.queries())
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
