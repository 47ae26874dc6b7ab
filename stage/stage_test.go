package stage

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// Call gives a kind what the runner gives it, whatever the caller left out.
func TestCallFillsTheEnv(t *testing.T) {
	var seen *Env
	k := &Kind{Name: "k", Version: 1, Run: func(_ context.Context, e *Env) error {
		seen = e
		e.Progress.Start("unit", 1) // must not panic on a nil Progress
		e.Progress.Finish()
		e.RunInfo["backend"] = "go" // must not panic on a nil map
		e.Logf("hello")
		return nil
	}}
	if err := k.Call(context.Background(), &Env{ID: "s"}); err != nil {
		t.Fatal(err)
	}
	if seen.Progress != Discard || seen.RunInfo["backend"] != "go" || seen.Log == nil {
		t.Fatalf("env %+v", seen)
	}
}

// A panic in Run is an error of one line, "panic: …", without the stage id
// (whoever reports it adds that), with the stack in the stage's log.
func TestCallRecoversPanics(t *testing.T) {
	k := &Kind{Name: "k", Version: 1, Run: func(context.Context, *Env) error {
		var m map[string]int
		m["x"]++ // a runtime error, as a GoMLX shape mismatch would be
		return nil
	}}
	var log bytes.Buffer
	err := k.Call(context.Background(), &Env{ID: "snap", Log: &log})
	if err == nil || err.Error() != "panic: assignment to entry in nil map" {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(log.String(), "panic: assignment to entry in nil map") || !strings.Contains(log.String(), "stage.TestCallRecoversPanics") {
		t.Errorf("the log lacks the panic and its stack:\n%s", log.String())
	}
}

// Errors pass through unchanged, and a nil Log swallows the stack.
func TestCallPassesErrors(t *testing.T) {
	boom := errors.New("boom")
	k := &Kind{Name: "k", Version: 1, Run: func(context.Context, *Env) error { return boom }}
	if err := k.Call(context.Background(), &Env{}); err != boom {
		t.Fatalf("err %v, want boom itself", err)
	}
	k.Run = func(context.Context, *Env) error { panic("no log") }
	if err := k.Call(context.Background(), &Env{}); err == nil || err.Error() != "panic: no log" {
		t.Fatalf("err %v", err)
	}
}

// Env.Input's errors name the input, not the stage: the caller adds that.
func TestInputErrors(t *testing.T) {
	e := &Env{ID: "spectrum", Inputs: map[string][]Artifact{"many": {{}, {}}}}
	if _, err := e.Input("data"); err == nil || err.Error() != `input "data" is not bound` {
		t.Errorf("unbound: %v", err)
	}
	if _, err := e.Input("many"); err == nil || err.Error() != `input "many" is bound to 2 artifacts, want one` {
		t.Errorf("bound twice: %v", err)
	}
}

// DidYouMean is the one hint rule of specs, params and commands.
func TestDidYouMean(t *testing.T) {
	commands := []string{"run", "plan", "show", "report", "status", "exec-stage"}
	for word, want := range map[string]string{
		"plna":      ` (did you mean "plan"?)`, // a swap is one edit
		"Run":       ` (did you mean "run"?)`,  // case is ignored
		"exec-stag": ` (did you mean "exec-stage"?)`,
		"zzz":       "",
		"rn":        ` (did you mean "run"?)`,
		"sh":        "", // two edits from show: more than a third of the word
	} {
		if got := DidYouMean(word, commands); got != want {
			t.Errorf("DidYouMean(%q) = %q, want %q", word, got, want)
		}
	}
}
