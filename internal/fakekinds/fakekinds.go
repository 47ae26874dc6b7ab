// Package fakekinds provides stage kinds for testing the runner without any
// ML: they compute small deterministic files from their params and inputs.
//
// Tests steer them through params (fail, panic, sleep_ms) and through
// environment variables that are not part of any stage key:
//
//	FAKEKINDS_TRACE=file  append "<stage id>\n" to file each time a stage runs
//	FAKEKINDS_MARK=dir    create dir/<n> (n counts up) when a stage starts sleeping
//	FAKEKINDS_FAST=1      skip sleeps
package fakekinds

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"github.com/hessian-spectra/runner/stage"
)

// Registry returns the fake kinds: gen, sum, chunks and nondet, and job and
// table for cluster executor tests.
func Registry() stage.Registry {
	r := stage.Registry{}
	r.Register(Gen)
	r.Register(Sum)
	r.Register(Chunks)
	r.Register(Nondet)
	r.Register(Job)
	r.Register(Table)
	return r
}

// Result is what gen and sum write to result.json.
type Result struct {
	Value float64 `json:"value"` // the computed value
	// Inputs counts the artifacts read, by input name.
	Inputs map[string]int `json:"inputs,omitempty"`
	// Src is the size of the src param's file, when set.
	Src int64 `json:"src,omitempty"`
}

// Gen writes result.json with value×n plus the values of its inputs, a
// payload of size deterministic bytes, and its wall-clock time in
// run/wall.txt (not digested).
var Gen = &stage.Kind{
	Name:    "gen",
	Version: 1,
	Doc:     "Writes value×n plus its inputs' values (a test kind).",
	Params: []stage.Param{
		{Name: "value", Type: stage.Float, Default: 1.0, Doc: "the value"},
		{Name: "n", Type: stage.Int, Default: 1, Min: stage.Bound(0), Max: stage.Bound(1000), Doc: "a multiplier"},
		{Name: "label", Type: stage.String, Default: "", Doc: "free text"},
		{Name: "mode", Type: stage.String, Default: "a", Enum: []string{"a", "b"}, Doc: "a choice"},
		{Name: "flags", Type: stage.List, Elem: stage.String, Doc: "a list"},
		{Name: "size", Type: stage.Int, Default: 0, Min: stage.Bound(0), Doc: "payload bytes"},
		{Name: "steps", Type: stage.Int, Default: 0, Min: stage.Bound(0), Doc: "progress steps to report"},
		{Name: "sleep_ms", Type: stage.Int, Default: 0, Min: stage.Bound(0), Doc: "time to take, honouring cancellation"},
		{Name: "fail", Type: stage.Bool, Default: false, Doc: "return an error"},
		{Name: "panic", Type: stage.Bool, Default: false, Doc: "panic"},
		{Name: "src", Type: stage.Path, Doc: "a file to read"},
		{Name: "opts", Type: stage.Object, Doc: "nested options", Fields: []stage.Param{
			{Name: "alpha", Type: stage.Float, Default: 0.5},
			{Name: "per_class", Type: stage.Int, Default: 10, Min: stage.Bound(1)},
			{Name: "dir", Type: stage.Path},
		}},
	},
	Inputs: []stage.Input{
		{Name: "in", Doc: "values to add", Optional: true, Many: true},
		{Name: "base", Doc: "one value to add", Optional: true},
	},
	Run: runGen,
}

// Sum writes result.json with scale × the sum of its inputs' values.
var Sum = &stage.Kind{
	Name:    "sum",
	Version: 1,
	Doc:     "Sums its inputs' values (a test kind).",
	Params: []stage.Param{
		{Name: "scale", Type: stage.Float, Default: 1.0},
	},
	Inputs: []stage.Input{{Name: "in", Many: true}},
	Run: func(ctx context.Context, e *stage.Env) error {
		trace(e)
		total, counts, err := readInputs(e)
		if err != nil {
			return err
		}
		e.Logf("sum of %d inputs: %g", counts["in"], total)
		return writeResult(e, Result{Value: e.Params.Float("scale") * total, Inputs: counts})
	},
}

// Chunks computes n chunks one after another, keeping each in its scratch
// directory as it completes, so that a run killed part way resumes after the
// last complete chunk (as the train stage resumes after its last epoch). It
// writes data.txt (the chunks, each derived from value and its index),
// result.json with value plus its inputs, and its chunk wall times in
// run/chunks.txt. It declares n as a reuse param (stage.Reuse): given a
// cached artifact with other n, it takes the chunks that artifact holds
// and computes the rest, recording both counts in run/run.json
// (chunks_reused, chunks_computed).
var Chunks = &stage.Kind{
	Name:    "chunks",
	Version: 1,
	Doc:     "Computes n chunks resumably (a test kind).",
	Params: []stage.Param{
		{Name: "value", Type: stage.Float, Default: 1.0},
		{Name: "n", Type: stage.Int, Default: 4, Min: stage.Bound(1), Max: stage.Bound(1000)},
		{Name: "sleep_ms", Type: stage.Int, Default: 0, Min: stage.Bound(0), Doc: "time each chunk takes"},
	},
	Inputs: []stage.Input{{Name: "base", Optional: true}},
	Reuse: &stage.Reuse{Params: []string{"n"}, Plan: func(from, to stage.Params) (stage.ReusePlan, bool) {
		a, b := from.Int("n"), to.Int("n")
		if a >= b {
			return stage.ReusePlan{How: fmt.Sprintf("derived from cached run of %d chunks", a)}, true
		}
		return stage.ReusePlan{How: fmt.Sprintf("extends cached run of %d chunks by %d", a, b-a), Cost: float64(b - a)}, true
	}},
	Run: runChunks,
}

func runChunks(ctx context.Context, e *stage.Env) error {
	trace(e)
	p := e.Params
	var data, times strings.Builder
	var prior []string
	if e.Prior != nil {
		b, err := os.ReadFile(filepath.Join(e.Prior.Dir, "data.txt"))
		if err != nil {
			return err
		}
		prior = strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	reused, computed := 0, 0
	defer func() { e.SetRunInfo("chunks_reused", reused); e.SetRunInfo("chunks_computed", computed) }()
	for i := 0; i < p.Int("n"); i++ {
		chunk := fmt.Sprintf("chunk %d: %.17g\n", i, p.Float("value")*float64(i*i+1))
		if i < len(prior) {
			data.WriteString(strings.TrimSuffix(prior[i], "\n") + "\n")
			reused++
			continue
		}
		saved := ""
		if e.Scratch != "" {
			saved = filepath.Join(e.Scratch, fmt.Sprintf("chunk-%04d", i))
			if b, err := os.ReadFile(saved); err == nil {
				data.Write(b) // completed by an earlier, interrupted run
				continue
			}
		}
		if err := sleep(ctx, e, time.Duration(p.Int("sleep_ms"))*time.Millisecond); err != nil {
			return err
		}
		computed++
		if saved != "" {
			if err := atomicfile.WriteFile(saved, []byte(chunk), 0o666); err != nil {
				return err
			}
		}
		data.WriteString(chunk)
		fmt.Fprintf(&times, "%d %s\n", i, time.Now().Format(time.RFC3339Nano))
	}
	if err := os.WriteFile(filepath.Join(e.OutDir, "data.txt"), []byte(data.String()), 0o666); err != nil {
		return err
	}
	if e.RunDir != "" {
		if err := os.WriteFile(filepath.Join(e.RunDir, "chunks.txt"), []byte(times.String()), 0o666); err != nil {
			return err
		}
	}
	total, counts, err := readInputs(e)
	if err != nil {
		return err
	}
	return writeResult(e, Result{Value: p.Float("value") + total, Inputs: counts})
}

// Nondet writes different bytes each time it runs: a kind that fails a
// determinism re-check.
var Nondet = &stage.Kind{
	Name:    "nondet",
	Version: 1,
	Doc:     "Writes random bytes (a test kind).",
	Run: func(ctx context.Context, e *stage.Env) error {
		trace(e)
		// Fixed length, so only the content differs between runs.
		return os.WriteFile(filepath.Join(e.OutDir, "random.txt"), []byte(fmt.Sprintf("%016x\n", rand.Uint64())), 0o666)
	},
}

func runGen(ctx context.Context, e *stage.Env) error {
	trace(e)
	p := e.Params
	e.Logf("gen %s: value=%g n=%d backend=%q downloads=%s", e.ID, p.Float("value"), p.Int("n"), e.Backend, e.Downloads)
	if p.Bool("panic") {
		panic("gen: asked to panic")
	}
	if steps := p.Int("steps"); steps > 0 {
		e.Progress.Start("steps", steps)
		for i := 0; i < steps; i++ {
			e.Progress.Advance(1)
		}
		e.Progress.Finish()
	}
	// Write part of the output before sleeping, so that a kill mid-stage
	// leaves a half-written directory behind.
	if err := os.WriteFile(filepath.Join(e.OutDir, "partial.txt"), []byte("started\n"), 0o666); err != nil {
		return err
	}
	if err := sleep(ctx, e, time.Duration(p.Int("sleep_ms"))*time.Millisecond); err != nil {
		return err
	}
	if p.Bool("fail") {
		return failWithLog(e, "gen")
	}
	total, counts, err := readInputs(e)
	if err != nil {
		return err
	}
	r := Result{Value: p.Float("value")*float64(p.Int("n")) + total, Inputs: counts}
	if p.Has("src") {
		info, err := os.Stat(p.String("src"))
		if err != nil {
			return err
		}
		r.Src = info.Size()
	}
	if n := p.Int("size"); n > 0 {
		f, err := os.Create(filepath.Join(e.OutDir, "payload.bin"))
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<16)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		for n > 0 {
			k := min(n, len(buf))
			if _, err := f.Write(buf[:k]); err != nil {
				f.Close()
				return err
			}
			n -= k
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	// Wall-clock facts belong in RunDir, which the digest leaves out.
	if e.RunDir != "" {
		e.SetRunInfo("fake_backend", e.Backend)
		stamp := []byte(time.Now().Format(time.RFC3339Nano) + "\n")
		if err := os.WriteFile(filepath.Join(e.RunDir, "wall.txt"), stamp, 0o666); err != nil {
			return err
		}
	}
	return writeResult(e, r)
}

// failWithLog writes 30 log lines, more than a failure shows, and fails.
func failWithLog(e *stage.Env, kind string) error {
	for i := 1; i <= 30; i++ {
		e.Logf("log line %d", i)
	}
	return fmt.Errorf("%s: asked to fail", kind)
}

var markSeq atomic.Int64

func sleep(ctx context.Context, e *stage.Env, d time.Duration) error {
	if d <= 0 || os.Getenv("FAKEKINDS_FAST") == "1" {
		return nil
	}
	if dir := os.Getenv("FAKEKINDS_MARK"); dir != "" {
		name := fmt.Sprintf("%d-%d", os.Getpid(), markSeq.Add(1))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(e.ID), 0o666); err != nil {
			return err
		}
	}
	e.Logf("sleeping %v", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func trace(e *stage.Env) {
	p := os.Getenv("FAKEKINDS_TRACE")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	f.WriteString(e.ID + "\n") // one write(2) with O_APPEND: lines never interleave
}

func readInputs(e *stage.Env) (float64, map[string]int, error) {
	var total float64
	counts := map[string]int{}
	for name, arts := range e.Inputs {
		for _, a := range arts {
			data, err := os.ReadFile(filepath.Join(a.Dir, "result.json"))
			if err != nil {
				return 0, nil, fmt.Errorf("input %s from %s: %w", name, a.Stage, err)
			}
			var r Result
			if err := json.Unmarshal(data, &r); err != nil {
				return 0, nil, fmt.Errorf("input %s from %s: %w", name, a.Stage, err)
			}
			total += r.Value
			counts[name]++
		}
	}
	if len(counts) == 0 {
		counts = nil
	}
	return total, counts, nil
}

func writeResult(e *stage.Env, r Result) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.OutDir, "result.json"), append(data, '\n'), 0o666)
}

// ReadResult reads result.json from an artifact directory.
func ReadResult(dir string) (Result, error) {
	var r Result
	data, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(data, &r)
	return r, err
}

// Traced reads a FAKEKINDS_TRACE file: how many times each stage id ran.
func Traced(file string) (map[string]int, error) {
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			out[line]++
		}
	}
	return out, nil
}
