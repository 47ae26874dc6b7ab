package cpu

import (
	"fmt"
	"slices"
	"unsafe"
)

// Fused loops.
//
// A step iterates over a "nest": the dimensions of its result, reordered so
// that the destination is written in memory order, with size-1 axes dropped
// and adjacent axes merged wherever every view involved (the accessors) is
// contiguous across them. The last axis, or the last two when the last is
// short, is walked in blocks of up to `chunk` values; each block of a fused
// expression is computed operation by operation in per-worker scratch
// registers of `chunk` values, which stay in the L1 cache. A leaf whose block
// is contiguous in memory is read in place; a leaf that is constant across
// blocks (a scalar, or a row vector broadcast over rows, such as a bias) is
// expanded into its register once per task; other leaves are gathered.

// chunk is the number of values in a block of a fused loop.
const chunk = 512

// regBytes is the size of one scratch register.
const regBytes = chunk * 8

// An accessor is a strided view of a storage as one step walks it.
type accessor struct {
	st      *storage
	off     int
	strides []int // per nest axis
	esize   int
}

// nest is a step's iteration space.
type nest struct {
	dims []int
	accs []accessor
}

// newNest builds the nest of dims over the views, its axes ordered by
// decreasing strides of views[orderBy] (logical order if orderBy < 0), with
// size-1 axes dropped and contiguous axes merged.
func newNest(dims []int, views []view, orderBy int) nest {
	r := len(dims)
	order := make([]int, r)
	for i := range order {
		order[i] = i
	}
	if orderBy >= 0 && r > 1 {
		s0 := views[orderBy].strides
		slices.SortStableFunc(order, func(a, b int) int { return abs(s0[b]) - abs(s0[a]) })
	}
	nt := nest{}
	for _, v := range views {
		nt.accs = append(nt.accs, accessor{st: v.st, off: v.off, esize: v.st.dtype.Size()})
	}
	for _, a := range order {
		if dims[a] == 1 {
			continue
		}
		last := len(nt.dims) - 1
		merge := last >= 0
		for i := range views {
			if merge && nt.accs[i].strides[last] != views[i].strides[a]*dims[a] {
				merge = false
			}
		}
		if merge {
			nt.dims[last] *= dims[a]
			for i := range views {
				nt.accs[i].strides[last] = views[i].strides[a]
			}
			continue
		}
		nt.dims = append(nt.dims, dims[a])
		for i := range views {
			nt.accs[i].strides = append(nt.accs[i].strides, views[i].strides[a])
		}
	}
	if len(nt.dims) == 0 {
		nt.dims = []int{1}
		for i := range nt.accs {
			nt.accs[i].strides = []int{0}
		}
	}
	return nt
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// geom is how a nest is cut into blocks ("units"). In rows mode a block is
// rowsPer rows of the full last axis; in columns mode it is up to chunk
// values of the last axis. Units are numbered outer axes first.
type geom struct {
	dims     []int
	rowsMode bool
	rowsPer  int
	cols     int // values per row in rows mode, per block in columns mode
	nb       int // blocks per outer index
	outer    []int
	units    int
}

func newGeom(dims []int) geom {
	r := len(dims)
	g := geom{dims: dims}
	last := dims[r-1]
	if r >= 2 && last < chunk {
		g.rowsMode = true
		g.cols = last
		g.rowsPer = min(dims[r-2], max(1, chunk/last))
		g.nb = (dims[r-2] + g.rowsPer - 1) / g.rowsPer
		g.outer = dims[:r-2]
	} else {
		g.rowsPer = 1
		g.cols = min(last, chunk)
		g.nb = (last + chunk - 1) / chunk
		g.outer = dims[:r-1]
	}
	g.units = g.nb * product(g.outer)
	return g
}

// groups is the extent of the outermost level of the unit numbering, which
// runs along nest axis 0, and the units in each.
func (g *geom) groups() (n, per int) {
	if len(g.outer) > 0 {
		return g.outer[0], g.units / g.outer[0]
	}
	return g.nb, 1
}

// at sets offs[i] to accessor i's offset at the start of unit u and returns
// the unit's rows and columns.
func (g *geom) at(u int, accs []accessor, offs []int) (rows, cols int) {
	o, blk := u/g.nb, u%g.nb
	for i := range accs {
		offs[i] = accs[i].off
	}
	for d := len(g.outer) - 1; d >= 0; d-- {
		idx := o % g.outer[d]
		o /= g.outer[d]
		if idx != 0 {
			for i := range accs {
				offs[i] += idx * accs[i].strides[d]
			}
		}
	}
	r := len(g.dims)
	if g.rowsMode {
		r0 := blk * g.rowsPer
		for i := range accs {
			offs[i] += r0 * accs[i].strides[r-2]
		}
		return min(g.rowsPer, g.dims[r-2]-r0), g.cols
	}
	c0 := blk * chunk
	for i := range accs {
		offs[i] += c0 * accs[i].strides[r-1]
	}
	return 1, min(chunk, g.dims[r-1]-c0)
}

// rowStride and colStride of accessor a in the block layout.
func (g *geom) rowStride(a *accessor) int {
	if g.rowsMode {
		return a.strides[len(g.dims)-2]
	}
	return 0
}

func (g *geom) colStride(a *accessor) int { return a.strides[len(g.dims)-1] }

// contiguous reports whether every block of a is one run of memory.
func (g *geom) contiguous(a *accessor) bool {
	return g.colStride(a) == 1 && (g.rowsPer == 1 || g.rowStride(a) == g.cols)
}

// invariant reports whether a's blocks all hold the same values: a scalar, or
// in rows mode a row broadcast over the other axes.
func (g *geom) invariant(a *accessor) bool {
	r := len(g.dims)
	for d := 0; d < r-1; d++ {
		if a.strides[d] != 0 {
			return false
		}
	}
	return g.rowsMode || a.strides[r-1] == 0
}

// Leaf modes.
const (
	leafDirect    = iota // read in place
	leafInvariant        // expanded once per task
	leafGather           // gathered per block
)

// xnode is a fused expression compiled for one step.
type xnode struct {
	k    kfn
	kids []*xnode
	acc  int // leaves: accessor index; inner nodes: -1
	mode int
	reg  int // register, -1 for direct leaves
}

// prog is a compiled fused expression with its nest and block geometry.
type prog struct {
	nest
	geom
	root       *xnode
	nregs      int
	invariants []*xnode
	gathers    []*xnode // leaves gathered at the start of every block
	work       int      // values × operations, for task sizing
}

// newProg compiles e over nest nt (whose accessors from firstLeaf on are
// e's leaves in depth-first order).
func newProg(e *enode, nt nest, firstLeaf int) *prog {
	p := &prog{nest: nt, geom: newGeom(nt.dims)}
	next := firstLeaf
	// Leaves reading the same values (x in Where(x > y, x, y)) share one
	// xnode, gathered once per block.
	type leafKey struct {
		st      *storage
		off     int
		strides string
	}
	seen := map[leafKey]*xnode{}
	var build func(e *enode) *xnode
	build = func(e *enode) *xnode {
		if e.isLeaf() {
			a := &p.accs[next]
			next++
			key := leafKey{a.st, a.off, fmt.Sprint(a.strides)}
			if x, ok := seen[key]; ok {
				return x
			}
			x := &xnode{acc: next - 1, reg: -1}
			seen[key] = x
			switch {
			case p.invariant(a):
				x.mode, x.reg = leafInvariant, p.nregs
				p.nregs++
				p.invariants = append(p.invariants, x)
			case p.contiguous(a):
				x.mode = leafDirect
			default:
				x.mode, x.reg = leafGather, p.nregs
				p.nregs++
				p.gathers = append(p.gathers, x)
			}
			return x
		}

		x := &xnode{k: e.k, acc: -1, reg: p.nregs}
		p.nregs++
		for _, k := range e.kids {
			x.kids = append(x.kids, build(k))
		}
		return x
	}
	p.root = build(e)
	p.work = product(nt.dims) * (1 + e.nops)
	return p
}

// leavesOf lists the leaf views of e in depth-first order.
func leavesOf(e *enode, out []view) []view {
	if e.isLeaf() {
		return append(out, *e.leaf)
	}
	for _, k := range e.kids {
		out = leavesOf(k, out)
	}
	return out
}

// ctx is the state of one block evaluation.
type ctx struct {
	st         *state
	regs       unsafe.Pointer
	offs       []int
	rows, cols int
}

func (c *ctx) reg(i int) unsafe.Pointer { return unsafe.Add(c.regs, i*regBytes) }

// ptr returns the address of accessor a's value at offset off, checking that
// n values from there lie inside the storage.
func (c *ctx) ptr(a *accessor, off, n int) unsafe.Pointer {
	if off < 0 || off+n > a.st.size {
		panic(fmt.Errorf("block [%d, %d) outside storage of %d values", off, off+n, a.st.size))
	}
	return unsafe.Add(c.st.ptr[a.st.id], off*a.esize)
}

// fillInvariants expands the task-invariant leaves into their registers.
func (p *prog) fillInvariants(c *ctx) {
	for _, x := range p.invariants {
		a := &p.accs[x.acc]
		rows := p.rowsPer
		cols := p.cols
		copyBlock(a.esize, c.reg(x.reg), 0, cols, 1, c.st.ptr[a.st.id], a.st.size, a.off, 0, p.colStride(a), rows, cols)
	}
}

// eval computes the current block of x and returns its address: rows×cols
// values in row-major order. dst, if not nil, is where the root writes.
func (p *prog) eval(x *xnode, c *ctx, dst unsafe.Pointer) unsafe.Pointer {
	n := c.rows * c.cols
	if x.acc >= 0 {
		if x.mode == leafDirect {
			return c.ptr(&p.accs[x.acc], c.offs[x.acc], n)
		}
		return c.reg(x.reg) // expanded per task or gathered per block
	}
	var in [3]unsafe.Pointer
	for i, k := range x.kids {
		in[i] = p.eval(k, c, nil)
	}
	if dst == nil {
		dst = c.reg(x.reg)
	}
	x.k(dst, in[0], in[1], in[2], n)
	return dst
}

// gather fills the registers of the gathered leaves for the current block;
// each is gathered once however often the expression reads it.
func (p *prog) gather(c *ctx) {
	for _, x := range p.gathers {
		a := &p.accs[x.acc]
		copyBlock(a.esize, c.reg(x.reg), 0, c.cols, 1, c.st.ptr[a.st.id], a.st.size, c.offs[x.acc], p.rowStride(a), p.colStride(a), c.rows, c.cols)
	}
}

// units of task t of n tasks, splitting only between groups when whole is
// set (so that tasks never share an outermost index).
func (p *prog) taskUnits(t, n int, whole bool) (u0, u1 int) {
	if !whole {
		return t * p.units / n, (t + 1) * p.units / n
	}
	g, per := p.groups()
	return t * g / n * per, (t + 1) * g / n * per
}

// copyBlock copies rows×cols values of size esize from src (a storage of
// srcSize values, block at srcOff with strides srs, scs) to dst (block at
// dstOff with strides drs, dcs; dst bounds are the caller's). It checks the
// source bounds.
func copyBlock(esize int, dst unsafe.Pointer, dstOff, drs, dcs int, src unsafe.Pointer, srcSize, srcOff, srs, scs, rows, cols int) {
	lo, hi := blockRange(srcOff, srs, scs, rows, cols)
	if lo < 0 || hi > srcSize {
		panic(fmt.Errorf("block [%d, %d) outside storage of %d values", lo, hi, srcSize))
	}
	switch esize {
	case 4:
		copy2D[uint32](dst, dstOff, drs, dcs, src, srcOff, srs, scs, rows, cols)
	case 8:
		copy2D[uint64](dst, dstOff, drs, dcs, src, srcOff, srs, scs, rows, cols)
	default:
		copy2D[uint8](dst, dstOff, drs, dcs, src, srcOff, srs, scs, rows, cols)
	}
}

// blockRange is the range of offsets a strided block touches.
func blockRange(off, rs, cs, rows, cols int) (lo, hi int) {
	lo, hi = off, off
	if d := (rows - 1) * rs; d < 0 {
		lo += d
	} else {
		hi += d
	}
	if d := (cols - 1) * cs; d < 0 {
		lo += d
	} else {
		hi += d
	}
	return lo, hi + 1
}

// copy2D copies a rows×cols block between strided layouts (offsets and
// strides in values of type T). The caller has checked the bounds.
func copy2D[T any](dstP unsafe.Pointer, db, drs, dcs int, srcP unsafe.Pointer, sb, srs, scs, rows, cols int) {
	var z T
	es := int(unsafe.Sizeof(z))
	at := func(p unsafe.Pointer, i int) *T { return (*T)(unsafe.Add(p, i*es)) }
	if cols < 8 && rows > 2*cols { // narrow: walk columns, rows inner
		for c := range cols {
			d, s := db+c*dcs, sb+c*scs
			for range rows {
				*at(dstP, d) = *at(srcP, s)
				d += drs
				s += srs
			}
		}
		return
	}
	for r := range rows {
		d, s := db+r*drs, sb+r*srs
		switch {
		case dcs == 1 && scs == 1 && cols > 16:
			copy(unsafe.Slice(at(dstP, d), cols), unsafe.Slice(at(srcP, s), cols))
		case dcs == 1 && scs == 1:
			dr, sr := unsafe.Slice(at(dstP, d), cols), unsafe.Slice(at(srcP, s), cols)
			for i := range dr {
				dr[i] = sr[i]
			}
		case dcs == 1 && scs == 0:
			v := *at(srcP, s)
			row := unsafe.Slice(at(dstP, d), cols)
			for i := range row {
				row[i] = v
			}
		case dcs == 1:
			row := unsafe.Slice(at(dstP, d), cols)
			for i := range row {
				row[i] = *at(srcP, s)
				s += scs
			}
		case scs == 1:
			row := unsafe.Slice(at(srcP, s), cols)
			for _, v := range row {
				*at(dstP, d) = v
				d += dcs
			}
		default:
			for range cols {
				*at(dstP, d) = *at(srcP, s)
				d += dcs
				s += scs
			}
		}
	}
}

// evalStep evaluates a fused expression into a destination view.
type evalStep struct {
	*prog
	tasks int
}

// newEvalStep compiles the evaluation of v into dst.
func newEvalStep(v *value, dst view) *evalStep {
	views := leavesOf(v.e, []view{dst})
	nt := newNest(v.dims(), views, 0)
	p := newProg(v.e, nt, 1)
	return &evalStep{prog: p, tasks: min(p.units, splitTasks(p.work, 1<<15))}
}

func (s *evalStep) storages(f func(*storage)) {
	for i := range s.accs {
		f(s.accs[i].st)
	}
}

func (s *evalStep) scratch() int { return s.nregs }

func (s *evalStep) run(st *state, w int) {
	st.pool.run(st, w, s.tasks, s)
}

func (s *evalStep) task(st *state, t, w int) {
	c := ctx{st: st, regs: st.regs(w), offs: st.offs(w, len(s.accs))}
	s.fillInvariants(&c)
	dst := &s.accs[0]
	direct := s.contiguous(dst)
	u0, u1 := s.taskUnits(t, s.tasks, false)
	for u := u0; u < u1; u++ {
		c.rows, c.cols = s.at(u, s.accs, c.offs)
		n := c.rows * c.cols
		if s.root.acc >= 0 {
			// A copy or a fill: one strided pass.
			a := &s.accs[s.root.acc]
			dp := st.ptr[dst.st.id]
			dlo, dhi := blockRange(c.offs[0], s.rowStride(dst), s.colStride(dst), c.rows, c.cols)
			if dlo < 0 || dhi > dst.st.size {
				panic(fmt.Errorf("destination block [%d, %d) outside storage of %d values", dlo, dhi, dst.st.size))
			}
			copyBlock(a.esize, dp, c.offs[0], s.rowStride(dst), s.colStride(dst), st.ptr[a.st.id], a.st.size, c.offs[s.root.acc], s.rowStride(a), s.colStride(a), c.rows, c.cols)
			continue
		}
		s.gather(&c)
		if direct {
			s.eval(s.root, &c, c.ptr(dst, c.offs[0], n))
			continue
		}
		r := s.eval(s.root, &c, nil)
		dlo, dhi := blockRange(c.offs[0], s.rowStride(dst), s.colStride(dst), c.rows, c.cols)
		if dlo < 0 || dhi > dst.st.size {
			panic(fmt.Errorf("destination block [%d, %d) outside storage of %d values", dlo, dhi, dst.st.size))
		}
		copyBlock(dst.esize, st.ptr[dst.st.id], c.offs[0], s.rowStride(dst), s.colStride(dst), r, n, 0, c.cols, 1, c.rows, c.cols)
	}
}
