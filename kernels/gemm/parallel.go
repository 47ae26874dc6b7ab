package gemm

import (
	"runtime"
	"sync"

	"github.com/hessian-spectra/runner/kernels/parallel"
)

// minFlopsPerThread is the least work (multiply-adds) worth a goroutine of its
// own: handing a part to a helper and waiting for it costs a few
// microseconds, in which a core does ~100k multiply-adds.
const minFlopsPerThread = 1 << 17

// splitKind says along which axis a product is divided between goroutines.
type splitKind int

const (
	splitBatch splitKind = iota // whole products of the batch
	splitRows                   // row ranges of C (multiples of mr)
	splitCols                   // column ranges of C (multiples of nr)
	splitK                      // k ranges summed at the end
)

// job is one parallel product (or batch of products), a parallel.Task. Jobs
// are pooled so that a call allocates nothing.
type job[T element] struct {
	p       problem[T]
	kr      *kernel[T]
	kind    splitKind
	parts   int
	item    int   // the batch item being split (all kinds but splitBatch)
	bounds  []int // part i covers [bounds[i], bounds[i+1]) along the split axis
	partial [][]T // splitK: the private m×n products of parts 1…
	wg      sync.WaitGroup
}

var jobs [2]sync.Pool

// run computes the validated problem p with kernel kr on up to threads
// goroutines (≤ 0: GOMAXPROCS).
func run[T element](p *problem[T], kr *kernel[T], threads int) {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	work := float64(p.batch) * float64(p.m) * float64(p.n) * float64(p.k)
	threads = int(min(float64(threads), max(1, work/minFlopsPerThread)))
	if threads == 1 {
		w := getWorkspace[T]()
		for i := 0; i < p.batch; i++ {
			a, b, c := p.operands(i)
			p.block(kr, w, a, b, c, p.ldc, 0, p.m, 0, p.n, 0, p.k, p.beta)
		}
		putWorkspace(w)
		return
	}
	j, _ := jobs[poolIndex[T]()].Get().(*job[T])
	if j == nil {
		j = new(job[T])
	}
	j.p, j.kr = *p, kr
	if p.batch >= threads {
		j.kind, j.parts = splitBatch, threads
		j.bounds = spread(j.bounds[:0], p.batch, 1, threads)
		j.do()
	} else {
		for i := 0; i < p.batch; i++ {
			j.item = i
			j.plan(threads)
			j.do()
		}
	}
	j.p = problem[T]{} // drop references to the caller's slices
	jobs[poolIndex[T]()].Put(j)
}

// plan chooses how to split product j.item over up to threads goroutines:
// along the rows of C when it has plenty of row tiles; along k when k is the
// long dimension (small C, long sums: weight gradients), each part reading
// its own share of A and B; else along rows or columns, whichever has more
// tiles.
func (j *job[T]) plan(threads int) {
	p, kr := &j.p, j.kr
	rowTiles := (p.m + kr.mr - 1) / kr.mr
	colTiles := (p.n + kr.nr - 1) / kr.nr
	switch {
	case rowTiles >= 4*threads:
		j.kind, j.parts = splitRows, threads
		j.bounds = spread(j.bounds[:0], p.m, kr.mr, j.parts)
	case p.k >= 2*kr.kc*threads && p.k >= p.m && p.k >= p.n:
		j.kind, j.parts = splitK, threads
		j.bounds = spread(j.bounds[:0], p.k, kr.kc, j.parts)
	case colTiles >= threads && colTiles > rowTiles:
		j.kind, j.parts = splitCols, threads
		j.bounds = spread(j.bounds[:0], p.n, kr.nr, j.parts)
	default:
		j.kind, j.parts = splitRows, min(threads, rowTiles)
		j.bounds = spread(j.bounds[:0], p.m, kr.mr, j.parts)
	}
}

// spread divides [0, n) into parts ranges whose inner bounds are multiples
// of unit, as equal as units allow, appending the parts+1 bounds to dst.
func spread(dst []int, n, unit, parts int) []int {
	units := (n + unit - 1) / unit
	for i := 0; i <= parts; i++ {
		dst = append(dst, min(n, units*i/parts*unit))
	}
	return dst
}

// do runs the parts and waits for them.
func (j *job[T]) do() {
	if j.kind == splitK && len(j.partial) < j.parts {
		j.partial = append(j.partial, make([][]T, j.parts-len(j.partial))...)
	}
	parallel.Run(j, j.parts)
	if j.kind == splitK {
		j.sumPartials()
	}
}

// RunPart computes part i of the job.
func (j *job[T]) RunPart(i int) {
	p := &j.p
	w := getWorkspace[T]()
	lo, hi := j.bounds[i], j.bounds[i+1]
	switch j.kind {
	case splitBatch:
		for item := lo; item < hi; item++ {
			a, b, c := p.operands(item)
			p.block(j.kr, w, a, b, c, p.ldc, 0, p.m, 0, p.n, 0, p.k, p.beta)
		}
	case splitRows:
		a, b, c := p.operands(j.item)
		p.block(j.kr, w, a, b, c, p.ldc, lo, hi, 0, p.n, 0, p.k, p.beta)
	case splitCols:
		a, b, c := p.operands(j.item)
		p.block(j.kr, w, a, b, c, p.ldc, 0, p.m, lo, hi, 0, p.k, p.beta)
	case splitK:
		a, b, c := p.operands(j.item)
		if i == 0 {
			p.block(j.kr, w, a, b, c, p.ldc, 0, p.m, 0, p.n, lo, hi, p.beta)
		} else {
			part := grow(&j.partial[i], p.m*p.n)
			p.block(j.kr, w, a, b, part, p.n, 0, p.m, 0, p.n, lo, hi, 0)
		}
	}
	putWorkspace(w)
}

// sumPartials adds the private products of parts 1… into C.
func (j *job[T]) sumPartials() {
	p := &j.p
	_, _, c := p.operands(j.item)
	for i := 1; i < j.parts; i++ {
		part := j.partial[i]
		for r := 0; r < p.m; r++ {
			row := c[r*p.ldc : r*p.ldc+p.n]
			for col, v := range part[r*p.n : r*p.n+p.n] {
				row[col] += v
			}
		}
	}
}

// operands returns the slices at which A_i, B_i and C_i start.
func (p *problem[T]) operands(i int) (a, b, c []T) {
	return p.a[i*p.strideA:], p.b[i*p.strideB:], p.c[i*p.strideC:]
}
