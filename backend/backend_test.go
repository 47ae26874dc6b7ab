package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// TestGo opens the pure-Go backend by every spelling and runs a graph on it —
// in this test binary, which also links the XLA backend and has no plugin.
func TestGo(t *testing.T) {
	checkOpens(t, "go", []openCase{{"go", ""}, {"", "go"}, {"go:ops_sequential", "xla:cuda"}})
}

// TestCPU opens the compiling CPU backend by every spelling and runs a graph
// on it.
func TestCPU(t *testing.T) {
	checkOpens(t, "cpu", []openCase{{"cpu", ""}, {"cpu:workers=1", ""}, {"", "cpu"}, {"", ""}, {"cpu:nofuse", "go"}})
}

// openCase is a backend name given with GOMLX_BACKEND set to env.
type openCase struct{ name, env string }

// checkOpens opens each case, checks that it gives backend want, and runs a
// graph on it.
func checkOpens(t *testing.T, want string, cases []openCase) {
	t.Helper()
	for _, c := range cases {
		t.Setenv(EnvVar, c.env)
		if c.name == "" && c.env == "" && cudaAvailable() {
			continue // the default is xla:cuda on this machine
		}
		b, err := Open(c.name)
		if err != nil {
			t.Fatalf("Open(%q) with %s=%q: %v", c.name, EnvVar, c.env, err)
		}
		if b.String() != want {
			t.Errorf("Open(%q) gave %s", c.name, b.String())
		}
		out, err := graph.ExecOnce(b, func(x *graph.Node) *graph.Node { return graph.MulScalar(x, 2) }, []float32{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Value().([]float32); got[1] != 4 {
			t.Errorf("2·[1 2] = %v", got)
		}
	}
}

// TestForTests checks that tests follow GOMLX_BACKEND and otherwise use the
// default, never an accelerator.
func TestForTests(t *testing.T) {
	t.Setenv(EnvVar, "")
	if got := ForTests(); got != Default {
		t.Errorf("ForTests() = %q, want %q", got, Default)
	}
	t.Setenv(EnvVar, "go")
	if got := ForTests(); got != "go" {
		t.Errorf("ForTests() with %s=go = %q", EnvVar, got)
	}
}

func TestResolve(t *testing.T) {
	t.Setenv(EnvVar, "")
	if got, want := Resolve(""), map[bool]string{false: Default, true: "xla:cuda"}[cudaAvailable()]; got != want {
		t.Errorf("Resolve(\"\") = %q, want %q", got, want)
	}
	t.Setenv(EnvVar, "xla:cpu")
	if got := Resolve(""); got != "xla:cpu" {
		t.Errorf("Resolve(\"\") with env = %q", got)
	}
	if got := Resolve("go"); got != "go" {
		t.Errorf("Resolve(go) = %q", got)
	}
}

// checkErrors opens each name and checks that it fails with a one-line error
// containing every wanted fragment, fast, and without a download attempt.
func checkErrors(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, c := range cases {
		start := time.Now()
		b, err := Open(c.name)
		if err == nil {
			t.Errorf("Open(%q) = %v, want an error", c.name, b)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("Open(%q): error spans lines: %q", c.name, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("Open(%q): %q lacks %q", c.name, msg, w)
			}
		}
		for _, bad := range []string{"github.com", "pypi", "dial tcp", "install"} {
			if strings.Contains(msg, bad) {
				t.Errorf("Open(%q) tried to download: %q", c.name, msg)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Open(%q) took %v", c.name, d)
		}
	}
}

type errorCase struct {
	name string
	want []string
}

func TestErrors(t *testing.T) {
	checkErrors(t, []errorCase{
		{"tpu", []string{`backend "tpu": unknown`, "xla:cuda"}},
		{"go:warp_speed", []string{`backend "go:warp_speed"`, "warp_speed"}},
		{"cpu:warp_speed", []string{`backend "cpu:warp_speed"`, "warp_speed", "workers=N"}},
		{"cpu:workers=0", []string{`backend "cpu:workers=0"`, "positive"}},
	})
}
