package cpu

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A pool runs the tasks of one step on several goroutines.
//
// Each call of run has a fixed number of tasks, decided by the step from its
// shapes alone. The caller publishes the job in a queue, wakes idle helpers
// (a non-blocking signal), and takes tasks itself, one at a time; a helper
// that wakes joins any queued job that still has tasks. When the caller runs
// out of tasks it withdraws the job, so no helper joins later, and waits for
// the helpers that joined to finish the task they took. So the caller never
// waits for a helper to start: a task that calls run again (nesting) or
// several executions sharing the pool cannot deadlock, whatever the number
// of helpers. Which goroutine runs a task never changes what the task
// computes: results do not depend on the number of workers.
type pool struct {
	size int           // goroutines that may work on one job: the caller and size-1 helpers
	wake chan struct{} // tokens for idle helpers

	mu    sync.Mutex
	queue []*job // jobs with tasks left
	free  sync.Pool
}

// tasker is one step's work split into tasks; task t runs on worker slot w
// (0 for the caller, 1…size-1 for helpers), which indexes per-worker scratch
// memory in the execution state.
type tasker interface {
	task(st *state, t, w int)
}

type job struct {
	tk   tasker
	st   *state
	n    int64
	next atomic.Int64
	done sync.WaitGroup // helpers that joined

	mu  sync.Mutex
	err any // first panic of a task
}

func newPool(size int) *pool {
	p := &pool{size: size, wake: make(chan struct{}, size)}
	for w := 1; w < size; w++ {
		go p.helper(w)
	}
	return p
}

// helper works on queued jobs whenever woken.
func (p *pool) helper(w int) {
	for range p.wake {
		for {
			j := p.join()
			if j == nil {
				break
			}
			j.work(w)
			j.done.Done()
		}
	}
}

// join returns a queued job with tasks left, registered as joined, or nil.
func (p *pool) join() *job {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.queue {
		if j.next.Load() < j.n {
			j.done.Add(1)
			return j
		}
	}
	return nil
}

// run runs tasks 0…n-1 of tk for execution st; w is the caller's worker
// slot. A panic in any task is re-raised in the caller once every helper
// that joined has stopped.
func (p *pool) run(st *state, w, n int, tk tasker) {
	if n <= 0 {
		return
	}
	if n == 1 || p.size == 1 {
		for t := range n {
			tk.task(st, t, w)
		}
		return
	}
	j, _ := p.free.Get().(*job)
	if j == nil {
		j = &job{}
	}
	j.tk, j.st, j.n, j.err = tk, st, int64(n), nil
	j.next.Store(0)
	p.mu.Lock()
	p.queue = append(p.queue, j)
	p.mu.Unlock()
	for range min(n-1, p.size-1) {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	j.work(w)
	p.mu.Lock()
	for i, q := range p.queue {
		if q == j {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	j.done.Wait()
	err := j.err
	j.tk, j.st, j.err = nil, nil, nil
	p.free.Put(j)
	if err != nil {
		panic(err)
	}
}

// work runs tasks until none is left.
func (j *job) work(w int) {
	for j.one(w) {
	}
}

// one runs the next task, if any, and reports whether it ran one. A panic
// stops the job: it is kept for the caller and no further task starts.
func (j *job) one(w int) (ran bool) {
	t := j.next.Add(1) - 1
	if t >= j.n {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			j.mu.Lock()
			if j.err == nil {
				j.err = fmt.Errorf("task %d of %T: %v", t, j.tk, r)
			}
			j.mu.Unlock()
			j.next.Store(j.n)
			ran = false
		}
	}()
	j.tk.task(j.st, int(t), w)
	return true
}

// splitTasks returns how many tasks of about grain units each to make of
// total units, at most maxTasks: a function of the sizes only.
func splitTasks(total, grain int) int {
	const maxTasks = 64
	if total <= grain {
		return 1
	}
	return min(maxTasks, (total+grain-1)/grain)
}
