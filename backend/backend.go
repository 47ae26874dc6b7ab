// Package backend opens a GoMLX compute backend by the name a user gives on
// the command line or in GOMLX_BACKEND, with a safe configuration of the
// pure-Go backend and one-line errors (naming the missing piece and the fix)
// for XLA backends that cannot start. It never downloads anything.
//
// Names:
//
//	""               $GOMLX_BACKEND if set, else xla:cuda where an NVIDIA GPU and a
//	                 PJRT CUDA plugin are found, else cpu (Default)
//	cpu              this project's compiling CPU backend (package backend/cpu)
//	cpu:OPTIONS      the same with options, e.g. cpu:workers=1
//	go               GoMLX's pure-Go backend ("simplego"), ops executed one at a time
//	go:OPTIONS       the pure-Go backend with GoMLX's own options, e.g. go:ops_parallel
//	xla              XLA/PJRT with the first plugin found (cuda, then cpu)
//	xla:cpu, xla:cuda, xla:NAME
//	                 XLA/PJRT with the named plugin, found under PJRT_PLUGIN_LIBRARY_PATH
//	                 or GoMLX's standard directories
//	xla:/abs/path.so XLA/PJRT with the plugin file at that path
//
// XLA names accept GoMLX's trailing options (",shared_buffers", ",tf32", …).
//
// # The pure-Go executor
//
// "go" means "go:ops_sequential": the ops of a graph run one after another, and
// DotGeneral (the bulk of the work) splits itself over the cores. GoMLX's
// default executor instead runs independent ops concurrently, and it is not
// safe here, for two reasons found by reading simplego (exec.go,
// workerspool.go) and confirmed by runs:
//
//   - Deadlock. Ops run in a pool of 2×cores worker slots, and a DotGeneral
//     running in a slot waits for a free slot to start each of its batch
//     splits (workersPool.WaitToStart). When every slot holds a DotGeneral
//     waiting for a slot, nothing progresses: 5 of 8 benchmark runs of a
//     LeNet training step hung on 2 cores, gradients being full of
//     independent matrix products. Unlimited parallelism
//     ("go:ops_parallel,parallelism=-1") removes the wait.
//   - Data races. Even then, `go test -race` on a LeNet training step reports
//     races in the parallel executor: whether an op may overwrite an input
//     buffer in place (its last use) is decided from use counters read
//     without the lock that guards their updates (executeNode), and Exp was
//     seen writing a buffer that a concurrent Mul was reading. Results could
//     silently be wrong.
//
// The parallel executor was 18% faster (median wall time of a LeNet step at
// batch 256, 2 cores); "go:ops_parallel,parallelism=-1" remains available for
// whoever accepts the risk.
//
// # The compiling CPU backend
//
// "cpu" is the project's own backend (package backend/cpu): it compiles a
// graph into fused loops over a planned arena and GEMM calls, runs each step
// on all cores without the pitfalls above (a caller never waits for a worker
// to start; per-task partial results are combined in a fixed order, so
// results do not depend on the number of cores), and implements the
// operations this project's graphs use.
package backend

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/hessian-spectra/runner/backend/cpu"
)

// EnvVar is the environment variable read when no name is given.
const EnvVar = "GOMLX_BACKEND"

// Default is the backend used when neither a name nor EnvVar is given and no
// accelerator is found: the compiling CPU backend, which passes every test
// the pure-Go one does and is several times faster.
const Default = "cpu"

// Resolve returns the backend name Open would use for name: name itself, or
// $GOMLX_BACKEND, or "xla:cuda" when an NVIDIA GPU (/dev/nvidia*) and a PJRT
// CUDA plugin are both present (nothing is downloaded to find out), or Default.
func Resolve(name string) string {
	if name != "" {
		return name
	}
	if env := os.Getenv(EnvVar); env != "" {
		return env
	}
	if cudaAvailable() {
		return "xla:cuda"
	}
	return Default
}

// ForTests returns the backend name tests use: $GOMLX_BACKEND if set, else
// Default — never an accelerator found on the machine, so that the same
// tests run on the same backend everywhere unless asked otherwise
// (GOMLX_BACKEND=cpu go test ./...).
func ForTests() string {
	if env := os.Getenv(EnvVar); env != "" {
		return env
	}
	return Default
}

// Open returns the backend for name (see the package documentation). Errors
// are one line, name the backend, and say how to fix or avoid the problem.
func Open(name string) (backends.Backend, error) {
	name = Resolve(name)
	kind, config, _ := strings.Cut(name, ":")
	switch kind {
	case "go":
		if config == "" {
			config = "ops_sequential"
		}
		b, err := simplego.New(config)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %s", name, oneLine(err))
		}
		return b, nil
	case "cpu":
		b, err := cpu.New(config)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %s", name, oneLine(err))
		}
		return b, nil
	case "xla":
		return openXLA(name, config)
	}
	return nil, fmt.Errorf("backend %q: unknown; use cpu, go, xla:cpu, xla:cuda or xla:/path/to/pjrt_plugin.so", name)
}

// oneLine flattens an error message to its first line.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
