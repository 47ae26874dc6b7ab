package cpu

import (
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// step is one unit of a compiled program.
type step interface {
	// run executes the step for execution st from worker slot w.
	run(st *state, w int)
	// storages calls f for every storage the step reads or writes.
	storages(f func(*storage))
	// scratch is the number of scratch registers a worker needs.
	scratch() int
}

// Executable is a compiled computation. It is safe to execute concurrently;
// each execution has its own arena and scratch memory, pooled.
type Executable struct {
	backend      *Backend
	name         string
	paramNames   []string
	paramShapes  []shapes.Shape
	outputShapes []shapes.Shape

	steps      []step
	storages   []*storage
	consts     []*Buffer
	arenaBytes int
	regs       int     // scratch registers per worker
	reuse      [][]int // per output: the parameters whose donated buffer it may take
	tileBytes  int     // per worker: a tile of fused im2col (fuse.go)

	mu     sync.Mutex
	states []*state
	closed bool
}

var _ backends.Executable = (*Executable)(nil)

// state is the memory of one execution.
type state struct {
	pool    *pool
	ptr     []unsafe.Pointer // per storage
	arena   []uint64
	scratch []uint64
	regSize int     // bytes of scratch per worker
	offBufs [][]int // per worker: block offsets of a step's accessors
	tiles   []uint64
	tileLen int // bytes per worker
}

// tile returns worker w's tile memory.
func (st *state) tile(w int) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(&st.tiles[0]), w*st.tileLen)
}

// offs returns worker w's buffer of n block offsets.
func (st *state) offs(w, n int) []int {
	if cap(st.offBufs[w]) < n {
		st.offBufs[w] = make([]int, n)
	}
	return st.offBufs[w][:n]
}

func (st *state) regs(w int) unsafe.Pointer {
	if st.regSize == 0 {
		return nil
	}
	return unsafe.Add(unsafe.Pointer(&st.scratch[0]), w*st.regSize)
}

// arenaAlign is the alignment of arena offsets in bytes (a cache line).
const arenaAlign = 64

// link computes lifetimes, places the intermediate storages in the arena and
// builds the Executable.
func (c *compiler) link(outs []*node, outStorages []*storage) (*Executable, error) {
	steps, tile := c.fuseIm2col(c.steps)
	e := &Executable{backend: c.b.backend, name: c.b.name, steps: steps, storages: c.storages, consts: c.consts, tileBytes: tile}
	for _, p := range c.b.params {
		e.paramNames = append(e.paramNames, p.name)
		e.paramShapes = append(e.paramShapes, p.shape)
	}
	for _, o := range outs {
		e.outputShapes = append(e.outputShapes, o.shape)
	}
	writers := make([]int, len(c.storages))
	for i, s := range steps {
		s.storages(func(st *storage) {
			if st.first < 0 {
				st.first = i
			}
			st.last = i
		})
		e.regs = max(e.regs, s.scratch())
		if es, ok := s.(*evalStep); ok {
			writers[es.accs[0].st.id]++
		}
	}
	e.arenaBytes = placeArena(c.storages)
	e.reuse = make([][]int, len(outs))
	for i, st := range outStorages {
		if writers[st.id] != 1 || st.first < 0 {
			continue
		}
		for _, p := range inPlaceParams(steps[st.first], st) {
			if p.last == st.first {
				e.reuse[i] = append(e.reuse[i], p.index)
			}
		}
	}
	return e, nil
}

// inPlaceParams returns the parameters that step s reads, element for
// element, only at the position where it writes out: out may take the memory
// of any of them.
func inPlaceParams(s step, out *storage) []*storage {
	es, ok := s.(*evalStep)
	if !ok || es.accs[0].st != out {
		return nil
	}
	dst := es.accs[0]
	var found []*storage
	bad := map[*storage]bool{}
	for _, a := range es.accs[1:] {
		if a.st.kind != inParam {
			continue
		}
		if a.st.dtype != out.dtype || a.st.size != out.size || a.off != dst.off || !slices.Equal(a.strides, dst.strides) {
			bad[a.st] = true // read elsewhere than where written
			continue
		}
		if !slices.Contains(found, a.st) {
			found = append(found, a.st)
		}
	}
	return slices.DeleteFunc(found, func(s *storage) bool { return bad[s] })
}

// placeArena gives every intermediate storage an offset in the arena: two
// storages share memory only if no step uses both. Greedy by size: each
// storage, largest first, goes to the lowest offset free for its lifetime.
// It returns the arena size in bytes.
func placeArena(storages []*storage) int {
	var list []*storage
	for _, s := range storages {
		if s.kind == inArena && s.first >= 0 && s.size > 0 {
			list = append(list, s)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].bytes() > list[j].bytes() })
	aligned := func(n int) int { return (n + arenaAlign - 1) / arenaAlign * arenaAlign }
	var placed []*storage
	total := 0
	type span struct{ lo, hi int }
	var busy []span
	for _, s := range list {
		busy = busy[:0]
		for _, p := range placed {
			if p.first <= s.last && s.first <= p.last {
				busy = append(busy, span{p.off, p.off + aligned(p.bytes())})
			}
		}
		sort.Slice(busy, func(i, j int) bool { return busy[i].lo < busy[j].lo })
		need, off := aligned(s.bytes()), 0
		for _, b := range busy {
			if b.lo-off >= need {
				break
			}
			off = max(off, b.hi)
		}
		s.off = off
		total = max(total, off+need)
		placed = append(placed, s)
	}
	return total
}

// Finalize releases the executable's memory.
func (e *Executable) Finalize() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.states = nil
}

// Inputs returns the parameters' names and shapes.
func (e *Executable) Inputs() ([]string, []shapes.Shape) { return e.paramNames, e.paramShapes }

// Outputs returns the outputs' shapes.
func (e *Executable) Outputs() []shapes.Shape { return e.outputShapes }

func (e *Executable) getState() (*state, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("cpu backend: executable %q was finalized", e.name)
	}
	if n := len(e.states); n > 0 {
		st := e.states[n-1]
		e.states = e.states[:n-1]
		return st, nil
	}
	workers := e.backend.workers
	st := &state{pool: workers, ptr: make([]unsafe.Pointer, len(e.storages)), regSize: e.regs * regBytes}
	st.arena = make([]uint64, (e.arenaBytes+7)/8)
	st.scratch = make([]uint64, workers.size*st.regSize/8)
	st.offBufs = make([][]int, workers.size)
	if e.tileBytes > 0 {
		st.tileLen = (e.tileBytes + 63) / 64 * 64
		st.tiles = make([]uint64, workers.size*st.tileLen/8)
	}
	for _, s := range e.storages {
		switch s.kind {
		case inArena:
			if s.first >= 0 && s.size > 0 {
				st.ptr[s.id] = unsafe.Add(unsafe.Pointer(&st.arena[0]), s.off)
			}
		case inConst:
			st.ptr[s.id] = e.consts[s.index].ptr
		}
	}
	return st, nil
}

func (e *Executable) putState(st *state) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.states = append(e.states, st)
	}
}

// Execute runs the computation. Donated inputs are invalid afterwards; an
// output may reuse a donated input's memory.
func (e *Executable) Execute(inputs []backends.Buffer, donate []bool, _ backends.DeviceNum) (results []backends.Buffer, err error) {
	if len(inputs) != len(e.paramShapes) {
		return nil, fmt.Errorf("cpu backend: %q takes %d inputs, got %d", e.name, len(e.paramShapes), len(inputs))
	}
	in := make([]*Buffer, len(inputs))
	for i, b := range inputs {
		cb, err := e.backend.checkBuffer(b)
		if err != nil {
			return nil, fmt.Errorf("input #%d: %w", i, err)
		}
		if !cb.shape.Equal(e.paramShapes[i]) {
			return nil, fmt.Errorf("cpu backend: %q input #%d (%s): want %s, got %s", e.name, i, e.paramNames[i], e.paramShapes[i], cb.shape)
		}
		in[i] = cb
	}
	st, err := e.getState()
	if err != nil {
		return nil, err
	}
	defer e.putState(st)
	donated := make([]bool, len(in))
	for i := range in {
		donated[i] = i < len(donate) && donate[i]
	}
	out := make([]*Buffer, len(e.outputShapes))
	for _, s := range e.storages {
		switch s.kind {
		case inParam:
			st.ptr[s.id] = in[s.index].ptr
		case inOutput:
			i := s.index
			for _, p := range e.reuse[i] {
				if donated[p] {
					out[i], donated[p] = in[p], false
					out[i].shape = e.outputShapes[i]
					break
				}
			}
			if out[i] == nil {
				out[i] = e.backend.buffers.get(e.outputShapes[i])
			}
			st.ptr[s.id] = out[i].ptr
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cpu backend: executing %q: %v", e.name, r)
			if debugStacks {
				err = fmt.Errorf("%w\n%s", err, debug.Stack())
			}
			results = nil
		}
	}()
	if stepTimes != nil {
		e.runTimed(st)
	} else {
		for _, s := range e.steps {
			s.run(st, 0)
		}
	}
	for i, d := range donated {
		if d && !slices.Contains(out, in[i]) {
			e.backend.buffers.put(in[i])
		}
	}
	results = make([]backends.Buffer, len(out))
	for i, o := range out {
		results[i] = o
	}
	for i := range st.ptr {
		if e.storages[i].kind == inParam || e.storages[i].kind == inOutput {
			st.ptr[i] = nil
		}
	}
	return results, nil
}

// debugStacks adds stack traces to execution errors (for debugging).
var debugStacks = false

// stepTimes, when not nil, accumulates the wall time of every step by its
// description (for profiling tests; not safe with concurrent executions).
var stepTimes map[string]time.Duration

func (e *Executable) runTimed(st *state) {
	for _, s := range e.steps {
		t0 := stepClock()
		s.run(st, 0)
		stepTimes[stepString(s)] += stepClock() - t0
	}
}

// stepClock is the clock of stepTimes (wall time unless a test sets it).
var stepClock = func() time.Duration { return time.Duration(time.Now().UnixNano()) }

// stepString describes a step for profiles.
func stepString(s step) string {
	switch s := s.(type) {
	case *evalStep:
		kind := "eval"
		if s.root.acc >= 0 {
			kind = "copy"
		}
		var modes []string
		var walk func(x *xnode)
		walk = func(x *xnode) {
			if x.acc >= 0 {
				modes = append(modes, []string{"d", "i", "g"}[x.mode])
			}
			for _, k := range x.kids {
				walk(k)
			}
		}
		walk(s.root)
		return fmt.Sprintf("%s %v dst%v leaves %v", kind, s.nest.dims, s.accs[0].strides, modes)
	case *reduceStep:
		return fmt.Sprintf("reduce %s %v out%v split=%v", s.op, s.nest.dims, s.accs[0].strides, s.partial != nil)
	case *dotStep:
		fused := ""
		if s.im2col != nil {
			fused = map[bool]string{true: " im2col→A", false: " im2col→B"}[s.im2colA]
		}
		return fmt.Sprintf("dot b%d %dx%dx%d %v%v%s", len(s.aOffs), s.m, s.n, s.k, s.tA, s.tB, fused)
	case *concatStep:
		return fmt.Sprintf("concat %d parts outer %v block %d shared=%v", len(s.parts), s.outer, s.block, s.shared)
	}
	return fmt.Sprintf("%T", s)
}

// describe lists the program's steps, for debugging and tests.
func (e *Executable) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q: %d steps, arena %d bytes, %d registers\n", e.name, len(e.steps), e.arenaBytes, e.regs)
	for i, s := range e.steps {
		fmt.Fprintf(&b, "%4d %T", i, s)
		s.storages(func(st *storage) { fmt.Fprintf(&b, " s%d", st.id) })
		b.WriteByte('\n')
	}
	return b.String()
}
