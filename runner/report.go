package runner

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hessian-spectra/runner/stage"
)

// progress is the state of one running stage's current unit of work, shared
// by the stage (which advances it) and the display (which reads it).
type progress struct {
	mu      sync.Mutex
	id      string
	now     func() time.Time
	started time.Time // of the stage
	what    string
	total   int
	done    int
	unitAt  time.Time // start of the current unit
	unitEnd time.Time // its end, once finished (freezes the rate)
	onStep  func(p *progress, ev progressEvent)
}

// progressEvent says which call of stage.Progress changed a progress.
type progressEvent int

const (
	unitStarted progressEvent = iota
	unitAdvanced
	unitFinished
)

func newProgress(id string, now func() time.Time) *progress {
	if now == nil {
		now = time.Now
	}
	return &progress{id: id, now: now, started: now()}
}

func (p *progress) Start(what string, total int) {
	p.mu.Lock()
	p.what, p.total, p.done, p.unitAt, p.unitEnd = what, total, 0, p.now(), time.Time{}
	p.mu.Unlock()
	if p.onStep != nil {
		p.onStep(p, unitStarted)
	}
}

func (p *progress) Advance(n int) {
	p.mu.Lock()
	p.done += n
	p.mu.Unlock()
	if p.onStep != nil {
		p.onStep(p, unitAdvanced)
	}
}

func (p *progress) Finish() {
	p.mu.Lock()
	if p.total > 0 {
		p.done = p.total
	}
	p.unitEnd = p.now()
	p.mu.Unlock()
	if p.onStep != nil {
		p.onStep(p, unitFinished)
	}
}

// snapshot describes the current unit: "epoch 3/50  58% 117/200  4.2/s  ETA 20s",
// with a bar of barWidth cells when barWidth > 0.
func (p *progress) snapshot(barWidth int) string {
	p.mu.Lock()
	what, total, done, at, end := p.what, p.total, p.done, p.unitAt, p.unitEnd
	p.mu.Unlock()
	if end.IsZero() {
		end = p.now()
	}
	var b strings.Builder
	if what == "" {
		fmt.Fprintf(&b, "running %s", fmtDur(end.Sub(p.started)))
		return b.String()
	}
	b.WriteString(what)
	el := end.Sub(at).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	if total > 0 {
		frac := min(1, float64(done)/float64(total))
		if barWidth > 0 {
			full := int(frac * float64(barWidth))
			b.WriteString(" [" + strings.Repeat("#", full) + strings.Repeat(".", barWidth-full) + "]")
		}
		fmt.Fprintf(&b, " %3.0f%% %d/%d", 100*frac, done, total)
	} else {
		fmt.Fprintf(&b, " %d", done)
	}
	if rate > 0 {
		fmt.Fprintf(&b, " %s/s", fmtRate(rate))
		if total > 0 && done < total {
			fmt.Fprintf(&b, " ETA %s", fmtDur(time.Duration(float64(total-done)/rate*float64(time.Second))))
		}
	}
	return b.String()
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// maxSkippedLines bounds how many skipped stages are listed one by one.
const maxSkippedLines = 10

// outcomeLines formats the outcome of a stage as the run output shows it.
func outcomeLines(r Result, verbose bool) []string {
	switch r.Outcome {
	case Cached:
		if !verbose {
			return nil
		}
		return []string{fmt.Sprintf("cached   %s", r.ID)}
	case Ran:
		what := "ran"
		if r.Rechecked {
			what = "checked" // recomputed: same digest
		}
		line := fmt.Sprintf("%-8s %s  %.1f s", what, r.ID, r.Duration.Seconds())
		if len(r.Reasons) > 0 {
			line += "  (" + strings.Join(r.Reasons, "; ") + ")"
		}
		if r.Where != "" {
			line += "  [" + r.Where + "]"
		}
		return []string{line}
	case Failed:
		out := []string{fmt.Sprintf("FAILED   %s: %v", r.ID, r.Err)}
		if len(r.LogTail) > 0 {
			out = append(out, "  log tail:")
			for _, l := range r.LogTail {
				out = append(out, "  | "+l)
			}
		}
		if r.LogFile != "" {
			out = append(out, "  full log: "+r.LogFile)
		}
		return out
	case Skipped:
		return []string{fmt.Sprintf("skipped  %s: %v", r.ID, r.Err)}
	}
	return nil
}

// queuedLine is the line shown when a stage is handed to a cluster queue as
// job, in the column layout of the outcome lines.
func queuedLine(id, job string) string { return fmt.Sprintf("queued   %s  (%s)", id, job) }

// waitingLine is the progress line of a queued stage that waits, with the
// queue's reason ("Priority", "Resources").
func waitingLine(id, reason string) string { return fmt.Sprintf("  %s: pending (%s)", id, reason) }

// PlainReporter prints one line per event, for log files, pipes and batch
// jobs: a line when a stage starts and ends, and progress lines sparingly —
// at most one every 30 s per stage while a unit of work (an epoch, a Lanczos
// run) goes on, and one when a unit that took a second or more finishes
// (the end of each training epoch). Stages that take under a second print
// their start and outcome only.
type PlainReporter struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	skipped int
	now     func() time.Time
	last    map[string]time.Time // each running stage's last progress line
}

// Intervals of PlainReporter's progress lines.
const (
	plainEvery   = 30 * time.Second // longest silence while a unit goes on
	plainMinUnit = time.Second      // shortest unit whose end is printed
)

// NewPlainReporter prints to w; verbose also lists cached stages.
func NewPlainReporter(w io.Writer, verbose bool) *PlainReporter {
	return &PlainReporter{w: w, verbose: verbose, now: time.Now, last: map[string]time.Time{}}
}

// Started prints the stage's start and returns its progress sink.
func (r *PlainReporter) Started(id string) stage.Progress {
	r.mu.Lock()
	fmt.Fprintf(r.w, "run      %s\n", id)
	r.last[id] = r.now()
	r.mu.Unlock()
	p := newProgress(id, r.now)
	p.onStep = r.step
	return p
}

func (r *PlainReporter) step(p *progress, ev progressEvent) {
	p.mu.Lock()
	unit := p.unitEnd.Sub(p.unitAt)
	p.mu.Unlock()
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev {
	case unitFinished:
		if unit < plainMinUnit {
			return
		}
	case unitAdvanced:
		if now.Sub(r.last[p.id]) < plainEvery {
			return
		}
	default:
		return
	}
	r.last[p.id] = now
	fmt.Fprintf(r.w, "  %s: %s\n", p.id, p.snapshot(0))
}

// Done prints the outcome.
func (r *PlainReporter) Done(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, res.ID)
	if res.Outcome == Skipped {
		r.skipped++
		if r.skipped > maxSkippedLines {
			return
		}
	}
	for _, l := range outcomeLines(res, r.verbose) {
		fmt.Fprintln(r.w, l)
	}
}

// Note prints msg.
func (r *PlainReporter) Note(msg string) {
	r.mu.Lock()
	fmt.Fprintln(r.w, msg)
	r.mu.Unlock()
}

// Close prints how many skipped stages were not listed.
func (r *PlainReporter) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.skipped > maxSkippedLines {
		fmt.Fprintf(r.w, "skipped  %d more stages\n", r.skipped-maxSkippedLines)
	}
}

// TerminalReporter draws one status line per running stage (bar, rate, ETA)
// below the event lines, redrawing a few times a second.
type TerminalReporter struct {
	mu      sync.Mutex
	w       io.Writer
	width   func() int
	verbose bool
	running []*progress
	drawn   int // status lines currently on screen
	skipped int
	stop    chan struct{}
	stopped chan struct{}
}

// terminalRefresh is the redraw interval of the status lines.
const terminalRefresh = 150 * time.Millisecond

// NewTerminalReporter draws on the terminal w, whose width width returns.
func NewTerminalReporter(w io.Writer, width func() int, verbose bool) *TerminalReporter {
	t := &TerminalReporter{w: w, width: width, verbose: verbose, stop: make(chan struct{}), stopped: make(chan struct{})}
	go t.loop()
	return t
}

func (t *TerminalReporter) loop() {
	defer close(t.stopped)
	tick := time.NewTicker(terminalRefresh)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.mu.Lock()
			t.redraw(nil)
			t.mu.Unlock()
		}
	}
}

// redraw erases the status lines, prints events, and draws the status
// lines again. t.mu is held.
func (t *TerminalReporter) redraw(events []string) {
	var b strings.Builder
	for i := 0; i < t.drawn; i++ {
		b.WriteString("\x1b[1A\x1b[2K")
	}
	b.WriteString("\r")
	for _, e := range events {
		b.WriteString(e)
		b.WriteString("\n")
	}
	width := 80
	if t.width != nil {
		if w := t.width(); w > 20 {
			width = w
		}
	}
	t.drawn = 0
	for _, p := range t.running {
		line := fmt.Sprintf("  %s  %s", p.id, p.snapshot(20))
		if r := []rune(line); len(r) >= width {
			line = string(r[:width-1])
		}
		b.WriteString(line)
		b.WriteString("\n")
		t.drawn++
	}
	io.WriteString(t.w, b.String())
}

// Started adds a status line for the stage.
func (t *TerminalReporter) Started(id string) stage.Progress {
	p := newProgress(id, nil)
	t.mu.Lock()
	t.running = append(t.running, p)
	t.mu.Unlock()
	return p
}

// Done removes the stage's status line and prints its outcome.
func (t *TerminalReporter) Done(res Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, p := range t.running {
		if p.id == res.ID {
			t.running = append(t.running[:i], t.running[i+1:]...)
			break
		}
	}
	if res.Outcome == Skipped {
		t.skipped++
		if t.skipped > maxSkippedLines {
			return
		}
	}
	lines := outcomeLines(res, t.verbose)
	if res.Outcome == Cached && len(lines) == 0 {
		return
	}
	t.redraw(lines)
}

// Note prints msg above the status lines.
func (t *TerminalReporter) Note(msg string) {
	t.mu.Lock()
	t.redraw([]string{msg})
	t.mu.Unlock()
}

// Close erases the status lines and stops redrawing.
func (t *TerminalReporter) Close() {
	close(t.stop)
	<-t.stopped
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running = nil
	var events []string
	if t.skipped > maxSkippedLines {
		events = append(events, fmt.Sprintf("skipped  %d more stages", t.skipped-maxSkippedLines))
	}
	t.redraw(events)
}
