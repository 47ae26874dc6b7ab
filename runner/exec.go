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

// runJob runs the stage of t in a fresh temp dir of the store, its progress
// going to prog, and stores its artifact; executor names what runs it, for
// run/run.json. With recheck set (the cached digest) it recomputes and
// compares instead, storing nothing. The caller holds the key's lock. On
// failure the stage's log is kept as the store's FailedLog; on cancellation
// nothing is kept.
func runJob(ctx context.Context, s *artifacts.Store, t *Task, recheck artifacts.Digest, prog stage.Progress, executor string) TaskResult {
	tmp, env, logf, err := prepareRun(s, t, recheck, prog)
	if err != nil {
		return TaskResult{Err: err}
	}
	defer artifacts.RemoveTree(tmp)
	logPath := logf.Name()

	start := time.Now()
	err = callStage(ctx, t, env, recheck)
	res := TaskResult{Duration: time.Since(start)}
	if err == nil {
		err = writeRunInfo(env.RunDir, t, executor, env.RunInfo, start, res.Duration)
	}
	if err != nil {
		fmt.Fprintf(logf, "# failed after %.1f s: %v\n", res.Duration.Seconds(), err)
		logf.Close()
		if ctx.Err() == nil { // cancelled: keep nothing
			keepLog(s, t.Key, logPath, &res)
		}
		res.Err = err
		return res
	}
	fmt.Fprintf(logf, "# finished in %.1f s\n", res.Duration.Seconds())
	if err := logf.Close(); err != nil {
		res.Err = err
		return res
	}
	if res.Err = os.Rename(logPath, filepath.Join(env.OutDir, artifacts.LogName)); res.Err != nil {
		return res
	}
	if recheck != "" {
		res.Digest, res.Err = compareDigest(s, env.OutDir, recheck)
		return res
	}
	storeResult(ctx, s, t, env.OutDir, &res)
	return res
}

// prepareRun makes the stage's temp dir under the store, with its output
// and run/ directories and its log file, and the Env the stage runs with;
// it returns the temp dir, which the caller removes, and the open log.
func prepareRun(s *artifacts.Store, t *Task, recheck artifacts.Digest, prog stage.Progress) (string, *stage.Env, *os.File, error) {
	if err := s.CleanTemp(t.Key, ""); err != nil {
		return "", nil, nil, err
	}
	tmp, err := s.TempDir(t.Key)
	if err != nil {
		return "", nil, nil, err
	}
	env := &stage.Env{
		ID:        t.ID,
		Params:    t.params,
		Inputs:    map[string][]stage.Artifact{},
		OutDir:    filepath.Join(tmp, "out"),
		Progress:  prog,
		Backend:   t.Backend,
		Downloads: s.Downloads(),
	}
	env.RunDir = filepath.Join(env.OutDir, artifacts.RunDirName)
	if recheck == "" {
		env.Scratch, err = s.Scratch(t.Key)
	}
	if err == nil {
		err = os.MkdirAll(env.RunDir, 0o777)
	}
	var logf *os.File
	if err == nil {
		logf, err = os.Create(filepath.Join(tmp, artifacts.LogName))
	}
	if err != nil {
		artifacts.RemoveTree(tmp)
		return "", nil, nil, err
	}
	env.Log = logf
	for name, ins := range t.job.Inputs {
		for _, in := range ins {
			env.Inputs[name] = append(env.Inputs[name], stage.Artifact{
				Dir: s.ObjectDir(in.Digest), Stage: in.Stage, Matrix: copyMap(in.Matrix), Digest: string(in.Digest),
			})
		}
	}
	return tmp, env, logf, nil
}

// callStage writes the log's header, calls the stage (from its prior,
// unless rechecking) and checks what it left: no log.txt of its own, and
// Path params unchanged.
func callStage(ctx context.Context, t *Task, env *stage.Env, recheck artifacts.Digest) error {
	fmt.Fprintf(env.Log, "# %s (%s v%d, key %s) started %s\n", t.ID, t.Kind.Name, t.Kind.Version, t.Key.Short(), time.Now().Format(time.RFC3339))
	if t.prior != nil && recheck == "" {
		env.Prior = t.prior
		env.SetRunInfo("prior", priorInfo(t.prior))
		io.WriteString(env.Log, priorLog(t.prior))
	}
	if err := t.Kind.Call(ctx, env); err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(env.OutDir, artifacts.LogName)); err == nil {
		return fmt.Errorf("the stage wrote %s into its output directory; that name is reserved for the runner's log", artifacts.LogName)
	}
	return pathsUnchanged(t)
}

// compareDigest hashes a recomputed artifact and fails when it differs
// from the cached one, listing the files that differ.
func compareDigest(s *artifacts.Store, out string, cached artifacts.Digest) (artifacts.Digest, error) {
	m, err := artifacts.HashDir(out)
	if err != nil {
		return "", err
	}
	d := m.Digest()
	if d != cached {
		var diff []string
		if want, err := s.Manifest(cached); err == nil {
			diff = want.Diff(m)
		}
		return d, fmt.Errorf("not deterministic: recomputed digest %s, cached %s%s", d.Short(), cached.Short(), formatDiff(diff))
	}
	return d, nil
}

// storeResult stores the finished artifact in out under t's key and records
// its digest in res, or why it could not be stored (with its log kept).
func storeResult(ctx context.Context, s *artifacts.Store, t *Task, out string, res *TaskResult) {
	rec, err := s.Put(t.Key, out, artifacts.PutInfo{Stage: t.ID, Kind: t.Kind.Name, Seconds: res.Duration.Seconds()})
	if err != nil {
		keepLog(s, t.Key, filepath.Join(out, artifacts.LogName), res)
		res.Err = err
		return
	}
	os.Remove(s.FailedLog(t.Key))
	_ = s.RemoveScratch(t.Key) // what is left of it, gc removes (its key is stored)
	// The reuse index only saves later work: failing to update it harms nothing.
	_ = recordReuse(ctx, s, t.Kind, t.job)
	res.Digest = rec.Digest
}

// RunInfoFile is the file in an artifact's run/ directory where the runner
// records how the artifact was computed: stage, key, host, executor, start
// and wall time, and what the stage added to stage.Env.RunInfo (its
// backend, say). Not digested.
const RunInfoFile = "run.json"

// writeRunInfo writes run/run.json for a finished stage.
func writeRunInfo(runDir string, t *Task, executor string, stageInfo map[string]any, start time.Time, d time.Duration) error {
	info := map[string]any{}
	for k, v := range stageInfo {
		info[k] = v
	}
	host, _ := os.Hostname()
	for k, v := range map[string]any{
		"stage": t.ID, "spec": t.Spec, "kind": t.Kind.Name, "version": t.Kind.Version,
		"key": string(t.Key), "host": host, "pid": os.Getpid(), "executor": executor,
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
func pathsUnchanged(t *Task) error {
	if !hasPathParam(t.Kind.Params) {
		return nil
	}
	kp, err := keyParams(t.Kind.Params, t.params, &artifacts.PathHasher{})
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
func keepLog(s *artifacts.Store, key artifacts.Key, logPath string, res *TaskResult) {
	res.LogTail = tailLines(logPath, logTailLines)
	if os.Rename(logPath, s.FailedLog(key)) == nil {
		res.LogFile = s.FailedLog(key)
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
	t := &Task{Key: k, ID: job.ID, Spec: job.Spec, Kind: kind, Backend: opts.Backend, job: job, params: params}
	if !opts.Force {
		t.prior = findPrior(s, kind, job, params)
	}
	if res := runJob(ctx, s, t, "", opts.Progress, executor); res.Err != nil {
		msg := fmt.Sprintf("%s: %v", job.ID, res.Err)
		if len(res.LogTail) > 0 {
			msg += "\n\t" + strings.Join(res.LogTail, "\n\t")
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
