package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// Record is what the cache remembers of the job submitted for one key, in
// <cache>/<queue>/<key>.json. It exists from just before the job is
// submitted until its outcome is known; see the package documentation for
// the protocol.
type Record struct {
	Key artifacts.Key `json:"key"`
	// State is "submitting" (written before the job is submitted: its id
	// is not known yet) or "submitted" (Job holds the id).
	State string `json:"state"`
	Job   string `json:"job,omitempty"`
	// Run is the id of the run that owns the job: it cancels the job on
	// Ctrl-C and resubmits it after a node failure. Host and PID say where
	// that run is.
	Run  string `json:"run"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Stage and Spec name the instance that asked for the key.
	Stage string `json:"stage"`
	Spec  string `json:"spec"`
	// Attempt counts submissions after node failures, from 1; Exclude
	// lists the nodes where earlier attempts failed.
	Attempt int      `json:"attempt"`
	Exclude []string `json:"exclude,omitempty"`
	// Submitted is when the job was submitted (or adopted).
	Submitted time.Time `json:"submitted"`
}

// Record states.
const (
	stateSubmitting = "submitting"
	stateSubmitted  = "submitted"
)

// records is the directory of one queue's records in a cache.
type records struct {
	dir string // <cache>/<queue name>
}

func (r records) path(k artifacts.Key) string { return filepath.Join(r.dir, string(k)+".json") }
func (r records) lockPath(k artifacts.Key) string {
	return filepath.Join(r.dir, "locks", string(k)+".lock")
}
func (r records) runLock(run string) string { return filepath.Join(r.dir, "runs", run+".lock") }
func (r records) logDir() string            { return filepath.Join(r.dir, "logs") }

// logFile is the file the job with id of key k writes its output to.
func (r records) logFile(k artifacts.Key, id string) string {
	return filepath.Join(r.logDir(), string(k)+"."+id+".log")
}

// lock takes the record lock of key k: every change to k's record is made
// under it. It is held for the length of one submission at most.
func (r records) lock(ctx context.Context, k artifacts.Key) (*artifacts.Lock, error) {
	return artifacts.LockPath(ctx, r.lockPath(k), nil)
}

// errCorrupt marks a record that cannot be read.
var errCorrupt = errors.New("corrupt job record")

// read returns k's record, whether there is one, or errCorrupt (wrapped).
func (r records) read(k artifacts.Key) (Record, bool, error) {
	data, err := os.ReadFile(r.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("job record of %s: %w", k.Short(), err)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil || rec.Key != k || (rec.State != stateSubmitting && rec.State != stateSubmitted) {
		return Record{}, true, fmt.Errorf("job record %s: %w", r.path(k), errCorrupt)
	}
	return rec, true, nil
}

var tmpSeq atomic.Int64

func (r records) tmpFile(rec Record) (string, error) {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := r.path(rec.Key) + ".tmp." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatInt(tmpSeq.Add(1), 10)
	if err := os.WriteFile(tmp, append(data, '\n'), 0o666); err != nil {
		return "", fmt.Errorf("job record: %w", err)
	}
	return tmp, nil
}

// create writes rec as a new record: it fails with fs.ErrExist when k has
// one, even where flock is not trusted (link(2) is atomic on NFS too).
func (r records) create(rec Record) error {
	tmp, err := r.tmpFile(rec)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, r.path(rec.Key)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return fmt.Errorf("job record: %w", err)
	}
	return nil
}

// write replaces k's record by rec atomically (rename).
func (r records) write(rec Record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(r.path(rec.Key), append(data, '\n'), 0o666); err != nil {
		return fmt.Errorf("job record: %w", err)
	}
	return nil
}

// remove removes k's record; a missing one is not an error.
func (r records) remove(k artifacts.Key) error {
	if err := os.Remove(r.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("job record: %w", err)
	}
	return nil
}

// list returns every readable record, sorted by submission time.
func (r records) list() ([]Record, error) {
	entries, err := os.ReadDir(r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		k, err := artifacts.ParseKey(name)
		if err != nil {
			continue
		}
		if rec, ok, err := r.read(k); err == nil && ok {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Submitted.Before(out[j].Submitted) })
	return out, nil
}

// alive reports whether the run with id run is still running: its process
// holds the run's lock file for as long as it lives.
func (r records) alive(run string) bool { return run != "" && artifacts.Held(r.runLock(run)) }

// cleanRuns removes the lock files of runs that are gone.
func (r records) cleanRuns() {
	entries, _ := os.ReadDir(filepath.Join(r.dir, "runs"))
	for _, e := range entries {
		if run, ok := strings.CutSuffix(e.Name(), ".lock"); ok && !r.alive(run) {
			os.Remove(r.runLock(run))
		}
	}
}

// cacheID returns the random id of the cache, created on first use: jobs
// carry it in their names, so that two caches' jobs never mix.
func (r records) cacheID() (string, error) {
	p := filepath.Join(r.dir, "id")
	for {
		data, err := os.ReadFile(p)
		if err == nil {
			id := strings.TrimSpace(string(data))
			if len(id) == 8 {
				return id, nil
			}
			return "", fmt.Errorf("cache id %s is corrupt: remove it (jobs in the queue then lose their names)", p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := os.MkdirAll(r.dir, 0o777); err != nil {
			return "", err
		}
		tmp := fmt.Sprintf("%s.tmp.%d.%d", p, os.Getpid(), tmpSeq.Add(1))
		if err := os.WriteFile(tmp, []byte(randomHex(4)+"\n"), 0o666); err != nil {
			return "", err
		}
		err = os.Link(tmp, p) // the first writer wins
		os.Remove(tmp)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
