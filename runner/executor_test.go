package runner

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
)

// execExecutor runs the stages it accepts through Exec, as a cluster job
// would, counting how many run at once.
type execExecutor struct {
	f        *fixture
	accept   string // the kind it accepts
	slots    int
	mu       sync.Mutex
	running  int
	most     int
	jobs     int
	closed   bool
	canceled bool
}

func (x *execExecutor) Accepts(t *Task) bool { return t.Kind.Name == x.accept }
func (x *execExecutor) Slots() int           { return x.slots }

func (x *execExecutor) Execute(ctx context.Context, t *Task) TaskResult {
	x.mu.Lock()
	x.running++
	x.jobs++
	id := x.jobs
	x.most = max(x.most, x.running)
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.running--
		x.mu.Unlock()
	}()
	if err := x.f.store.WriteDesc(t.Key, t.Desc); err != nil {
		return TaskResult{Err: err}
	}
	t.Events.Queued(fmt.Sprintf("test job %d", id))
	t.Events.Waiting("Priority")
	t.Events.Running()
	rec, _, err := Exec(ctx, x.f.store, x.f.reg, t.Key, ExecOptions{})
	return TaskResult{Digest: rec.Digest, Err: err, Where: fmt.Sprintf("test job %d on n1", id)}
}

func (x *execExecutor) Close(cancelled bool, note func(string)) error {
	x.closed, x.canceled = true, cancelled
	note("test executor closed")
	return nil
}

func TestExecutorRunsWhatItAccepts(t *testing.T) {
	f := newFixture(t)
	x := &execExecutor{f: f, accept: "gen", slots: 1}
	var out safeBuffer
	src := `
stages:
  a: {kind: gen, matrix: {i: [1, 2, 3]}, with: {value: "${i}", sleep_ms: 20}}
  s: {kind: sum, needs: {in: "a[*]"}}
`
	sum := f.run(src, func(o *Options) { o.Executor = x; o.Reporter = NewPlainReporter(&out, false) })
	if !sum.OK() || sum.Ran != 4 {
		t.Fatalf("%v\n%s", sum, out.String())
	}
	if x.jobs != 3 || x.most != 1 || !x.closed || x.canceled {
		t.Errorf("executor ran %d stages, %d at most at once (slots 1); closed %v, cancelled %v", x.jobs, x.most, x.closed, x.canceled)
	}
	for _, want := range []string{
		`(?m)^queued   a\[i=\d\]  \(test job 1\)$`,
		`(?m)^  a\[i=\d\]: pending \(Priority\)$`,
		`(?m)^ran      a\[i=\d\]  \d+\.\d s  \(new\)  \[test job 3 on n1\]$`,
		`(?m)^ran      s  \d+\.\d s  \(new\)$`, // not accepted: ran here
		`(?m)^test executor closed$`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
}
