package runner

import (
	"fmt"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/stage"
)

// Outcome is what happened to one stage instance in a run.
type Outcome int

// Outcomes. Skipped stages count as failed in the summary: they produced no
// artifact because an input failed or the run was cancelled first.
const (
	Cached  Outcome = iota + 1 // served from the cache
	Ran                        // computed (or re-checked) now
	Failed                     // its own Run failed, or its key could not be computed
	Skipped                    // not started: an input failed, or the run was cancelled
)

// String names the outcome as run output shows it.
func (o Outcome) String() string {
	switch o {
	case Cached:
		return "cached"
	case Ran:
		return "ran"
	case Failed:
		return "FAILED"
	case Skipped:
		return "skipped"
	}
	return "?"
}

// Result is the outcome of one stage instance in a run, filled in as the
// scheduler learns it; Outcome is set once, when the instance finishes.
type Result struct {
	Spec    string  // the spec's name
	ID      string  // the instance id
	Kind    string  // the stage kind
	Outcome Outcome // what happened
	// Key and Digest are set when known; Dir is the artifact directory.
	Key    artifacts.Key
	Digest artifacts.Digest
	Dir    string
	// Reasons say why the stage ran ("param lr 0.01 → 0.005", "new", ...).
	Reasons []string
	// Err is why the stage failed or was skipped.
	Err error
	// LogTail holds the last lines of a failed stage's log, and LogFile
	// where the whole log is kept.
	LogTail []string
	LogFile string
	// Duration is how long the stage ran (zero when cached).
	Duration time.Duration
	// Rechecked is set when the stage was recomputed to compare digests; a
	// mismatch makes it Failed.
	Rechecked bool
	// Where names the cluster job that ran the stage ("slurm job 42 on
	// node1"); empty when it ran in this process.
	Where string
}

// Summary is the outcome of a run.
type Summary struct {
	// Results holds one entry per stage instance, in plan order.
	Results []Result
	// Ran, Cached, Failed and Skipped count the outcomes.
	Ran, Cached, Failed, Skipped int
	Elapsed                      time.Duration // wall time of the whole run
	// Interrupted is set when the run was cancelled from outside (Ctrl-C).
	Interrupted bool
}

// String is the run's last line: "N stages: X ran, Y cached, Z failed (S s)",
// where Z counts skipped stages too, so X+Y+Z = N.
func (s Summary) String() string {
	return fmt.Sprintf("%d stages: %d ran, %d cached, %d failed (%.1f s)",
		len(s.Results), s.Ran, s.Cached, s.Failed+s.Skipped, s.Elapsed.Seconds())
}

// OK reports whether every stage has its artifact.
func (s Summary) OK() bool { return s.Failed+s.Skipped == 0 && !s.Interrupted }

// Reporter shows a run as it happens. Its methods are called from several
// goroutines.
type Reporter interface {
	// Started is called when a stage begins to run; the stage reports its
	// progress to the returned Progress.
	Started(id string) stage.Progress
	// Done is called once per stage instance with its outcome.
	Done(r Result)
	// Note shows a message that belongs to no single outcome, such as
	// waiting for a lock.
	Note(msg string)
	// Close ends the display; nothing is shown after it.
	Close()
}

// discardReporter shows nothing.
type discardReporter struct{}

func (discardReporter) Started(string) stage.Progress { return stage.Discard }
func (discardReporter) Done(Result)                   {}
func (discardReporter) Note(string)                   {}
func (discardReporter) Close()                        {}
