// Package cpu is a GoMLX backend for CPUs that compiles a graph before running
// it: registered as "cpu" (GOMLX_BACKEND=cpu, --backend cpu).
//
// # Compile time
//
// Builder methods only record nodes and infer shapes (with GoMLX's own
// shapeinference, so shapes and errors match the other backends). Compile
// turns the recorded graph into a fixed list of steps:
//
//   - Dead nodes are dropped; Identity and same-dtype ConvertDType are
//     bypassed; small operations whose inputs are all constants are computed
//     once (fold.go); Iota becomes a constant.
//   - Reshape, Transpose, Slice, Broadcast, BroadcastInDim and Reverse move no
//     data: they become affine views (offset and one stride per axis) of the
//     value they read (view.go). A view of a view composes.
//   - Chains of element-wise operations, with the views and broadcasts that
//     feed them, become one fused loop (expr.go): an expression tree whose
//     leaves are views of materialised buffers, evaluated block by block in
//     small scratch registers that stay in the L1 cache. A fused value is
//     materialised only where it is used more than once, by an operation that
//     needs memory (a matrix product), or as a graph output; reductions and
//     concatenations evaluate their fused operands in their own loops, so
//     ReduceSum(Mul(a, b)) never builds the intermediate tensor.
//   - Zero-padded values (a concatenation with zero blocks: the adjoint of a
//     slice) stay symbolic as sums of boxed terms; additions of them and of
//     zeros, and slices of them, are resolved at compile time, and they are
//     written once: in place where the boxes are disjoint, as one
//     concatenation where they lie side by side, as one col2im pass where
//     they overlap (regions.go, accum.go). Concatenations along an inner axis
//     (im2col) are written in one pass over their output (concat.go), and a
//     large patch matrix read only by convolution products is never stored:
//     the products build it tile by tile in per-worker scratch (fuse.go).
//   - Matrix products (DotGeneral) read their operands in place whenever the
//     operands' strides describe a matrix or its transpose; the transposition
//     is then a flag of the GEMM call (dot.go). Only operands whose axes
//     cannot be described so are copied, once, in the layout that needs the
//     cheaper copy; a product read only transposed is computed transposed.
//   - Buffers are planned (exec.go): every intermediate value gets an offset
//     in one arena per execution, chosen from the liveness intervals of the
//     steps (greedy by size), so that a steady-state execution allocates no
//     intermediate memory; the value that becomes a graph output is computed
//     directly into the output buffer; an element-wise step may overwrite a
//     donated input in place.
//
// # Run time
//
// Steps run in order; each splits its work into tasks whose boundaries
// depend only on the shapes, never on the number of threads, and runs them on
// a pool of worker goroutines (parallel.go). The caller always works on its
// own tasks and never waits for a worker to become free, so nested or
// concurrent executions cannot deadlock (the failure of GoMLX's pure-Go
// executor described in package backend). Reductions combine per-task partial
// results in task order: the same inputs give bit-identical outputs whatever
// the number of cores.
//
// Matrix products go through the two function variables of gemm.go (the
// project's AVX2 kernels, kernels/gemm), float loops through those of vec.go
// (kernels/vec); dotStep divides each product into tasks by its shapes and
// calls the GEMM on one goroutine per task.
//
// # Scope
//
// The backend implements the operations this project's graphs use (forward,
// first, second and third derivatives of its four models, the optimisers and
// the Hessian computations) plus the common element-wise, reduction and
// shape operations, for float32 and float64 (integers and booleans where the
// graphs need them). Any other operation fails when the graph is built, with
// a one-line error naming it; Capabilities lists what is supported.
//
// Configuration ("cpu:OPTIONS", comma-separated): workers=N sets the number
// of worker goroutines (default GOMAXPROCS); nofuse materialises every
// operation (for tests that compare fused and unfused results).
package cpu

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
)

// BackendName is the name under which the backend is registered.
const BackendName = "cpu"

func init() {
	backends.Register(BackendName, New)
}

// Backend is the compiling CPU backend. It is safe for concurrent use: any
// number of graphs may be built, compiled and executed at the same time.
type Backend struct {
	workers *pool
	noFuse  bool

	mu        sync.Mutex
	finalized bool
	buffers   bufferPool
}

var _ backends.Backend = (*Backend)(nil)

// New returns a backend configured by config (see the package
// documentation); "" gives the defaults.
func New(config string) (backends.Backend, error) {
	n := runtime.GOMAXPROCS(0)
	noFuse := false
	for _, opt := range strings.Split(config, ",") {
		key, value, _ := strings.Cut(strings.TrimSpace(opt), "=")
		switch key {
		case "":
		case "workers":
			v, err := strconv.Atoi(value)
			if err != nil || v < 1 {
				return nil, fmt.Errorf("cpu backend: workers=%q: want a positive integer", value)
			}
			n = v
		case "nofuse":
			noFuse = true
		default:
			return nil, fmt.Errorf("cpu backend: unknown option %q (valid: workers=N, nofuse)", key)
		}
	}
	return &Backend{workers: newPool(n), noFuse: noFuse}, nil
}

// Name returns "cpu".
func (b *Backend) Name() string { return BackendName }

// String returns "cpu".
func (b *Backend) String() string { return BackendName }

// Description describes the backend.
func (b *Backend) Description() string {
	return fmt.Sprintf("compiling CPU backend (%d workers)", b.workers.size)
}

// NumDevices returns 1: the CPU.
func (b *Backend) NumDevices() int { return 1 }

// DeviceDescription describes the only device.
func (b *Backend) DeviceDescription(backends.DeviceNum) string { return "cpu" }

// Capabilities lists the supported operations and dtypes.
func (b *Backend) Capabilities() backends.Capabilities { return Capabilities() }

// Builder starts a new computation named name.
func (b *Backend) Builder(name string) backends.Builder { return newBuilder(b, name) }

// Finalize releases the pooled buffers; the backend must not be used
// afterwards.
func (b *Backend) Finalize() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finalized = true
	b.buffers.clear()
}

// IsFinalized reports whether Finalize was called.
func (b *Backend) IsFinalized() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.finalized
}
