package cluster

import (
	"context"
	"fmt"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
)

// Queue is a batch system's job queue as the executor uses it: submit one
// job, query the jobs of this cache in one call, cancel some. Package slurm
// implements it with sbatch, squeue and scancel; a Kubernetes or Ray
// executor implements these three methods and reuses everything else in
// this package (records, adoption, polling, the outcome table).
//
// Its methods are called from several goroutines at once.
type Queue interface {
	// Name names the system in messages ("slurm") and the directory of
	// the cache that holds its records (<cache>/<name>/).
	Name() string
	// Submit queues the job and returns its id. An error means the job
	// was not queued, as far as the queue could tell: the executor then
	// looks for it by name before submitting again (a timed-out submission
	// may have queued it all the same). Errors that may pass if tried
	// again are *TransientError.
	Submit(ctx context.Context, j *JobSpec) (id string, err error)
	// Query returns the state of every job the queue still lists whose
	// name is one of names, finished jobs included, in as few calls to
	// the system as its command-line limits allow (one, normally). A job
	// it no longer lists is simply absent.
	Query(ctx context.Context, names []string) ([]JobStatus, error)
	// Cancel cancels the jobs, in one call; jobs already finished are
	// not an error.
	Cancel(ctx context.Context, ids []string) error
}

// Checker is implemented by queues that can check resources before a run
// (partitions that do not exist, flags the runner sets itself), so that a
// mistake fails the run at once in one line instead of at each job.
type Checker interface {
	Check(ctx context.Context, rules []pipelines.ResourceRule, overrides pipelines.Resources) error
}

// NodeLister is implemented by queues that can list the hosts their jobs
// may run on, for the check that the cache is visible to them.
type NodeLister interface {
	Nodes(ctx context.Context) ([]string, error)
}

// JobSpec is one job to submit: a shell script that runs one stage.
type JobSpec struct {
	// Name tags the job: the cache id and a prefix of the key
	// ("runner-1a2b3c4d-0123456789abcdef"). Jobs are found by name.
	Name string
	// Comment carries the cache id, the whole key and the stage, for
	// humans and for the check that a job found by name is this key's.
	Comment string
	// Key is the stage key the job computes; Stage and Spec name it.
	Key         artifacts.Key
	Stage, Spec string
	// Script is the job's shell script (it starts with #!/bin/sh).
	Script string
	// Dir is the job's working directory: the cache, which every node
	// must see.
	Dir string
	// Log is the file that receives the job's output and errors; "%j" in
	// it stands for the job id.
	Log string
	// Resources are the job's resources: the spec's, then the command
	// line's overrides.
	Resources pipelines.Resources
	// Exclude lists nodes the job must not run on (those where an earlier
	// attempt failed).
	Exclude []string
}

// State is a job's state in terms common to batch systems.
type State int

// States. Queued and Running are live; the others are final.
const (
	Unknown     State = iota // not reported, or a state this package does not know
	Queued                   // waiting to start (pending, requeued, held)
	Running                  // started, or completing
	Succeeded                // exited 0
	Failed                   // exited non-zero, or could not start
	TimedOut                 // killed at its time limit
	OutOfMemory              // killed at its memory limit
	Cancelled                // cancelled by someone
	NodeFailed               // its node failed, or failed to boot
	Preempted                // preempted and not requeued
)

var stateNames = [...]string{"unknown", "queued", "running", "succeeded", "failed", "timed out", "out of memory", "cancelled", "node failed", "preempted"}

// String names the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Live reports whether a job in state s may still run.
func (s State) Live() bool { return s == Queued || s == Running }

// JobStatus is what the queue says of one job.
type JobStatus struct {
	ID    string // the job id
	Name  string // the job name
	State State  // the common state
	// Raw is the system's own state name ("NODE_FAIL"), Reason its reason
	// ("Priority", "NonZeroExitCode"), ExitCode "exit:signal" once known.
	Raw, Reason, ExitCode string
	// Node is where the job runs or ran (empty while it waits).
	Node string
	// Comment is the job's comment, as submitted.
	Comment string
}

// Detail formats what the queue says of a finished job, in its own terms,
// for failure messages: "JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0".
func (s JobStatus) Detail() string {
	out := "JobState=" + s.Raw
	if s.Reason != "" {
		out += " Reason=" + s.Reason
	}
	if s.ExitCode != "" {
		out += " ExitCode=" + s.ExitCode
	}
	return out
}

// TransientError is a submission or query error that may pass if tried
// again (the controller is busy or restarting).
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }
