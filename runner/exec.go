package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/stage"
)

// logTailLines is how many lines of a failed stage's log are shown.
const logTailLines = 20

// task is one execution of a stage: what runJob needs besides the store.
type task struct {
	kind    *stage.Kind
	job     *Job
	params  stage.Params
	backend string
	prog    stage.Progress
	// recheck, when set, is the cached digest to compare with; the
	// artifact is then not stored.
	recheck artifacts.Digest
	// executor names what runs the stage, for run.json ("local" when empty).
	executor string
	// prior is the cached artifact the stage may start from (stage.Reuse).
	prior *stage.Prior
}

// execResult is what runJob reports.
type execResult struct {
	digest   artifacts.Digest
	duration time.Duration
	logTail  []string
	logFile  string
}

// runJob runs one stage in a fresh temp dir of the store and stores its
// artifact. The caller holds the key's lock. On failure the stage's log is
// kept as the store's FailedLog; on cancellation nothing is kept.
func runJob(ctx context.Context, s *artifacts.Store, t task) (execResult, error) {
	var res execResult
	key := t.job.Key
	if err := s.CleanTemp(key, ""); err != nil {
		return res, err
	}
	tmp, err := s.TempDir(key)
	if err != nil {
		return res, err
	}
	defer artifacts.RemoveTree(tmp)
	out := filepath.Join(tmp, "out")
	runDir := filepath.Join(out, artifacts.RunDirName)
	if err := os.MkdirAll(runDir, 0o777); err != nil {
		return res, err
	}
	logPath := filepath.Join(tmp, artifacts.LogName)
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	env := &stage.Env{
		ID:        t.job.ID,
		Params:    t.params,
		Inputs:    map[string][]stage.Artifact{},
		OutDir:    out,
		RunDir:    runDir,
		Log:       logf,
		Progress:  t.prog,
		Backend:   t.backend,
		Downloads: s.Downloads(),
	}
	if t.recheck == "" {
		if env.Scratch, err = s.Scratch(key); err != nil {
			return res, err
		}
	}
	for name, ins := range t.job.Inputs {
		for _, in := range ins {
			env.Inputs[name] = append(env.Inputs[name], stage.Artifact{
				Dir: s.ObjectDir(in.Digest), Stage: in.Stage, Matrix: copyMap(in.Matrix), Digest: string(in.Digest),
			})
		}
	}
	start := time.Now()
	fmt.Fprintf(logf, "# %s (%s v%d, key %s) started %s\n", t.job.ID, t.kind.Name, t.kind.Version, key.Short(), start.Format(time.RFC3339))
	if t.prior != nil && t.recheck == "" {
		env.Prior = t.prior
		env.SetRunInfo("prior", priorInfo(t.prior))
		io.WriteString(logf, priorLog(t.prior))
	}
	err = t.kind.Call(ctx, env)
	res.duration = time.Since(start)
	if err == nil {
		if _, serr := os.Lstat(filepath.Join(out, artifacts.LogName)); serr == nil {
			err = fmt.Errorf("the stage wrote %s into its output directory; that name is reserved for the runner's log", artifacts.LogName)
		}
	}
	if err == nil {
		err = pathsUnchanged(t)
	}
	if err == nil {
		err = writeRunInfo(runDir, t, env.RunInfo, start, res.duration)
	}
	if err != nil {
		fmt.Fprintf(logf, "# failed after %.1f s: %v\n", res.duration.Seconds(), err)
		logf.Close()
		if ctx.Err() != nil {
			return res, err // cancelled: keep nothing
		}
		keepLog(s, key, logPath, &res)
		return res, err
	}
	fmt.Fprintf(logf, "# finished in %.1f s\n", res.duration.Seconds())
	if err := logf.Close(); err != nil {
		return res, err
	}
	if err := os.Rename(logPath, filepath.Join(out, artifacts.LogName)); err != nil {
		return res, err
	}
	if t.recheck != "" {
		m, err := artifacts.HashDir(out)
		if err != nil {
			return res, err
		}
		res.digest = m.Digest()
		if res.digest != t.recheck {
			var diff []string
			if want, err := s.Manifest(t.recheck); err == nil {
				diff = want.Diff(m)
			}
			return res, fmt.Errorf("not deterministic: recomputed digest %s, cached %s%s",
				res.digest.Short(), t.recheck.Short(), formatDiff(diff))
		}
		return res, nil
	}
	rec, err := s.Put(key, out, artifacts.PutInfo{Stage: t.job.ID, Kind: t.kind.Name, Seconds: res.duration.Seconds()})
	if err != nil {
		keepLog(s, key, filepath.Join(out, artifacts.LogName), &res)
		return res, err
	}
	os.Remove(s.FailedLog(key))
	_ = s.RemoveScratch(key) // what is left of it, gc removes (its key is stored)
	// The reuse index only saves later work: failing to update it harms nothing.
	_ = recordReuse(ctx, s, t.kind, t.job)
	res.digest = rec.Digest
	return res, nil
}

// RunInfoFile is the file in an artifact's run/ directory where the runner
// records how the artifact was computed: stage, key, host, executor, start
// and wall time, and what the stage added to stage.Env.RunInfo (its
// backend, say). Not digested.
const RunInfoFile = "run.json"

// writeRunInfo writes run/run.json for a finished stage.
func writeRunInfo(runDir string, t task, stageInfo map[string]any, start time.Time, d time.Duration) error {
	info := map[string]any{}
	for k, v := range stageInfo {
		info[k] = v
	}
	host, _ := os.Hostname()
	executor := t.executor
	if executor == "" {
		executor = "local"
	}
	for k, v := range map[string]any{
		"stage": t.job.ID, "spec": t.job.Spec, "kind": t.kind.Name, "version": t.kind.Version,
		"key": string(t.job.Key), "host": host, "pid": os.Getpid(), "executor": executor,
		"started": start.UTC().Format(time.RFC3339Nano), "seconds": math.Round(d.Seconds()*1000) / 1000,
		"go": runtime.Version(),
	} {
		info[k] = v
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("run info: %w", err)
	}
	return os.WriteFile(filepath.Join(runDir, RunInfoFile), append(data, '\n'), 0o666)
}

// pathsUnchanged re-hashes the Path params of t after its stage ran and
// fails when one changed meanwhile: the artifact would not be the result of
// the computation its key describes, so it must not be stored.
func pathsUnchanged(t task) error {
	if !hasPathParam(t.kind.Params) {
		return nil
	}
	kp, err := keyParams(t.kind.Params, t.params, &artifacts.PathHasher{})
	if err != nil {
		return fmt.Errorf("re-hashing path params after the run: %w", err)
	}
	a, err1 := canonicalJSON(kp)
	b, err2 := canonicalJSON(t.job.Description.Params)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return fmt.Errorf("%s while the stage ran; its result is not stored (run again)",
			strings.Join(paramChanges(t.job.Description.Params, kp), ", "))
	}
	return nil
}

// hasPathParam reports whether a schema has a Path param, nested ones
// included.
func hasPathParam(schema []stage.Param) bool {
	for _, p := range schema {
		if p.Type == stage.Path || p.Type == stage.Object && hasPathParam(p.Fields) {
			return true
		}
	}
	return false
}

// keepLog keeps a failed stage's log as the store's FailedLog of key and
// records its tail in res.
func keepLog(s *artifacts.Store, key artifacts.Key, logPath string, res *execResult) {
	res.logTail = tailLines(logPath, logTailLines)
	if os.Rename(logPath, s.FailedLog(key)) == nil {
		res.logFile = s.FailedLog(key)
	}
}

func formatDiff(diff []string) string {
	if len(diff) == 0 {
		return ""
	}
	if len(diff) > 10 {
		diff = append(diff[:10:10], fmt.Sprintf("and %d more", len(diff)-10))
	}
	return "; " + strings.Join(diff, "; ")
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// tailLines returns the last n lines of a file.
func tailLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	// Read at most the last 64 KiB: enough for n lines of any sane log.
	if info, err := f.Stat(); err == nil && info.Size() > 64<<10 {
		f.Seek(info.Size()-64<<10, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// ExecOptions configure Exec.
type ExecOptions struct {
	// Backend is passed to the stage as stage.Env.Backend.
	Backend string
	// Force runs the stage even when its key is cached.
	Force bool
	// Progress receives the stage's progress; nil discards it.
	Progress stage.Progress
	// Executor names what runs the stage, for the artifact's run/run.json
	// ("exec-stage" when empty).
	Executor string
}

// Exec runs the stage with key k from the cache alone, as `runner exec-stage`
// does in a process of its own (the future Slurm executor's unit of work):
// it reads the job description that Run or Plan stored under k, checks that
// it hashes to k, that this binary's kind has the same version and that the
// input artifacts are present, then locks, runs and stores the stage. A key
// already cached is not rerun unless opts.Force is set. It returns the
// record and whether the stage ran.
func Exec(ctx context.Context, s *artifacts.Store, reg stage.Registry, k artifacts.Key, opts ExecOptions) (artifacts.Record, bool, error) {
	data, err := s.ReadDesc(k)
	if err != nil {
		return artifacts.Record{}, false, err
	}
	job, err := decodeJob(data)
	if err != nil {
		return artifacts.Record{}, false, fmt.Errorf("key %s: %w", k.Short(), err)
	}
	if job.Key != k {
		return artifacts.Record{}, false, fmt.Errorf("key %s: the stored description is for key %s", k.Short(), job.Key.Short())
	}
	kind := reg[job.Description.Kind]
	if kind == nil {
		return artifacts.Record{}, false, fmt.Errorf("key %s: stage kind %q is not built into this runner", k.Short(), job.Description.Kind)
	}
	if kind.Version != job.Description.Version {
		return artifacts.Record{}, false, fmt.Errorf("key %s: wants %s v%d, this runner has v%d", k.Short(), kind.Name, job.Description.Version, kind.Version)
	}
	params, err := convertParams(kind, job.Params)
	if err != nil {
		return artifacts.Record{}, false, fmt.Errorf("key %s: %w", k.Short(), err)
	}
	if err := checkInputs(s, job); err != nil {
		return artifacts.Record{}, false, fmt.Errorf("key %s: %w", k.Short(), err)
	}
	share, err := s.Share(ctx, nil)
	if err != nil {
		return artifacts.Record{}, false, err
	}
	defer share.Unlock()
	lock, err := s.LockKey(ctx, k, nil)
	if err != nil {
		return artifacts.Record{}, false, err
	}
	defer lock.Unlock()
	if !opts.Force {
		rec, ok, err := s.Get(k)
		if dmg := (*artifacts.DamagedError)(nil); errors.As(err, &dmg) {
			err = nil // recompute: Put replaces the damaged object
		}
		if err != nil || ok {
			return rec, false, err
		}
	}
	executor := opts.Executor
	if executor == "" {
		executor = "exec-stage"
	}
	var prior *stage.Prior
	if !opts.Force {
		prior = findPrior(s, kind, job, params)
	}
	res, err := runJob(ctx, s, task{kind: kind, job: job, params: params, backend: opts.Backend, prog: opts.Progress, executor: executor, prior: prior})
	if err != nil {
		msg := fmt.Sprintf("%s: %v", job.ID, err)
		if len(res.logTail) > 0 {
			msg += "\n\t" + strings.Join(res.logTail, "\n\t")
		}
		return artifacts.Record{}, true, errors.New(msg)
	}
	rec, _, err := s.Get(k)
	return rec, true, err
}

// checkInputs checks that the input artifacts a job reads are exactly those
// its key covers (the description hashed into the key lists them; the job's
// own list is what the stage is given), and that each is stored and whole.
func checkInputs(s *artifacts.Store, job *Job) error {
	for name := range job.Description.Inputs {
		if _, ok := job.Inputs[name]; !ok {
			return fmt.Errorf("input %s is covered by the key but not given to the stage: the job description was altered", name)
		}
	}
	for name, ins := range job.Inputs {
		want := job.Description.Inputs[name]
		if len(ins) != len(want) {
			return fmt.Errorf("input %s: the stage would read %d artifacts, its key covers %d: the job description was altered", name, len(ins), len(want))
		}
		for i, in := range ins {
			if in.Digest != want[i] {
				return fmt.Errorf("input %s: the stage would read artifact %s, its key covers %s: the job description was altered", name, in.Digest.Short(), want[i].Short())
			}
			if !s.HasObject(in.Digest) {
				return fmt.Errorf("input %s (from %s, artifact %s) is not in the cache", name, in.Stage, in.Digest.Short())
			}
			if err := s.CheckObject(in.Digest); err != nil {
				return fmt.Errorf("input %s (from %s): %w; rerun its stage", name, in.Stage, err)
			}
		}
	}
	return nil
}
