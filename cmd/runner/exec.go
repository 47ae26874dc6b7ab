package main

import (
	"fmt"
	"os"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/runner"
)

const execHelp = `
Exec-stage runs the stage whose key is KEY in this process, reading
everything it needs from the cache: the job description a run or plan stored
under the key, and the input artifacts. It is the unit of work of a cluster
executor (one job per stage, the cache on a shared file system). A key that
is already cached is not rerun unless --force is given. It prints the
artifact digest. Run inside a Slurm job (SLURM_JOB_ID set), it names the job
in the artifact's run/run.json.`

func runExec(c *cli, args []string) int {
	cmd := findCommand("exec-stage")
	fs := c.newFlags(cmd, execHelp)
	cache := cacheFlag(fs)
	backend := backendFlag(fs)
	force := fs.Bool("force", false, "run even if the key is cached")
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	key, err := artifacts.ParseKey(pos[0])
	if err != nil {
		fmt.Fprintf(c.stderr, "runner exec-stage: %v\n", err)
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	ctx, stop := signalContext()
	defer stop()
	opts := runner.ExecOptions{Backend: *backend, Force: *force}
	if id := os.Getenv("SLURM_JOB_ID"); id != "" {
		opts.Executor = "slurm job " + id // for the artifact's run/run.json
	}
	rec, ran, err := runner.Exec(ctx, store, c.reg, key, opts)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner exec-stage: %v\n", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitFailed
	}
	what := "cached"
	if ran {
		what = "ran"
	}
	fmt.Fprintf(c.stdout, "%s %s %s\n", what, key, rec.Digest)
	return exitOK
}
