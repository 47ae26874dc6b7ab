package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/runner"
)

const gcHelp = `
Gc removes cache records, and then every artifact no remaining record points
to, plus leftovers of crashed runs (temp dirs, failed logs, quarantined
artifacts, unheld lock files). It refuses to run without a scope:

  --keep SPEC     keep the current stages of this spec (repeatable, or list
                  several specs after the flag); remove every other record
  --older-than D  remove records not used for longer than D (e.g. 36h, 30d)

Given both, a record goes when it is outside the kept specs AND older than D.
Downloads are kept. Gc refuses while a run is using the cache.`

func runGC(c *cli, args []string) int {
	cmd := findCommand("gc")
	fs := c.newFlags(cmd, gcHelp)
	var keep listFlag
	fs.Var(&keep, "keep", "a spec whose stages to keep; repeatable")
	olderThan := fs.String("older-than", "", "remove records unused for longer than this (Go duration, or Nd for days)")
	dry := fs.Bool("dry-run", false, "report what would be removed, remove nothing")
	cache := cacheFlag(fs)
	var sf specFlags
	sf.add(fs)
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	// "--keep a.yaml b.yaml": specs after the flag count as kept.
	if len(keep) > 0 {
		keep = append(keep, pos...)
	} else if len(pos) > 0 {
		fmt.Fprintf(c.stderr, "runner gc: unexpected %s; name specs to keep with --keep\n", strings.Join(pos, " "))
		return exitUsage
	}
	var policy artifacts.GCPolicy
	policy.DryRun = *dry
	if *olderThan != "" {
		d, err := parseAge(*olderThan)
		if err != nil {
			fmt.Fprintf(c.stderr, "runner gc: --older-than: %v\n", err)
			return exitUsage
		}
		policy.OlderThan = d
	}
	if len(keep) == 0 && policy.OlderThan == 0 {
		fmt.Fprintln(c.stderr, "runner gc: refusing to run without a scope: give --keep SPEC... (keep those specs' stages) and/or --older-than AGE (e.g. 30d)")
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	if len(keep) > 0 {
		pipes, ok := c.loadSpecs(keep, &sf)
		if !ok {
			return exitUsage
		}
		entries, err := runner.Plan(pipes, runner.Options{Store: store})
		if err != nil {
			fmt.Fprintf(c.stderr, "runner gc: %v\n", err)
			return exitFailed
		}
		policy.Keep = map[artifacts.Key]bool{}
		for _, e := range entries {
			if e.Key != "" {
				policy.Keep[e.Key] = true
			}
		}
	}
	rep, err := store.GC(policy)
	if errors.Is(err, artifacts.ErrBusy) {
		fmt.Fprintln(c.stderr, "runner gc: a run is using the cache; try again when it is done")
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "runner gc: %v\n", err)
		return exitFailed
	}
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	fmt.Fprintf(c.stdout, "%s %d records and %d artifacts (%s); kept %d records and %d artifacts\n",
		verb, rep.Records, rep.Objects, bytesString(rep.Bytes), rep.KeptRecords, rep.KeptObjects)
	if n := rep.Temp + rep.Failed + rep.Quarantined + rep.Locks + rep.Junk + rep.Scratch; n > 0 {
		fmt.Fprintf(c.stdout, "%s leftovers: %d temp dirs, %d resumable states, %d failed logs, %d quarantined, %d lock files, %d other\n",
			verb, rep.Temp, rep.Scratch, rep.Failed, rep.Quarantined, rep.Locks, rep.Junk)
	}
	return exitOK
}

// parseAge reads a Go duration, or a number of days such as "30d".
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("bad age %q", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad age %q (want e.g. 36h or 30d)", s)
	}
	return d, nil
}
