package main

import (
	"os"
	"testing"

	"github.com/hessian-spectra/runner/internal/fakekinds"
)

// asRunnerEnv makes the test binary act as the runner command, with the fake
// stage kinds, so tests can start real runner processes (several at once,
// or one to kill).
const asRunnerEnv = "RUNNER_TEST_AS_RUNNER"

func TestMain(m *testing.M) {
	if os.Getenv(asRunnerEnv) == "1" {
		os.Exit(Main(os.Args[1:], fakekinds.Registry(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
