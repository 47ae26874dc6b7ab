package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/stage"
)

// Executor computes the stages of a run somewhere other than this process.
// The scheduler stays here whatever the executor: it computes keys as
// inputs appear, serves cached stages, and hands each stage that must run
// either to the local executor (a goroutine of this process) or, when the
// Executor accepts it, to the Executor. Package cluster implements one for
// batch systems (Slurm); its Execute submits a job that runs `runner
// exec-stage` and waits for the key's artifact to appear in the cache.
//
// Execute is called from several goroutines at once, never twice at once
// for one key within a run.
type Executor interface {
	// Accepts reports whether the executor computes t; the stages it does
	// not accept run in this process.
	Accepts(t *Task) bool
	// Slots bounds how many accepted stages run at once; Options.Jobs
	// bounds the others.
	Slots() int
	// Execute computes t and returns its outcome once it is known. When
	// ctx is done it returns promptly, with an error; whether work in
	// flight is then stopped is settled by Close.
	Execute(ctx context.Context, t *Task) TaskResult
	// Close is called once, after the run's last Execute returned.
	// cancelled is set when the run stopped early (Ctrl-C, or a failure
	// without --keep-going): work still in flight is stopped, or left to
	// finish if the executor was configured so. note shows messages.
	Close(cancelled bool, note func(string)) error
}

// Task is one stage computation: what the scheduler hands an executor (the
// local one, or a cluster's) and what Exec runs for `runner exec-stage`.
type Task struct {
	// Key is the stage key to compute; ID and Spec name the instance that
	// asked for it.
	Key      artifacts.Key
	ID, Spec string
	// Kind is the stage's kind.
	Kind *stage.Kind
	// Desc is the encoded job description; the executor stores it under
	// Key (Store.WriteDesc) before the stage runs, for `runner exec-stage`
	// reads it from there.
	Desc []byte
	// Inputs are the digests of the input artifacts.
	Inputs []artifacts.Digest
	// Resources are what the spec asks for this instance (never part of
	// the key).
	Resources pipelines.Resources
	// Backend is the compute backend requested for the run.
	Backend string
	// Forced is set by --force: compute even if cached. Recheck is set by
	// --recheck: recompute a cached stage and compare digests.
	Forced, Recheck bool
	// Events receives what happens to the task, for progress lines (nil
	// under Exec, which has no scheduler).
	Events Events

	// job is what the key describes (Desc decoded) and params the
	// resolved params the stage gets.
	job    *Job
	params stage.Params
	// prior is the cached artifact the stage may start from (stage.Reuse),
	// found by the look-up or, locally, once the key is locked.
	prior *stage.Prior
}

// Events receives what happens to a task while an executor computes it; the
// scheduler turns them into progress lines of the same form as local runs.
type Events interface {
	// Queued says the task was handed to a queue as job (e.g. "slurm job
	// 42"), or that a job already queued for its key was adopted.
	Queued(job string)
	// Waiting says why a queued task does not run yet (the queue's
	// reason, e.g. "Priority"); it is called when the reason changes.
	Waiting(reason string)
	// Running says the task started; the stage's progress goes to the
	// returned Progress when the executor can see it.
	Running() stage.Progress
	// Note shows a message about the task.
	Note(msg string)
}

// TaskResult is what an executor reports of one Task (and runJob of one
// run). The scheduler turns it into the instance's Result, once.
type TaskResult struct {
	// Digest is the key's artifact, set on success.
	Digest artifacts.Digest
	// Cached is set when the key turned out to be computed already (by
	// another runner) and nothing ran.
	Cached bool
	// Duration is how long the stage ran.
	Duration time.Duration
	// Err is why the stage failed.
	Err error
	// LogTail holds the last lines of a failed stage's log, LogFile where
	// the whole log is kept.
	LogTail []string
	LogFile string
	// Where names the job that ran the stage ("slurm job 42 on node1");
	// empty for the local executor.
	Where string
	// Damaged is set when the key's cached artifact was found damaged, so
	// that the stage was computed again.
	Damaged *artifacts.DamagedError
}

// localExecutor runs stages in goroutines of this process, holding each
// key's lock while its stage runs.
type localExecutor struct {
	store *artifacts.Store
}

// Accepts accepts every stage.
func (localExecutor) Accepts(*Task) bool { return true }

// Slots is unused: Options.Jobs bounds local stages.
func (localExecutor) Slots() int { return 0 }

// Close has nothing to stop: Execute returns only once its stage has.
func (localExecutor) Close(bool, func(string)) error { return nil }

// Execute takes the key's lock, serves the key if another runner computed it
// meanwhile, and otherwise runs the stage and stores its artifact.
func (x localExecutor) Execute(ctx context.Context, t *Task) TaskResult {
	store := x.store
	lock, err := store.LockKey(ctx, t.Key, func() {
		t.Events.Note(fmt.Sprintf("%s: waiting for another runner computing the same stage (key %s)", t.ID, t.Key.Short()))
	})
	if err != nil {
		return TaskResult{Err: err}
	}
	defer lock.Unlock()
	var recheck artifacts.Digest
	var damaged *artifacts.DamagedError
	if !t.Forced {
		rec, ok, err := store.Get(t.Key)
		switch {
		case errors.As(err, &damaged):
			// Damaged since the look-up, or found so by it: recompute, and
			// Put replaces the damaged object.
		case err != nil:
			return TaskResult{Err: err}
		case ok && t.Recheck:
			recheck = rec.Digest
		case ok:
			// Another runner (or goroutine) computed it while we waited.
			return TaskResult{Cached: true, Digest: rec.Digest}
		}
	}
	if err := store.WriteDesc(t.Key, t.Desc); err != nil {
		return TaskResult{Err: fmt.Errorf("store job description: %w", err)}
	}
	if t.prior == nil && !t.Forced && !t.Recheck {
		// A candidate may have been stored since the look-up (by this run).
		t.prior = findPrior(store, t.Kind, t.job, t.params)
	}
	res := runJob(ctx, store, t, recheck, t.Events.Running(), "local")
	res.Damaged = damaged
	return res
}

// nodeEvents reports a node's task events through the run's Reporter.
type nodeEvents struct {
	id  string
	rep Reporter
}

func (ev nodeEvents) Queued(job string)       { ev.rep.Note(queuedLine(ev.id, job)) }
func (ev nodeEvents) Waiting(reason string)   { ev.rep.Note(waitingLine(ev.id, reason)) }
func (ev nodeEvents) Running() stage.Progress { return ev.rep.Started(ev.id) }
func (ev nodeEvents) Note(msg string)         { ev.rep.Note(msg) }

// task returns the Task of n, whose key is known.
func (s *scheduler) task(n *node) (*Task, error) {
	if n.task != nil {
		return n.task, nil
	}
	desc, err := encodeJob(n.job)
	if err != nil {
		return nil, fmt.Errorf("encode job description: %w", err)
	}
	t := &Task{
		Key: n.res.Key, ID: n.inst.ID, Spec: n.pipe.Name, Kind: n.inst.Stage.Kind, Desc: desc,
		Resources: n.pipe.ResourcesFor(n.inst), Backend: s.e.opts.Backend,
		Forced: n.forced, Recheck: n.recheck,
		Events: nodeEvents{id: n.inst.ID, rep: s.rep},
		job:    n.job, params: n.inst.Params, prior: n.prior,
	}
	for _, d := range n.deps {
		t.Inputs = append(t.Inputs, d.res.Digest)
	}
	n.task = t
	return t, nil
}

// TailLines returns the last n lines of the file at path (none when it
// cannot be read), as failed stages show their logs.
func TailLines(path string, n int) []string { return tailLines(path, n) }
