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
	"sort"
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

// command is one subcommand. Each lives in a file of its own.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(c *cli, args []string) int
}

// commands lists the subcommands in the order `runner help` shows them.
// Files add themselves with register in init.
var commands []*command

func register(cmd *command) { commands = append(commands, cmd) }

func findCommand(name string) *command {
	for _, c := range commands {
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
	sort.SliceStable(commands, func(i, j int) bool { return order(commands[i].name) < order(commands[j].name) })
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
		for _, cm := range commands {
			names = append(names, cm.name)
		}
		fmt.Fprintf(stderr, "runner: unknown command %q%s; run \"runner help\"\n", name, didYouMean(name, names))
		return exitUsage
	}
	return cmd.run(c, args[1:])
}

// order fixes the help order; commands not listed come last.
func order(name string) int {
	for i, n := range []string{"run", "plan", "show", "report", "dag", "status", "gc", "verify", "kinds", "layers", "exec-stage", "slurm"} {
		if n == name {
			return i
		}
	}
	return 100
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "runner runs YAML specs of stage DAGs with a content-addressed cache.")
	fmt.Fprintln(w, "\nUsage:\n\trunner <command> [arguments]\n\nCommands:")
	for _, cmd := range commands {
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

// didYouMean formats the candidate closest to word, within two edits of
// stage.EditDistance, as a hint for an error message; "" when none is.
func didYouMean(word string, candidates []string) string {
	best, bestD := "", 3
	for _, cand := range candidates {
		if d := stage.EditDistance(word, cand); d < bestD {
			best, bestD = cand, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
