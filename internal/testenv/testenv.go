// Package testenv gives tests the external things some of them need —
// Debian's FashionMNIST, a Python with numpy, a Slurm cluster — and decides
// what their absence means: a skip on a developer's machine, a failure in
// CI (CI=true), where .ci/run installs them and a skip would hide that the
// tests did not run.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist installs the
// published FashionMNIST files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// Python is the interpreter with Debian's python3-numpy and python3-pandas.
// (A python3 earlier on PATH, e.g. from pyenv, often lacks them.)
const Python = "/usr/bin/python3"

// InCI reports whether the tests run in CI: CI=true in the environment.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because what it needs is not installed: a skip,
// or in CI a failure, with the same message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, yet "+format, args...)
		return
	}
	t.Skipf(format, args...)
}

// RequireFashionMNIST returns FashionMNISTDir when it holds the four
// published files, and otherwise stops the test (see Missing).
func RequireFashionMNIST(t testing.TB) string {
	t.Helper()
	for _, f := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(FashionMNISTDir, f)); err != nil {
			Missing(t, "no Debian FashionMNIST (%v); apt-get install dataset-fashion-mnist", err)
			return ""
		}
	}
	return FashionMNISTDir
}

// RequirePython returns Python when it runs and imports every named
// module, and otherwise stops the test (see Missing).
func RequirePython(t testing.TB, modules ...string) string {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		Missing(t, "no %s (%v); apt-get install python3-numpy python3-pandas", Python, err)
		return ""
	}
	if len(modules) > 0 {
		out, err := exec.Command(Python, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			Missing(t, "%s cannot import %s (%v: %s); apt-get install python3-numpy python3-pandas",
				Python, strings.Join(modules, ", "), err, lines[len(lines)-1])
			return ""
		}
	}
	return Python
}

// SlurmJobcomp is where the one-node Slurm of scripts/slurm-local.sh logs
// each finished job, one line each.
const SlurmJobcomp = "/var/log/slurm/jobcomp.log"

// RequireSlurm stops the test (see Missing) unless a Slurm cluster set up
// by scripts/slurm-local.sh answers here with a node ready for jobs. It
// asks once per test binary: a controller that is down takes seconds to
// say so.
func RequireSlurm(t testing.TB) {
	t.Helper()
	slurmOnce.Do(func() { slurmMissing = checkSlurm() })
	if slurmMissing != "" {
		Missing(t, "%s; run scripts/slurm-local.sh start (as root)", slurmMissing)
	}
}

var (
	slurmOnce    sync.Once
	slurmMissing string // why RequireSlurm stops tests; "" when Slurm is up
)

func checkSlurm() string {
	if _, err := exec.LookPath("sbatch"); err != nil {
		return "Slurm is not installed"
	}
	out, err := exec.Command("sinfo", "-h", "-N", "-o", "%T").Output()
	if err != nil {
		return "no Slurm controller answers"
	}
	if st := strings.TrimSpace(string(out)); !strings.HasPrefix(st, "idle") && !strings.HasPrefix(st, "mixed") && !strings.HasPrefix(st, "allocated") {
		return "the Slurm node is " + st
	}
	if _, err := os.Stat(SlurmJobcomp); err != nil {
		return "this Slurm was not set up by scripts/slurm-local.sh (no " + SlurmJobcomp + ")"
	}
	return ""
}
