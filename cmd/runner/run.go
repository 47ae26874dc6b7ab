package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/term"

	"github.com/hessian-spectra/runner/runner"
)

const runHelp = `
Run computes every stage instance of the specs whose key is not cached, in
parallel as the DAG allows, and serves the rest from the cache. Afterwards
results/<spec name>/<stage id> links each stage to its artifact.

The last line printed is "N stages: X ran, Y cached, Z failed (S s)". A stage
that could not start because an input failed, or because the run was
cancelled, counts as failed. Without --keep-going the first failure cancels
the running stages and starts no more; with it, every stage that does not
depend on a failure still runs. The exit status is 1 when any stage failed,
130 after Ctrl-C (the next run picks up where this one stopped).

ID arguments of --force and --recheck are stage instance ids
("spectrum[epoch=3,layer=full]"), stage names (all their instances) or
wildcard refs ("spectrum[layer=full,*]").

With --executor slurm this process stays the scheduler and runs each heavy
stage as one Slurm job (sbatch) that runs "runner exec-stage" of this binary,
copied into the cache; light stages (plots, tables, snapshots), fetch, and
stages whose resources say local: true run here, as do forced and
re-checked ones. The cache must be on a file system the compute nodes see.
-j then bounds the stages run here and --slurm-jobs the jobs. The spec's
resources: block and the --slurm-* flags say what each job asks for; none
of them changes a key. README.md ("Running on a Slurm cluster") says more.`

func runRun(c *cli, args []string) int {
	cmd := findCommand("run")
	fs := c.newFlags(cmd, runHelp)
	jobs := fs.Int("j", runtime.NumCPU(), "how many stages may run at once")
	keepGoing := fs.Bool("keep-going", false, "after a failure, keep running the stages that do not depend on it")
	var force, recheck listFlag
	fs.Var(&force, "force", "run this stage even if cached; repeatable")
	fs.Var(&recheck, "recheck", "recompute this cached stage in a temp dir and compare digests (a determinism test); repeatable")
	cache := cacheFlag(fs)
	backend := backendFlag(fs)
	verbose := fs.Bool("v", false, "also list cached stages")
	executor := fs.String("executor", "local", "where stages run: local (in this process) or slurm (one Slurm job per heavy stage)")
	var slf slurmFlags
	slf.add(fs)
	var sf specFlags
	sf.add(fs)
	files, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	switch *executor {
	case "local":
		if set := slf.set(fs); len(set) > 0 {
			fmt.Fprintf(c.stderr, "runner: %s needs --executor slurm\n", strings.Join(set, ", "))
			return exitUsage
		}
	case "slurm":
	default:
		fmt.Fprintf(c.stderr, "runner: --executor %q: want local or slurm\n", *executor)
		return exitUsage
	}
	pipes, ok := c.loadSpecs(files, &sf)
	if !ok {
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(c.stderr, "runner: %v\n", err)
		return exitFailed
	}
	rep := c.reporter(*verbose)
	ctx, stop := signalContext()
	defer stop()
	opts := runner.Options{
		Store: store, Jobs: *jobs, KeepGoing: *keepGoing, Force: force, Recheck: recheck,
		Backend: *backend, WorkDir: wd, Reporter: rep,
	}
	if *executor == "slurm" {
		x, err := slf.executor(ctx, store, pipes, rep.Note)
		if err != nil {
			rep.Close()
			fmt.Fprintf(c.stderr, "runner: %v\n", err)
			return exitFailed
		}
		opts.Executor = x
	}
	sum, err := runner.Run(ctx, pipes, opts)
	rep.Close()
	return c.finishRun(sum, err)
}

// reporter shows the run live on a terminal, as plain lines otherwise.
func (c *cli) reporter(verbose bool) runner.Reporter {
	if f, isFile := c.stdout.(*os.File); isFile && term.IsTerminal(int(f.Fd())) {
		return runner.NewTerminalReporter(f, func() int {
			w, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 80
			}
			return w
		}, verbose)
	}
	return runner.NewPlainReporter(c.stdout, verbose)
}

// finishRun prints the run's last line and returns its exit status.
func (c *cli) finishRun(sum runner.Summary, err error) int {
	if err != nil {
		fmt.Fprintf(c.stderr, "runner: %v\n", err)
		if len(sum.Results) == 0 {
			return exitFailed
		}
	}
	if sum.Interrupted {
		fmt.Fprintln(c.stdout, "interrupted: finished stages are cached; run again to continue")
	}
	fmt.Fprintln(c.stdout, sum.String())
	switch {
	case sum.Interrupted:
		return exitInterrupted
	case !sum.OK() || err != nil:
		return exitFailed
	}
	return exitOK
}
