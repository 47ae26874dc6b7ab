package fakekinds

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hessian-spectra/runner/stage"
)

// Job is a heavy kind for cluster executor tests: it creates the file named
// by touch when it starts (a marker a test waits for), sleeps, then exits
// the process with exit when that is not 0 (as a crashing stage would), or
// fails when fail is set, or writes result.json with value plus its inputs'
// values.
var Job = &stage.Kind{
	Name:    "job",
	Version: 1,
	Doc:     "Sleeps, then exits with a code, fails, or writes value plus its inputs (a test kind).",
	Params: []stage.Param{
		{Name: "value", Type: stage.Float, Default: 1.0, Doc: "the value"},
		{Name: "sleep_ms", Type: stage.Int, Default: 0, Min: stage.Bound(0), Doc: "time to take, honouring cancellation"},
		{Name: "exit", Type: stage.Int, Default: 0, Min: stage.Bound(0), Max: stage.Bound(255), Doc: "exit the process with this code after sleeping (0: don't)"},
		{Name: "fail", Type: stage.Bool, Default: false, Doc: "return an error after sleeping"},
		{Name: "touch", Type: stage.String, Default: "", Doc: "a file to create when the stage starts"},
	},
	Inputs: []stage.Input{{Name: "in", Doc: "values to add", Optional: true, Many: true}},
	Run: func(ctx context.Context, e *stage.Env) error {
		trace(e)
		p := e.Params
		if f := p.String("touch"); f != "" {
			if err := os.WriteFile(f, []byte(fmt.Sprintf("%d %s\n", os.Getpid(), time.Now().Format(time.RFC3339Nano))), 0o666); err != nil {
				return err
			}
		}
		if err := sleep(ctx, e, time.Duration(p.Int("sleep_ms"))*time.Millisecond); err != nil {
			return err
		}
		if code := p.Int("exit"); code != 0 {
			fmt.Fprintf(os.Stderr, "job %s: exiting with code %d\n", e.ID, code)
			os.Exit(code)
		}
		if p.Bool("fail") {
			return failWithLog(e, "job")
		}
		total, counts, err := readInputs(e)
		if err != nil {
			return err
		}
		return writeResult(e, Result{Value: p.Float("value") + total, Inputs: counts})
	},
}

// Table is sum as a light kind, which cluster executors run in the head
// process.
var Table = func() *stage.Kind {
	k := *Sum
	k.Name, k.Doc, k.Light = "table", "Sums its inputs' values; a light kind (a test kind).", true
	return &k
}()
