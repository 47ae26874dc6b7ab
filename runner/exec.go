package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
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
	if err := os.Mkdir(out, 0o777); err != nil {
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
		Log:       logf,
		Progress:  t.prog,
		Backend:   t.backend,
		Downloads: s.Downloads(),
	}
	if env.Progress == nil {
		env.Progress = stage.Discard
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
	fmt.Fprintf(logf, "# %s (%s v%d, key %s) started %s\n", t.job.ID, t.kind.Name, t.kind.Version, key.Short(), time.Now().Format(time.RFC3339))
	start := time.Now()
	err = safeRun(ctx, t.kind, env)
	res.duration = time.Since(start)
	if err == nil {
		if _, serr := os.Lstat(filepath.Join(out, artifacts.LogName)); serr == nil {
			err = fmt.Errorf("the stage wrote %s into its output directory; that name is reserved for the runner's log", artifacts.LogName)
		}
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
			diff = dropVolatile(diff, t.kind.Volatile, s.ObjectDir(t.recheck), out)
			if len(diff) == 0 {
				res.digest = t.recheck // only volatile content differs
				return res, nil
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
	res.digest = rec.Digest
	return res, nil
}

// keepLog keeps a failed stage's log as the store's FailedLog of key and
// records its tail in res.
func keepLog(s *artifacts.Store, key artifacts.Key, logPath string, res *execResult) {
	res.logTail = tailLines(logPath, logTailLines)
	if os.Rename(logPath, s.FailedLog(key)) == nil {
		res.logFile = s.FailedLog(key)
	}
}

// dropVolatile removes from a manifest diff (lines "path: how") the files a
// kind declares volatile, and the JSON files that differ only in volatile
// top-level keys ("file#key"), comparing the cached copy in want with the
// recomputed one in got.
func dropVolatile(diff, volatile []string, want, got string) []string {
	files := map[string]bool{}
	keys := map[string][]string{}
	for _, v := range volatile {
		if file, key, ok := strings.Cut(v, "#"); ok {
			keys[file] = append(keys[file], key)
		} else {
			files[v] = true
		}
	}
	var out []string
	for _, d := range diff {
		path, how, _ := strings.Cut(d, ": ")
		if files[path] {
			continue
		}
		if ks := keys[path]; ks != nil && (strings.HasPrefix(how, "content differs") || strings.HasPrefix(how, "size ")) {
			if jsonEqualExcept(filepath.Join(want, path), filepath.Join(got, path), ks) {
				continue
			}
		}
		out = append(out, d)
	}
	return out
}

// jsonEqualExcept reports whether two JSON object files are equal once the
// given top-level keys are removed from both.
func jsonEqualExcept(a, b string, keys []string) bool {
	var va, vb map[string]any
	for _, f := range []struct {
		path string
		v    *map[string]any
	}{{a, &va}, {b, &vb}} {
		data, err := os.ReadFile(f.path)
		if err != nil || json.Unmarshal(data, f.v) != nil {
			return false
		}
		for _, k := range keys {
			delete(*f.v, k)
		}
	}
	return reflect.DeepEqual(va, vb)
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

// safeRun calls the stage, turning a panic into an error with the stack in
// the stage's log. (A panic in a goroutine the stage starts cannot be
// recovered here and ends the process.)
func safeRun(ctx context.Context, k *stage.Kind, env *stage.Env) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(env.Log, "panic: %v\n\n%s", r, debug.Stack())
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return k.Run(ctx, env)
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
	for name, ins := range job.Inputs {
		for _, in := range ins {
			if info, err := os.Stat(s.ObjectDir(in.Digest)); err != nil || !info.IsDir() {
				return artifacts.Record{}, false, fmt.Errorf("key %s: input %s (from %s, artifact %s) is not in the cache", k.Short(), name, in.Stage, in.Digest.Short())
			}
		}
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
		if rec, ok, err := s.Get(k); err != nil || ok {
			return rec, false, err
		}
	}
	res, err := runJob(ctx, s, task{kind: kind, job: job, params: params, backend: opts.Backend, prog: opts.Progress})
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
