package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hessian-spectra/runner/runner"
)

const planHelp = `
Plan lists every stage instance with its kind, its key, whether run would
serve it from the cache ("cached") or compute it ("run"), and why: "new",
"param lr 0.01 → 0.005", "input train changed", "implementation v2 → v3",
"forced". The reasons compare with the keys of the spec's previous run. A
stage downstream of one that runs has no key yet ("-"): keys cover the
digests of input artifacts.

--explain ID prints what goes into that stage's key instead.`

func runPlan(c *cli, args []string) int {
	cmd := findCommand("plan")
	fs := c.newFlags(cmd, planHelp)
	asJSON := fs.Bool("json", false, "print JSON: a list of {spec, id, kind, key, action, cached, digest, dir, reasons, error}")
	explain := fs.String("explain", "", "print the canonical description hashed into this stage's key")
	var force listFlag
	fs.Var(&force, "force", "plan this stage as forced; repeatable")
	cache := cacheFlag(fs)
	var sf specFlags
	sf.add(fs)
	files, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	pipes, ok := c.loadSpecs(files, &sf)
	if !ok {
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	opts := runner.Options{Store: store, Force: force}
	if *explain != "" {
		text, err := runner.Explain(pipes, *explain, opts)
		if err != nil {
			fmt.Fprintf(c.stderr, "runner plan: %v\n", err)
			return exitUsage
		}
		fmt.Fprint(c.stdout, text)
		return exitOK
	}
	entries, err := runner.Plan(pipes, opts)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner plan: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		type jsonEntry struct {
			runner.PlanEntry
			Action string `json:"action"`
		}
		out := make([]jsonEntry, len(entries))
		for i, e := range entries {
			out[i] = jsonEntry{e, e.Action()}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return exitFailed
		}
		return planExit(entries)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tSTAGE\tKIND\tKEY\tWHY")
	toRun := 0
	for _, e := range entries {
		key := "-"
		if e.Key != "" {
			key = e.Key.Short()
		}
		if !e.Cached {
			toRun++
		}
		id := e.ID
		if len(pipes) > 1 {
			id = e.Spec + ":" + id
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Action(), id, e.Kind, key, strings.Join(e.Reasons, "; "))
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "%d stages: %d cached, %d to run\n", len(entries), len(entries)-toRun, toRun)
	if n := cannotRun(entries); n > 0 {
		fmt.Fprintf(c.stderr, "runner plan: %d stages cannot run (see their errors above)\n", n)
		return exitFailed
	}
	return exitOK
}

// cannotRun counts the stages a run would fail before starting them: their
// key cannot be computed (a Path param naming a missing file, say).
func cannotRun(entries []runner.PlanEntry) int {
	n := 0
	for _, e := range entries {
		if e.Error != "" {
			n++
		}
	}
	return n
}

// planExit is plan's exit status: failure when some stage cannot run.
func planExit(entries []runner.PlanEntry) int {
	if cannotRun(entries) > 0 {
		return exitFailed
	}
	return exitOK
}
