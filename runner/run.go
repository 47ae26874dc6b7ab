package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
)

// Run executes the pipelines: every instance whose key is cached is served
// from the cache, the others run, up to opts.Jobs at a time, each as soon as
// its inputs exist. Without opts.KeepGoing the first failure cancels the
// running stages and starts no more; with it, only the stages downstream of a
// failure are skipped. Cancelling ctx (Ctrl-C) stops every stage through its
// context and removes their temp dirs; what finished stays cached, so the
// next run picks up where this one stopped.
//
// The error is about the run as a whole (the cache, a bad --force pattern);
// stage failures are in the summary.
func Run(ctx context.Context, pipes []*pipelines.Pipeline, opts Options) (Summary, error) {
	start := time.Now()
	e, err := newEngine(pipes, opts)
	if err != nil {
		return Summary{}, err
	}
	rep := opts.Reporter
	if rep == nil {
		rep = discardReporter{}
	}
	share, err := opts.Store.Share(ctx, func() { rep.Note("waiting: runner gc or verify holds the cache") })
	if err != nil {
		return Summary{}, fmt.Errorf("cache %s: %w", opts.Store.Dir(), err)
	}
	defer share.Unlock()

	e.readOnly = opts.Store.Writable()
	s := &scheduler{e: e, rep: rep, done: make(chan *node)}
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	s.loop()
	if opts.Executor != nil {
		if err := opts.Executor.Close(s.stopping, rep.Note); err != nil {
			rep.Note(fmt.Sprintf("runner: %v", err))
		}
	}

	sum := Summary{Elapsed: time.Since(start), Interrupted: ctx.Err() != nil}
	for _, n := range e.nodes {
		sum.Results = append(sum.Results, n.res)
		switch n.res.Outcome {
		case Ran:
			sum.Ran++
		case Cached:
			sum.Cached++
		case Failed:
			sum.Failed++
		case Skipped:
			sum.Skipped++
		}
	}
	if opts.WorkDir != "" {
		if err := e.updateViews(pipes); err != nil {
			return sum, err
		}
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// scheduler runs the nodes of an engine.
type scheduler struct {
	e      *engine
	rep    Reporter
	ctx    context.Context
	cancel context.CancelFunc
	done   chan *node

	ready    []*node // inputs finished; cache not yet checked
	queue    []*node // must run; waiting for a worker
	running  int
	remote   int // of running, those opts.Executor computes
	finished int
	stopping bool
}

func (s *scheduler) loop() {
	for _, n := range s.e.nodes {
		if n.waiting == 0 {
			s.ready = append(s.ready, n)
		}
	}
	total := len(s.e.nodes)
	for s.finished < total {
		if !s.stopping && s.ctx.Err() != nil {
			s.stop()
		}
		s.drainReady()
		s.start()
		if s.stopping && s.running == 0 {
			// Everything not finished is skipped.
			for _, n := range s.e.nodes {
				if n.res.Outcome == 0 {
					s.skip(n, "run cancelled")
				}
			}
			return
		}
		if s.running == 0 {
			if len(s.ready) == 0 && len(s.queue) == 0 {
				// Cannot happen in a DAG; account for every node all the same.
				for _, n := range s.e.nodes {
					if n.res.Outcome == 0 {
						s.skip(n, "internal error: its inputs never finished")
					}
				}
				return
			}
			continue
		}
		var n *node
		select {
		case n = <-s.done:
		case <-s.ctx.Done():
			s.stop()
			n = <-s.done
		}
		s.running--
		if n.remote {
			s.remote--
		}
		s.finish(n, n.res.Outcome)
	}
}

// start starts queued nodes, in queue order, while their executor has a
// free slot: opts.Jobs for stages run here, the Executor's Slots for the
// others.
func (s *scheduler) start() {
	for i := 0; i < len(s.queue) && !s.stopping; {
		n := s.queue[i]
		if n.remote && s.remote >= s.e.opts.Executor.Slots() || !n.remote && s.running-s.remote >= s.e.opts.Jobs {
			i++
			continue
		}
		s.queue = slices.Delete(s.queue, i, i+1)
		s.running++
		if n.remote {
			s.remote++
		}
		go s.execute(n)
	}
}

// stop cancels running stages and starts no more.
func (s *scheduler) stop() {
	s.stopping = true
	s.cancel()
}

// drainReady checks the cache for every ready node: cached ones finish at
// once (releasing their users), the others are queued to run.
func (s *scheduler) drainReady() {
	for len(s.ready) > 0 {
		n := s.ready[0]
		s.ready = s.ready[1:]
		switch {
		case n.blocked != "":
			s.skip(n, fmt.Sprintf("input %s failed", n.blocked))
			continue
		case s.stopping:
			s.skip(n, "run cancelled")
			continue
		}
		if err := s.e.describe(n); err != nil {
			s.fail(n, err)
			continue
		}
		if !n.forced {
			digest, ok, err := s.e.lookup(n)
			if err != nil {
				s.fail(n, err)
				continue
			}
			if ok && !n.recheck {
				if s.e.readOnly == nil {
					indexHit(s.ctx, s.e.opts.Store, n.inst.Stage.Kind, n.job)
				}
				n.res.Digest = digest
				s.finish(n, Cached)
				continue
			}
			if !ok {
				n.recheck = false // nothing to compare with: just run it
			}
		}
		n.res.Reasons = s.e.reasonsFor(n)
		s.e.findPrior(n)
		if s.e.readOnly != nil {
			s.fail(n, fmt.Errorf("must run (%s), but %w", strings.Join(n.res.Reasons, ", "), s.e.readOnly))
			continue
		}
		s.enqueue(n)
	}
}

// enqueue queues n to run: a light stage after the light ones already
// queued but before every heavy one, a heavy stage at the end. It fails n
// when its task cannot be described.
func (s *scheduler) enqueue(n *node) {
	t, err := s.task(n)
	if err != nil {
		s.fail(n, err)
		return
	}
	n.remote = s.e.opts.Executor != nil && s.e.opts.Executor.Accepts(t)
	if !n.inst.Stage.Kind.Light {
		s.queue = append(s.queue, n)
		return
	}
	i := 0
	for i < len(s.queue) && s.queue[i].inst.Stage.Kind.Light {
		i++
	}
	s.queue = slices.Insert(s.queue, i, n)
}

// skip finishes n without running it.
func (s *scheduler) skip(n *node, why string) {
	n.res.Err = errors.New(why)
	s.finish(n, Skipped)
}

// fail finishes n as failed with err.
func (s *scheduler) fail(n *node, err error) {
	n.res.Err = err
	s.finish(n, Failed)
}

// finish gives n its outcome, reports it and releases n's users.
func (s *scheduler) finish(n *node, o Outcome) {
	s.finished++
	n.res.Outcome, n.res.Rechecked = o, n.recheck
	if n.res.Digest != "" {
		n.res.Dir = s.e.opts.Store.ObjectDir(n.res.Digest)
	}
	s.rep.Done(n.res)
	if o == Failed && !s.e.opts.KeepGoing && !s.stopping {
		s.stop()
	}
	for _, u := range n.users {
		if o != Cached && o != Ran && u.blocked == "" {
			u.blocked = n.inst.ID
		}
		u.waiting--
		if u.waiting == 0 {
			s.ready = append(s.ready, u)
		}
	}
}

// execute runs n in a worker goroutine, through its executor, and hands it
// back on s.done with its outcome decided; the loop finishes it.
func (s *scheduler) execute(n *node) {
	defer func() { s.done <- n }()
	mu := s.e.keyMutex(n.res.Key)
	mu.Lock()
	defer mu.Unlock()
	var x Executor = localExecutor{store: s.e.opts.Store}
	if n.remote {
		x = s.e.opts.Executor
	}
	r := x.Execute(s.ctx, n.task)
	n.res.Duration, n.res.LogTail, n.res.LogFile, n.res.Where = r.Duration, r.LogTail, r.LogFile, r.Where
	if p := n.task.prior; p != nil && n.prior == nil {
		// Found by the executor: stored since the look-up (by this run).
		n.prior = p
		n.res.Reasons = append(n.res.Reasons, p.How)
	}
	if r.Damaged != nil && n.damaged == nil {
		n.damaged = r.Damaged
		n.res.Reasons = s.e.reasonsFor(n)
	}
	switch {
	case r.Err != nil && s.ctx.Err() != nil:
		// Whatever it says, the stage stopped because the run was
		// cancelled (Ctrl-C, or a failure elsewhere).
		n.res.Outcome, n.res.Err = Skipped, errors.New("cancelled while running")
	case r.Err != nil:
		n.res.Outcome, n.res.Err = Failed, r.Err
	case r.Cached:
		n.res.Outcome, n.res.Digest, n.res.Reasons = Cached, r.Digest, nil
	default:
		n.res.Outcome, n.res.Digest = Ran, r.Digest
	}
}

// updateViews refreshes results/<spec>/ and the spec's index of keys.
func (e *engine) updateViews(pipes []*pipelines.Pipeline) error {
	for _, p := range pipes {
		viewDir := filepath.Join(e.opts.WorkDir, "results", p.Name)
		links := map[string]string{}
		idx := artifacts.Index{}
		old := e.indexes[p.Name]
		for _, inst := range p.Instances {
			n := e.byInst[inst]
			if n.res.Digest != "" {
				links[artifacts.ViewName(inst.ID)] = viewTarget(e.opts.WorkDir, viewDir, e.opts.Store.ObjectDir(n.res.Digest))
			}
			switch {
			case n.res.Key != "":
				idx[inst.ID] = artifacts.IndexEntry{Key: n.res.Key, Digest: n.res.Digest}
			case old[inst.ID].Key != "":
				idx[inst.ID] = old[inst.ID] // not reached this time: keep what we knew
			}
		}
		if err := artifacts.UpdateView(viewDir, links); err != nil {
			return err
		}
		if e.readOnly != nil {
			continue // the index is a cache of look-ups; a read-only one stays as it is
		}
		if sameIndex(old, idx) {
			e.opts.Store.TouchIndex(p.Name)
		} else if err := e.opts.Store.WriteIndex(p.Name, idx); err != nil {
			return err
		}
	}
	return nil
}

func sameIndex(a, b artifacts.Index) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
