package cpu

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A pool runs the tasks of one step on several goroutines.
//
// Each call of run has a fixed number of tasks, decided by the step from its
// shapes alone. The calling goroutine takes tasks itself, one at a time, and
// between two tasks offers the job to idle helpers with a non-blocking send:
// a helper that is busy elsewhere is simply not recruited. So the caller
// never waits for a helper to start, only for recruited helpers to finish the
// task they took; a task that calls run again (nesting) or two executions
// sharing the pool cannot deadlock, whatever the number of helpers. Which
// goroutine runs a task never changes what the task computes: results do not
// depend on the number of workers.
type pool struct {
	size int       // goroutines that may work on one job: the caller and size-1 helpers
	jobs chan *job // unbuffered: a send succeeds only when a helper is idle
	free sync.Pool // *job
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
	wg   sync.WaitGroup

	mu  sync.Mutex
	err any // first panic of a task
}

func newPool(size int) *pool {
	p := &pool{size: size, jobs: make(chan *job)}
	for w := 1; w < size; w++ {
		go p.helper(w)
	}
	return p
}

func (p *pool) helper(w int) {
	for j := range p.jobs {
		j.work(w)
		j.wg.Done()
	}
}

// run runs tasks 0…n-1 of tk for execution st; w is the caller's worker
// slot. A panic in any task is re-raised in the caller once every recruited
// helper has stopped.
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
	recruited, maxHelpers := 0, min(n-1, p.size-1)
	for {
		if recruited < maxHelpers && j.next.Load() < j.n-1 {
			j.wg.Add(1)
			select {
			case p.jobs <- j:
				recruited++
			default:
				j.wg.Done()
			}
		}
		if !j.one(w) {
			break
		}
	}
	j.wg.Wait()
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
