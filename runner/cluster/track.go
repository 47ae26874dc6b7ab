package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
)

// tracker asks the queue about every followed job in one query per poll,
// looks for their keys in the cache, and posts what it saw to each job's
// watch. The interval between polls starts at MinPoll and grows by half
// while nothing changes, up to Options.Poll; a change, a new job, or a job
// that left the queue without its result brings it back to MinPoll. A
// failed query is shown and retried; it fails no stage (a result that
// appears in the cache meanwhile is still seen).
type tracker struct {
	x      *Executor
	mu     sync.Mutex
	ws     map[*watch]bool
	nquery int
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
}

// watch is one followed job: its key, name and current id, and the latest
// look at it.
type watch struct {
	key    artifacts.Key
	name   string
	notify chan struct{} // signalled when a look is posted

	mu     sync.Mutex
	job    string
	latest look
	prev   look // the look before, for change detection (tracker only)
}

func newTracker(x *Executor) *tracker {
	t := &tracker{x: x, ws: map[*watch]bool{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	go t.loop()
	return t
}

// add follows job id of key k, named name.
func (t *tracker) add(k artifacts.Key, name, id string) *watch {
	w := &watch{key: k, name: name, job: id, notify: make(chan struct{}, 1)}
	t.mu.Lock()
	t.ws[w] = true
	t.mu.Unlock()
	t.poke()
	return w
}

func (t *tracker) remove(w *watch) {
	t.mu.Lock()
	delete(t.ws, w)
	t.mu.Unlock()
}

// poke asks for a poll soon.
func (t *tracker) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// close stops the tracker and waits for it.
func (t *tracker) close() {
	close(t.stop)
	t.cancel()
	<-t.done
}

func (t *tracker) queries() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nquery
}

// retarget makes w follow job id (a resubmission).
func (w *watch) retarget(id string) {
	w.mu.Lock()
	w.job = id
	w.latest = look{}
	w.mu.Unlock()
}

func (w *watch) jobID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.job
}

// post stores l as the latest look, if it is still about w's job, and
// signals it.
func (w *watch) post(id string, l look) {
	w.mu.Lock()
	if w.job != id {
		w.mu.Unlock()
		return
	}
	w.latest = l
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// take returns the latest look.
func (w *watch) take() look {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

func (t *tracker) loop() {
	defer close(t.done)
	minPoll := t.x.opts.minPoll
	firstPoll := minPoll / 2 // how soon after a new job the queue is asked about it
	interval := minPoll
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	var next time.Time // when the timer fires, while armed
	failures := 0
	for {
		select {
		case <-t.stop:
			return
		case <-t.wake:
			// Poll soon, but never later than already planned: a burst of
			// submissions must not keep postponing the poll.
			interval = minPoll
			if !armed || time.Until(next) > firstPoll {
				timer.Reset(firstPoll) // no stale tick survives Reset (Go ≥ 1.23)
				next, armed = time.Now().Add(firstPoll), true
			}
			continue
		case <-timer.C:
			armed = false
		}
		t.mu.Lock()
		ws := make([]*watch, 0, len(t.ws))
		for w := range t.ws {
			ws = append(ws, w)
		}
		t.mu.Unlock()
		if len(ws) == 0 {
			continue // until the next job wakes us
		}
		changed, unsettled, err := t.poll(ws)
		if err != nil {
			failures++
			if failures == 1 || failures%10 == 0 {
				t.x.opts.Note(fmt.Sprintf("%s: warning: querying the queue failed (%d in a row; retrying): %v", t.x.q.Name(), failures, err))
			}
			interval = min(2*interval, t.x.opts.Poll)
		} else {
			if failures > 0 {
				t.x.opts.Note(fmt.Sprintf("%s: the queue answers again", t.x.q.Name()))
			}
			failures = 0
			if changed || unsettled {
				interval = minPoll
			} else {
				interval = min(interval*3/2, t.x.opts.Poll)
			}
		}
		timer.Reset(interval)
		next, armed = time.Now().Add(interval), true
	}
}

// poll queries the queue once for every watched job, looks for their keys
// in the cache, and posts the looks. changed reports a state, reason, node
// or result that differs from the previous look; unsettled a job out of the
// queue whose result is not (yet) in the cache.
func (t *tracker) poll(ws []*watch) (changed, unsettled bool, err error) {
	seen := map[string]bool{}
	var names []string
	for _, w := range ws {
		if !seen[w.name] {
			seen[w.name] = true
			names = append(names, w.name)
		}
	}
	sts, err := t.x.q.Query(t.ctx, names)
	t.mu.Lock()
	t.nquery++
	t.mu.Unlock()
	now := time.Now()
	byID := make(map[string]JobStatus, len(sts))
	for _, s := range sts {
		byID[s.ID] = s
	}
	for _, w := range ws {
		id := w.jobID()
		l := look{queried: err == nil, at: now}
		l.status, l.listed = byID[id]
		settled := l.listed && l.status.State.Live()
		refresh := l.queried && !settled
		rec, ok, gerr := t.x.resultOf(w.key, refresh)
		l.present, l.record = ok && gerr == nil, rec
		if l.queried && !settled && !l.present {
			unsettled = true
		}
		p := w.prev
		if p.listed != l.listed || p.present != l.present || p.status.State != l.status.State || p.status.Reason != l.status.Reason || p.status.Node != l.status.Node {
			changed = true
		}
		w.prev = l
		w.post(id, l)
	}
	return changed, unsettled, err
}
