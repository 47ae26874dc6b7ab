package vec

import (
	"runtime"
	"sync"

	"github.com/hessian-spectra/runner/kernels/parallel"
)

// SumParallel is Sum over up to GOMAXPROCS goroutines, each summing at least
// Grain elements; the parts' sums are added in order.
func SumParallel[T Float](x []T) T { return reduceParallel(reduceSum, x, nil) }

// DotParallel is Dot over up to GOMAXPROCS goroutines (see SumParallel).
func DotParallel[T Float](x, y []T) T { return reduceParallel(reduceDot, x, y[:len(x)]) }

// ReduceMaxParallel is ReduceMax over up to GOMAXPROCS goroutines.
func ReduceMaxParallel[T Float](x []T) T { return reduceParallel(reduceMax, x, nil) }

type reduceOp int

const (
	reduceSum reduceOp = iota
	reduceDot
	reduceMax
)

// reduceTask is one parallel reduction, a parallel.Task; part i reduces
// its range into partial[i]. Tasks are pooled so that calls do not allocate.
type reduceTask[T Float] struct {
	op      reduceOp
	x, y    []T
	parts   int
	partial []T
}

// reduceTasks pools *reduceTask[float32] (index 0) and *reduceTask[float64].
var reduceTasks [2]sync.Pool

func reduceParallel[T Float](op reduceOp, x, y []T) T {
	parts := min(runtime.GOMAXPROCS(0), len(x)/Grain)
	if parts <= 1 {
		return reduceSerial(op, x, y)
	}
	pool := &reduceTasks[1]
	if is32[T]() {
		pool = &reduceTasks[0]
	}
	t, _ := pool.Get().(*reduceTask[T])
	if t == nil {
		t = new(reduceTask[T])
	}
	t.op, t.x, t.y, t.parts = op, x, y, parts
	if cap(t.partial) < parts {
		t.partial = make([]T, parts)
	}
	t.partial = t.partial[:parts]
	parallel.Run(t, parts)
	r := t.partial[0]
	for _, p := range t.partial[1:] {
		if op == reduceMax {
			r = max2(r, p)
		} else {
			r += p
		}
	}
	t.x, t.y = nil, nil
	pool.Put(t)
	return r
}

// RunPart reduces part i's range of the slices.
func (t *reduceTask[T]) RunPart(i int) {
	lo, hi := i*len(t.x)/t.parts, (i+1)*len(t.x)/t.parts
	var y []T
	if t.y != nil {
		y = t.y[lo:hi]
	}
	t.partial[i] = reduceSerial(t.op, t.x[lo:hi], y)
}

func reduceSerial[T Float](op reduceOp, x, y []T) T {
	switch op {
	case reduceDot:
		return Dot(x, y)
	case reduceMax:
		return ReduceMax(x)
	}
	return Sum(x)
}
