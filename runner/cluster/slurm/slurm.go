// Package slurm is the Slurm queue of the cluster executor: it submits jobs
// with `sbatch --parsable`, asks for the state of all of a cache's jobs with
// one `squeue -h -t all --name=…` per poll, and cancels with one `scancel`.
// It never calls sacct, which needs a Slurm accounting database that many
// clusters lack, nor adds flags the spec did not ask for beyond the four the
// runner needs to find and run its jobs (--job-name, --comment, --output,
// --chdir) and --exclude for resubmissions after a node failure.
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner/cluster"
)

// Queue is a Slurm cluster's queue, reached through its command-line tools.
// It implements cluster.Queue, cluster.Checker and cluster.NodeLister.
type Queue struct {
	// Sbatch, Squeue, Scancel and Sinfo are the commands run (by default
	// the names, looked up in $PATH); tests point them at shims.
	Sbatch, Squeue, Scancel, Sinfo string
}

// New returns the queue of the cluster whose tools are in $PATH.
func New() *Queue {
	return &Queue{Sbatch: "sbatch", Squeue: "squeue", Scancel: "scancel", Sinfo: "sinfo"}
}

// Name is "slurm".
func (q *Queue) Name() string { return "slurm" }

// Submit runs sbatch with the job's script on its standard input.
func (q *Queue) Submit(ctx context.Context, j *cluster.JobSpec) (string, error) {
	args, err := SbatchArgs(j)
	if err != nil {
		return "", err
	}
	out, err := run(ctx, q.Sbatch, args, j.Script)
	if err != nil {
		return "", err
	}
	return ParseParsable(out)
}

// squeueFormat is the squeue -O format: the comment comes last, so that a
// '|' in it cannot shift the other fields. Size 0 means no truncation.
const squeueFormat = "JobID:0|,Name:0|,State:0|,Reason:0|,exit_code:0|,NodeList:0|,Comment:0"

// maxNamesArg bounds the length of one --name list; more names take more
// squeue calls.
const maxNamesArg = 64 << 10

// Query runs `squeue -h -t all --name=…` (finished jobs included, until
// Slurm's MinJobAge purges them), once per 64 KiB of names.
func (q *Queue) Query(ctx context.Context, names []string) ([]cluster.JobStatus, error) {
	var out []cluster.JobStatus
	for len(names) > 0 {
		n, size := 0, 0
		for n < len(names) && (n == 0 || size+len(names[n])+1 <= maxNamesArg) {
			size += len(names[n]) + 1
			n++
		}
		text, err := run(ctx, q.Squeue, []string{"-h", "-t", "all", "--name=" + strings.Join(names[:n], ","), "-O", squeueFormat}, "")
		if err != nil {
			return nil, err
		}
		sts, err := ParseSqueue(text)
		if err != nil {
			return nil, err
		}
		out = append(out, sts...)
		names = names[n:]
	}
	return out, nil
}

// Cancel runs one scancel for all ids. Jobs that already ended are not an
// error.
func (q *Queue) Cancel(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := run(ctx, q.Scancel, ids, "")
	if err != nil && strings.Contains(err.Error(), "already completing or completed") {
		return nil
	}
	return err
}

// Nodes lists the cluster's nodes (sinfo -N).
func (q *Queue) Nodes(ctx context.Context) ([]string, error) {
	out, err := run(ctx, q.Sinfo, []string{"-h", "-N", "-o", "%N"}, "")
	if err != nil {
		return nil, err
	}
	return uniqueLines(out), nil
}

// partitions lists the cluster's partitions (sinfo).
func (q *Queue) partitions(ctx context.Context) ([]string, error) {
	out, err := run(ctx, q.Sinfo, []string{"-h", "-o", "%R"}, "")
	if err != nil {
		return nil, err
	}
	return uniqueLines(out), nil
}

func uniqueLines(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// Check rejects extra flags the runner sets itself and partitions the
// cluster does not have (when sinfo answers), so that such a mistake fails
// the run at once, in one line.
func (q *Queue) Check(ctx context.Context, rules []pipelines.ResourceRule, overrides pipelines.Resources) error {
	for _, r := range rules {
		for i, f := range r.Resources.Extra {
			if why := Reserved(f); why != "" {
				pos := r.Pos
				if i < len(r.ExtraPos) {
					pos = r.ExtraPos[i]
				}
				return fmt.Errorf("%s: resources %s: extra %s: %s", pos, r.Selector, f, why)
			}
		}
	}
	for _, f := range overrides.Extra {
		if why := Reserved(f); why != "" {
			return fmt.Errorf("--slurm-extra %s: %s", f, why)
		}
	}
	want := map[string]string{} // partition → where it is asked for
	for _, r := range rules {
		if p := r.Resources.Partition; p != "" && overrides.Partition == "" {
			want[p] = fmt.Sprintf("%s: resources %s", r.Pos, r.Selector)
		}
	}
	if overrides.Partition != "" {
		want[overrides.Partition] = "--slurm-partition"
	}
	if len(want) == 0 {
		return nil
	}
	have, err := q.partitions(ctx)
	if err != nil || len(have) == 0 {
		return nil // sbatch will say
	}
	for p, where := range want {
		if !slices.Contains(have, p) {
			return fmt.Errorf("%s: slurm has no partition %q (it has %s)", where, p, strings.Join(have, ", "))
		}
	}
	return nil
}

// run runs a Slurm command and returns its standard output. A failure is
// an error carrying the command's own message; one that may pass if tried
// again is a *cluster.TransientError.
func run(ctx context.Context, name string, args []string, stdin string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	msg := commandMessage(stderr.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", fmt.Errorf("%s: %w", name, err) // not found, or killed by ctx
	}
	if msg == "" {
		msg = ee.Error()
	}
	err = fmt.Errorf("%s: %s", name, msg)
	if transient(msg) {
		return "", &cluster.TransientError{Err: err}
	}
	return "", err
}

// commandMessage turns a Slurm tool's stderr into one line: its error lines
// without the tool's "sbatch: error: " prefixes.
func commandMessage(stderr string) string {
	var parts []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if i := strings.Index(l, "error: "); i >= 0 {
			l = l[i+len("error: "):]
		}
		parts = append(parts, l)
	}
	if len(parts) > 3 {
		parts = parts[len(parts)-3:]
	}
	return strings.Join(parts, "; ")
}

// transientMarks are pieces of Slurm messages about a controller that is
// busy, restarting or unreachable for a moment.
var transientMarks = []string{
	"socket timed out", "unable to contact slurm controller", "temporarily unavailable",
	"temporarily unable", "connection refused", "zero bytes were transmitted", "communication connection failure",
	"transport endpoint", "try again", "slurm_persist_conn", "connection reset",
}

func transient(msg string) bool {
	m := strings.ToLower(msg)
	for _, t := range transientMarks {
		if strings.Contains(m, t) {
			return true
		}
	}
	return false
}

// ParseParsable reads the output of `sbatch --parsable`: "ID" or
// "ID;cluster".
func ParseParsable(out string) (string, error) {
	s := strings.TrimSpace(out)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:]) // warnings may come first
	}
	id, _, _ := strings.Cut(s, ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("sbatch --parsable printed %q, not a job id", strings.TrimSpace(out))
	}
	return id, nil
}

// ParseSqueue reads squeue rows in squeueFormat.
func ParseSqueue(out string) ([]cluster.JobStatus, error) {
	var sts []cluster.JobStatus
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, "|", 7)
		if len(f) != 7 {
			return nil, fmt.Errorf("squeue: unexpected row %q", line)
		}
		for i := 0; i < 6; i++ {
			f[i] = strings.TrimSpace(f[i])
		}
		raw, _, _ := strings.Cut(f[2], " ")
		st := cluster.JobStatus{
			ID: f[0], Name: f[1], Raw: raw, State: State(raw), Reason: f[3],
			ExitCode: ExitCode(f[4]), Node: f[5], Comment: strings.TrimSpace(f[6]),
		}
		if st.Node == "(null)" {
			st.Node = ""
		}
		if st.Comment == "(null)" {
			st.Comment = ""
		}
		sts = append(sts, st)
	}
	return sts, nil
}

// ExitCode formats squeue's exit_code field, a wait(2) status, as Slurm's
// "exit:signal"; "" when there is none.
func ExitCode(field string) string {
	v, err := strconv.Atoi(strings.TrimSpace(field))
	if err != nil || v < 0 {
		return ""
	}
	return fmt.Sprintf("%d:%d", (v>>8)&0xff, v&0x7f)
}

// states maps Slurm job states to the cluster's.
var states = map[string]cluster.State{
	"PENDING": cluster.Queued, "REQUEUED": cluster.Queued, "REQUEUE_HOLD": cluster.Queued, "REQUEUE_FED": cluster.Queued,
	"RESV_DEL_HOLD": cluster.Queued, "CONFIGURING": cluster.Queued,
	"RUNNING": cluster.Running, "COMPLETING": cluster.Running, "SUSPENDED": cluster.Running, "STOPPED": cluster.Running,
	"SIGNALING": cluster.Running, "STAGE_OUT": cluster.Running, "RESIZING": cluster.Running,
	"COMPLETED": cluster.Succeeded,
	"FAILED":    cluster.Failed, "SPECIAL_EXIT": cluster.Failed, "DEADLINE": cluster.Failed,
	"TIMEOUT":       cluster.TimedOut,
	"OUT_OF_MEMORY": cluster.OutOfMemory,
	"CANCELLED":     cluster.Cancelled,
	"NODE_FAIL":     cluster.NodeFailed, "BOOT_FAIL": cluster.NodeFailed,
	"PREEMPTED": cluster.Preempted,
}

// State maps a Slurm job state name to the cluster's; REVOKED (a federated
// job running elsewhere) and names not known here are cluster.Unknown.
func State(raw string) cluster.State { return states[strings.ToUpper(raw)] }
