package cluster

import (
	"time"

	"github.com/hessian-spectra/runner/artifacts"
)

// verdict is what the executor does about a followed job after one look at
// the queue and the cache.
type verdict int

const (
	keepWaiting   verdict = iota // the job is queued or running (or the queue did not answer)
	succeed                      // the key's artifact is in the cache
	graceWait                    // the job left the queue without its result: look again until the latency wait ends
	fail                         // the stage failed
	resubmit                     // the node failed: submit again elsewhere (attempt+1)
	resubmitFresh                // the job ended before this run adopted it: submit anew (attempt 1)
)

var verdictNames = [...]string{"keep waiting", "succeed", "grace wait", "fail", "resubmit", "resubmit fresh"}

func (v verdict) String() string { return verdictNames[v] }

// look is one look at a followed job: what the queue said and whether the
// cache holds the key's artifact.
type look struct {
	queried bool             // the queue answered
	listed  bool             // … and lists the job
	status  JobStatus        // … in this state
	present bool             // the key's artifact is in the cache
	record  artifacts.Record // … with this record
	at      time.Time        // when
}

// followState is what the executor remembers of a followed job between
// looks.
type followState struct {
	// adopted is set while a job adopted from a run that died has not been
	// seen alive: if it already ended, it ended for that run, and this run
	// submits the key anew instead of failing.
	adopted bool
	// attempt is the job's attempt (1 for the first submission).
	attempt int
	// goneSince is when the job was first seen out of the queue without
	// its result; zero while it is queued or running.
	goneSince time.Time
}

// decide is the outcome table. The cache is the truth: a key whose
// artifact is stored has succeeded whatever the queue says. Otherwise:
//
//	queue says                       verdict
//	queued, running (or no answer)   keep waiting
//	node failed, preempted           resubmit while attempt ≤ retries, then fail
//	failed, timed out, out of        fail (a stage error, a limit or a person's
//	  memory, cancelled                decision: trying again would not help)
//	succeeded, or no longer listed   look again until latencyWait has passed
//	  (or a state not known here)      since it left the queue, then fail
//
// A job adopted from a run that died, which had already ended when this run
// first saw it, is resubmitted afresh instead of failed (after the same
// latency wait where the table has one): its failure belonged to that run.
func decide(l look, f *followState, retries int, latencyWait time.Duration) verdict {
	if l.present {
		return succeed
	}
	if !l.queried {
		return keepWaiting
	}
	state := Unknown
	if l.listed {
		state = l.status.State
	}
	if state.Live() {
		f.adopted = false
		f.goneSince = time.Time{}
		return keepWaiting
	}
	switch state {
	case NodeFailed, Preempted:
		if f.adopted {
			return resubmitFresh
		}
		if f.attempt <= retries {
			return resubmit
		}
		return fail
	case Failed, TimedOut, OutOfMemory, Cancelled:
		if f.adopted {
			return resubmitFresh
		}
		return fail
	}
	// Succeeded without a result, no longer listed, or unknown: the result
	// may be on its way through a network file system.
	if f.goneSince.IsZero() {
		f.goneSince = l.at
	}
	if l.at.Sub(f.goneSince) < latencyWait {
		return graceWait
	}
	if f.adopted {
		return resubmitFresh
	}
	return fail
}
