// Command runner runs YAML specs of stage DAGs with a content-addressed
// cache: `runner run specs/x.yaml` computes what changed and serves the rest
// from the cache. `runner help` lists the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages"
)

func main() {
	os.Exit(Main(os.Args[1:], stages.Registry(), os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1   // a stage failed, or verify found corruption
	exitUsage       = 2   // bad command line or spec
	exitInterrupted = 130 // Ctrl-C
)

// cli is what every subcommand gets.
type cli struct {
	reg    stage.Registry
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand, an entry of the command table (commands).
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(c *cli, args []string) int
}

// commands is the command table: every subcommand, in the order `runner
// help` lists them. Each command's flags, help text and run function live
// in a file of its own.
func commands() []*command {
	return []*command{
		{
			name:    "run",
			args:    "SPEC... [-j N] [--keep-going] [--force ID]... [--recheck ID]... [--cache DIR] [--set name=value]... [--backend B] [-v] [--executor local|slurm] [--slurm-*]",
			summary: "run specs, serving unchanged stages from the cache",
			run:     runRun,
		},
		{
			name:    "plan",
			args:    "SPEC... [--json] [--explain ID] [--force ID]... [--cache DIR] [--set name=value]...",
			summary: "say which stages run would compute, and why",
			run:     runPlan,
		},
		{
			name:    "show",
			args:    "SPEC [ID] [--json] [--cache DIR] [--set name=value]...",
			summary: "print each stage's artifact directory",
			run:     runShow,
		},
		{
			name:    "report",
			args:    "SPEC... --template FILE --out FILE [--assets DIR] [--cache DIR] [--set name=value]...",
			summary: "render a Markdown page from cached results (e.g. RESULTS.md)",
			run:     runReport,
		},
		{
			name:    "dag",
			args:    "SPEC [--format mermaid|dot] [--stages] [--set name=value]...",
			summary: "print the stage graph as Mermaid or Graphviz dot",
			run:     runDag,
		},
		{
			name:    "status",
			args:    "[--cache DIR]",
			summary: "print the cache's size, entries and held locks",
			run:     runStatus,
		},
		{
			name:    "gc",
			args:    "(--keep SPEC... | --older-than AGE) [--dry-run] [--cache DIR] [--set name=value]...",
			summary: "remove cache entries outside a scope",
			run:     runGC,
		},
		{
			name:    "verify",
			args:    "[--dry-run] [--cache DIR]",
			summary: "re-hash every artifact; quarantine corrupt ones",
			run:     runVerify,
		},
		{
			name:    "kinds",
			args:    "[KIND...]",
			summary: "list the stage kinds with their params and inputs",
			run:     runKinds,
		},
		{
			name:    "layers",
			args:    "MODEL.onnx",
			summary: "list an ONNX model's parameters: what a lanczos stage's layer: can name",
			run:     runLayers,
		},
		{
			name:    "exec-stage",
			args:    "--cache DIR [--backend B] [--force] KEY",
			summary: "run one stage from the cache alone (for cluster executors)",
			run:     runExec,
		},
		{
			name:    "slurm",
			args:    "ls|cancel [--orphans] [--cache DIR]",
			summary: "list or cancel the Slurm jobs submitted from this cache",
			run:     runSlurm,
		},
		{
			name:    "bench",
			args:    "[--backend NAME] [--models LIST] [--batch N] [--small-batch N] [--repeats N] [--dtype float32|float64] | --train [--model M] [--batch N] [--steps N] [--htr-probes K] [--epoch [--data DIR]]",
			summary: "time the models' training steps and Hessian-vector products; print JSON",
			run:     runBench,
		},
	}
}

// findCommand returns the command of the table named name, or nil.
func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Main runs the runner command line with the given stage kinds and returns
// the exit status. Tests call it with fake kinds.
func Main(args []string, reg stage.Registry, stdout, stderr io.Writer) int {
	c := &cli{reg: reg, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if cmd := findCommand(args[1]); cmd != nil {
				return cmd.run(c, []string{"-h"})
			}
			fmt.Fprintf(stderr, "runner help: unknown command %q\n", args[1])
			return exitUsage
		}
		c.usage(stdout)
		return exitOK
	}
	cmd := findCommand(name)
	if cmd == nil {
		var names []string
		for _, cm := range commands() {
			names = append(names, cm.name)
		}
		fmt.Fprintf(stderr, "runner: unknown command %q%s; run \"runner help\"\n", name, stage.DidYouMean(name, names))
		return exitUsage
	}
	return cmd.run(c, args[1:])
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "runner runs YAML specs of stage DAGs with a content-addressed cache.")
	fmt.Fprintln(w, "\nUsage:\n\trunner <command> [arguments]\n\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "\t%-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w, `
Run "runner help <command>" or "runner <command> -h" for a command's flags.

The cache is --cache DIR, else $RUNNER_CACHE, else .runner in the working
directory. Relative paths in specs resolve against the working directory,
so run runner from the repository root.`)
}

// newFlags returns a flag set whose -h prints the command's synopsis.
func (c *cli) newFlags(cmd *command, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: runner %s %s\n\n%s\n", cmd.name, cmd.args, strings.TrimSpace(help))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags and positional arguments in any order. It returns the
// positional arguments, or an exit status when parsing ends the command.
func (c *cli) parse(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	usage := fs.Usage
	fs.Usage = func() {} // print usage once, below, on the right stream
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(c.stdout)
				usage()
				return nil, exitOK, false
			}
			// flag has printed the error; point at the help.
			fmt.Fprintf(c.stderr, "run \"runner %s -h\" for usage\n", fs.Name())
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// cacheFlag adds --cache.
func cacheFlag(fs *flag.FlagSet) *string {
	return fs.String("cache", "", "cache directory (default $RUNNER_CACHE, else "+artifacts.DefaultDir+")")
}

// openStore opens the cache named by --cache, $RUNNER_CACHE or the default.
func (c *cli) openStore(flagValue string) (*artifacts.Store, bool) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv("RUNNER_CACHE")
	}
	if dir == "" {
		dir = artifacts.DefaultDir
	}
	s, err := artifacts.Open(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner: %v\n", err)
		return nil, false
	}
	return s, true
}

// specFlags are the flags of commands that read specs.
type specFlags struct {
	sets listFlag
}

func (f *specFlags) add(fs *flag.FlagSet) {
	fs.Var(&f.sets, "set", "override a spec var: name=value (value read as YAML); repeatable")
}

// planSpecs loads the spec files, opens the cache and plans every stage
// instance against it, for the commands that read what a spec has computed
// (show, report). On failure it has printed why; code is the exit status.
func (c *cli) planSpecs(cmd string, files []string, sf *specFlags, cacheDir string) (pipes []*pipelines.Pipeline, store *artifacts.Store, entries []runner.PlanEntry, code int, ok bool) {
	if pipes, ok = c.loadSpecs(files, sf); !ok {
		return nil, nil, nil, exitUsage, false
	}
	if store, ok = c.openStore(cacheDir); !ok {
		return nil, nil, nil, exitFailed, false
	}
	entries, err := runner.Plan(pipes, runner.Options{Store: store})
	if err != nil {
		fmt.Fprintf(c.stderr, "runner %s: %v\n", cmd, err)
		return nil, nil, nil, exitFailed, false
	}
	return pipes, store, entries, 0, true
}

// loadSpecs parses the spec files, printing every problem.
func (c *cli) loadSpecs(files []string, f *specFlags) ([]*pipelines.Pipeline, bool) {
	if len(files) == 0 {
		fmt.Fprintln(c.stderr, "runner: no spec given")
		return nil, false
	}
	var sets []pipelines.Set
	for _, s := range f.sets {
		set, err := pipelines.ParseSet(s)
		if err != nil {
			fmt.Fprintf(c.stderr, "runner: %v\n", err)
			return nil, false
		}
		sets = append(sets, set)
	}
	opts := pipelines.Options{Registry: c.reg, Sets: sets, IgnoreUnknownSets: len(files) > 1}
	var out []*pipelines.Pipeline
	ok := true
	used := map[string]bool{}
	for _, file := range files {
		p, err := pipelines.Load(file, opts)
		if err != nil {
			for _, e := range pipelines.Errors(err) {
				fmt.Fprintln(c.stderr, e)
			}
			ok = false
			continue
		}
		for name := range p.Vars {
			used[name] = true
		}
		out = append(out, p)
	}
	if ok && len(files) > 1 {
		for _, s := range sets {
			if !used[s.Name] {
				fmt.Fprintf(c.stderr, "--set %s=%s: no spec has a var %q\n", s.Name, s.Value, s.Name)
				ok = false
			}
		}
	}
	return out, ok
}

// signalContext returns a context cancelled by the first SIGINT or SIGTERM;
// a second signal kills the process the default way.
func signalContext() (context.Context, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// backendFlag adds --backend, defaulting to $GOMLX_BACKEND.
func backendFlag(fs *flag.FlagSet) *string {
	return fs.String("backend", os.Getenv("GOMLX_BACKEND"), "compute backend passed to stages: cpu, go, xla:cpu, xla:cuda (default $GOMLX_BACKEND, else xla:cuda with a GPU, else cpu); not part of any key")
}
