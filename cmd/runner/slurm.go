package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner/cluster"
	"github.com/hessian-spectra/runner/runner/cluster/slurm"
)

const slurmHelp = `
Slurm ls lists the jobs that runs with --executor slurm submitted from this
cache and that have not settled yet: job id, Slurm state and reason, stage,
spec, and whether a live run follows the job. A job whose run is gone (it
was killed, or detached with --slurm-detach) is an orphan: the next run
that needs its stage adopts it instead of submitting it again.

Slurm cancel cancels those jobs (scancel, one call) and removes their
records; with --orphans only the jobs no live run follows.`

func runSlurm(c *cli, args []string) int {
	cmd := findCommand("slurm")
	fs := c.newFlags(cmd, slurmHelp)
	cache := cacheFlag(fs)
	orphans := fs.Bool("orphans", false, "cancel only the jobs no live run follows")
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 || (pos[0] != "ls" && pos[0] != "cancel") {
		fs.Usage()
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	ctx, stop := signalContext()
	defer stop()
	q := slurm.New()
	if pos[0] == "cancel" {
		jobs, err := cluster.Cancel(ctx, store, q, *orphans)
		if err != nil {
			fmt.Fprintf(c.stderr, "runner slurm cancel: %v\n", err)
			return exitFailed
		}
		for _, j := range jobs {
			fmt.Fprintf(c.stdout, "cancelled job %s (%s of %s)\n", j.ID, j.Stage, j.Spec)
		}
		fmt.Fprintf(c.stdout, "%d jobs cancelled\n", len(jobs))
		return exitOK
	}
	jobs, err := cluster.List(ctx, store, q)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner slurm ls: %v\n", err)
		return exitFailed
	}
	if len(jobs) == 0 {
		fmt.Fprintln(c.stdout, "no Slurm jobs recorded in this cache")
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tSTAGE\tSPEC\tKEY\tSUBMITTED\tFOLLOWED BY")
	for _, j := range jobs {
		id, state := j.ID, "not listed"
		if id == "" {
			id = "?"
		}
		if j.Listed {
			state = j.Status.Raw
			if j.Status.Reason != "" && j.Status.Reason != "None" {
				state += " (" + j.Status.Reason + ")"
			}
		}
		if j.Cached {
			state += ", result stored"
		}
		by := fmt.Sprintf("run %s on %s (pid %d)", j.Run, j.Host, j.PID)
		if j.Orphan {
			by = "nobody (orphan)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, state, j.Stage, j.Spec, j.Key.Short(), j.Submitted.Local().Format(time.DateTime), by)
	}
	tw.Flush()
	return exitOK
}

// slurmFlags are run's flags for the Slurm executor.
type slurmFlags struct {
	partition, account, qos, time, mem string
	extra                              listFlag
	poll, latencyWait                  time.Duration
	retries, maxJobs                   int
	detach                             bool
}

func (f *slurmFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.partition, "slurm-partition", "", "Slurm partition of every job, over the spec's resources")
	fs.StringVar(&f.account, "slurm-account", "", "Slurm account of every job, over the spec's resources")
	fs.StringVar(&f.qos, "slurm-qos", "", "Slurm QOS of every job, over the spec's resources")
	fs.StringVar(&f.time, "slurm-time", "", "time limit of every job (Slurm notation: 90, 1:30:00, 2-0), over the spec's resources")
	fs.StringVar(&f.mem, "slurm-mem", "", "memory of every job (16G), over the spec's resources")
	fs.Var(&f.extra, "slurm-extra", "raw sbatch flag added to every job (--constraint=avx2); repeatable")
	fs.DurationVar(&f.poll, "slurm-poll", cluster.DefaultPoll, "longest interval between two squeue queries (they start 1 s apart and slow down while nothing changes)")
	fs.DurationVar(&f.latencyWait, "slurm-latency-wait", cluster.DefaultLatencyWait, "how long a job that left the queue without its result is looked for in the cache (shared file system latency)")
	fs.IntVar(&f.retries, "slurm-retries", 2, "resubmissions of a stage after node failures or preemption")
	fs.IntVar(&f.maxJobs, "slurm-jobs", cluster.DefaultMaxJobs, "most jobs queued or running at once")
	fs.BoolVar(&f.detach, "slurm-detach", false, "when the run stops early (Ctrl-C), leave its jobs running for the next run to adopt instead of cancelling them")
}

// set lists the --slurm-* flags given on the command line.
func (f *slurmFlags) set(fs *flag.FlagSet) []string {
	var names []string
	fs.Visit(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Name, "slurm-") {
			names = append(names, "--"+fl.Name)
		}
	})
	return names
}

// executor builds the Slurm executor of a run.
func (f *slurmFlags) executor(ctx context.Context, store *artifacts.Store, pipes []*pipelines.Pipeline, note func(string)) (*cluster.Executor, error) {
	over := pipelines.Resources{Partition: f.partition, Account: f.account, QOS: f.qos, Time: f.time, Mem: f.mem, Extra: f.extra}
	lw := f.latencyWait
	if lw == 0 {
		lw = -1 // none, not the default
	}
	return cluster.New(ctx, store, slurm.New(), pipes, cluster.Options{
		Overrides: over, MaxJobs: f.maxJobs, Poll: f.poll, LatencyWait: lw,
		Retries: f.retries, Detach: f.detach, Note: note,
	})
}
