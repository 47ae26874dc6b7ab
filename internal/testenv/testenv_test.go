package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of
// stopping the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestMissingFailsOnlyInCI(t *testing.T) {
	for _, ci := range []string{"", "false", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Missing(r, "no %s", "thing")
		if ci == "true" {
			if r.fatal != "CI=true, yet no thing" || r.skip != "" {
				t.Errorf("CI=%q: fatal %q, skip %q; want a failure", ci, r.fatal, r.skip)
			}
		} else if r.skip != "no thing" || r.fatal != "" {
			t.Errorf("CI=%q: fatal %q, skip %q; want a skip", ci, r.fatal, r.skip)
		}
	}
}

func TestRequirePythonMissingModule(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	RequirePython(r, "no_such_module_xyz")
	if r.skip == "" && r.fatal == "" {
		t.Error("a module that does not exist was found")
	}
}
