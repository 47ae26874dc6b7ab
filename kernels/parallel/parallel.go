// Package parallel runs the parts of a computation on the calling goroutine
// and a pool of helper goroutines that are started once and reused, so that
// splitting work costs no goroutine creation and, in the steady state, no
// allocation.
//
// Parts may themselves call Run (a parallel loop over a batch whose items are
// parallel matrix products): a goroutine waiting for its parts runs queued
// parts, its own or others', instead of blocking, so every queued part has a
// goroutine to run it and nested calls cannot deadlock.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Task is a computation divided into numbered parts that may run
// concurrently.
type Task interface {
	RunPart(i int)
}

// Run executes parts 0…parts-1 of t, part 0 on the calling goroutine and the
// others on helpers, and returns when all have finished. It allocates nothing
// in the steady state.
func Run(t Task, parts int) {
	if parts <= 1 {
		if parts == 1 {
			t.RunPart(0)
		}
		return
	}
	startHelpers(parts - 1)
	g := groups.Get().(*group)
	g.pending.Store(int32(parts - 1))
	for i := 1; i < parts; i++ {
		select {
		case queue <- work{t, i, g}:
		default: // queue full (deep nesting): no one is short of work
			work{t, i, g}.run()
		}
	}
	t.RunPart(0)
	for {
		select {
		case w := <-queue:
			w.run()
		case <-g.done:
			groups.Put(g)
			return
		}
	}
}

// For calls body on consecutive ranges [lo, hi) covering [0, n), each of at
// least grain elements (the last may be shorter), concurrently on up to
// runtime.GOMAXPROCS(0) goroutines. body should be created once and reused:
// a closure created per call escapes to the heap.
func For(n, grain int, body func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), max(1, n/max(grain, 1)))
	if parts <= 1 {
		if n > 0 {
			body(0, n)
		}
		return
	}
	f := fors.Get().(*forTask)
	f.n, f.parts, f.body = n, parts, body
	Run(f, parts)
	f.body = nil
	fors.Put(f)
}

// forTask is For's Task: part i covers [i·n/parts, (i+1)·n/parts).
type forTask struct {
	n, parts int
	body     func(lo, hi int)
}

// RunPart runs body on part i's range.
func (f *forTask) RunPart(i int) {
	f.body(i*f.n/f.parts, (i+1)*f.n/f.parts)
}

var (
	fors   = sync.Pool{New: func() any { return new(forTask) }}
	groups = sync.Pool{New: func() any { return &group{done: make(chan struct{}, 1)} }}
)

// group counts the parts of one Run still pending; the part that brings the
// count to zero sends the one token on done.
type group struct {
	pending atomic.Int32
	done    chan struct{}
}

// work is part i of task t, counted in group g.
type work struct {
	t Task
	i int
	g *group
}

// run executes the part and signals its group.
func (w work) run() {
	w.t.RunPart(w.i)
	if w.g.pending.Add(-1) == 0 {
		w.g.done <- struct{}{}
	}
}

var (
	queue       = make(chan work, 256)
	helpersMu   sync.Mutex
	helperCount int
)

// startHelpers makes sure at least n helpers serve the queue.
func startHelpers(n int) {
	helpersMu.Lock()
	for helperCount < n {
		helperCount++
		go func() {
			for w := range queue {
				w.run()
			}
		}()
	}
	helpersMu.Unlock()
}
