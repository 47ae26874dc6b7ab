package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
)

const verifyHelp = `
Verify re-hashes every artifact in the cache and compares it with its
digest, and checks that every record points to an artifact. It prints each
problem, then moves corrupt artifacts to quarantine/ and removes the records
that point to them, so the next run recomputes those stages. The exit status
is 1 when it found a problem. The runner's log.txt is not covered by digests.`

func runVerify(c *cli, args []string) int {
	cmd := findCommand("verify")
	fs := c.newFlags(cmd, verifyHelp)
	dry := fs.Bool("dry-run", false, "report problems, quarantine nothing")
	cache := cacheFlag(fs)
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	start := time.Now()
	rep, err := store.Verify(nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner verify: %v\n", err)
		return exitFailed
	}
	for _, p := range rep.Problems {
		what := "artifact " + string(p.Digest)
		if p.Digest == "" {
			what = "record " + p.Record
		}
		fmt.Fprintf(c.stdout, "corrupt %s:\n  %s\n", what, strings.Join(p.Details, "\n  "))
	}
	fmt.Fprintf(c.stdout, "verified %d artifacts (%s) in %.1f s: %d problems\n",
		rep.Objects, bytesString(rep.Bytes), time.Since(start).Seconds(), len(rep.Problems))
	if len(rep.Problems) == 0 {
		return exitOK
	}
	if *dry {
		return exitFailed
	}
	if err := store.Quarantine(rep); err != nil {
		if errors.Is(err, artifacts.ErrBusy) {
			fmt.Fprintln(c.stderr, "runner verify: a run is using the cache; run verify again when it is done to quarantine")
		} else {
			fmt.Fprintf(c.stderr, "runner verify: %v\n", err)
		}
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "quarantined: the next run recomputes the affected stages\n")
	return exitFailed
}
