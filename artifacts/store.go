package artifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// Store is a content-addressed store of artifacts in one directory. See the
// package documentation for its layout and its crash-safety and concurrency
// contract.
type Store struct {
	dir string
	now func() time.Time
}

// Record maps a stage key to the artifact it produced.
type Record struct {
	Key    Key    `json:"key"`    // the stage key
	Digest Digest `json:"digest"` // the artifact it produced
	// Files and Size describe the artifact (log.txt excluded).
	Files int   `json:"files"`
	Size  int64 `json:"size"`
	// Stage and Kind name the stage instance that first produced the record.
	Stage string `json:"stage,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Created is when the record was written; Seconds how long the stage ran.
	Created time.Time `json:"created"`
	Seconds float64   `json:"seconds"`
}

// DefaultDir is the cache root used when neither --cache nor $RUNNER_CACHE
// names one, relative to the working directory.
const DefaultDir = ".runner"

// Open opens the store in dir, creating it and its layout if needed.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	if info, err := os.Stat(abs); err == nil && !info.IsDir() {
		return nil, fmt.Errorf("cache %s: not a directory", dir)
	}
	for _, sub := range []string{"objects", "keys", "locks", "tmp", "failed", "quarantine", "downloads", "index", "scratch"} {
		err := os.MkdirAll(filepath.Join(abs, sub), 0o777)
		if err != nil && !(errors.Is(err, syscall.EROFS) && sub != "objects" && sub != "keys") {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
		// A read-only cache missing a directory it would only write to
		// (locks/, tmp/, …) still serves what it holds: see Writable.
	}
	readme := filepath.Join(abs, "README")
	if _, err := os.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		_ = atomicfile.WriteFile(readme, []byte(readmeText), 0o666)
	}
	return &Store{dir: abs, now: time.Now}, nil
}

const readmeText = `This directory is the cache of the runner tool (github.com/hessian-spectra/runner).
Its layout is documented in package artifacts. It can be deleted at any time
when no runner is using it; "runner gc" removes parts of it safely.
`

// Writable reports, as an error naming the cache, when the store cannot
// take new results: a read-only file system or a directory this user may
// not write. A read-only cache still serves what it holds.
func (s *Store) Writable() error {
	for _, sub := range []string{"objects", "keys", "tmp"} {
		if err := unix.Access(filepath.Join(s.dir, sub), unix.W_OK); err != nil {
			return fmt.Errorf("cache %s is read-only (%s: %v): it can serve cached results but store no new ones; point --cache or $RUNNER_CACHE at a writable directory", s.dir, sub, err)
		}
	}
	return nil
}

// Dir returns the store's root directory (absolute).
func (s *Store) Dir() string { return s.dir }

// Downloads returns the directory shared by all runs for partial downloads.
func (s *Store) Downloads() string { return filepath.Join(s.dir, "downloads") }

// Scratch returns the scratch directory of key k, creating it: where a stage
// computing k keeps resumable state across interrupted runs. Use it only
// while holding k's lock.
func (s *Store) Scratch(k Key) (string, error) {
	p := filepath.Join(s.dir, "scratch", string(k))
	if err := os.MkdirAll(p, 0o777); err != nil {
		return "", fmt.Errorf("cache scratch dir: %w", err)
	}
	return p, nil
}

// RemoveScratch removes the scratch directory of key k, if any: call it
// once k's artifact is stored.
func (s *Store) RemoveScratch(k Key) error {
	return RemoveTree(filepath.Join(s.dir, "scratch", string(k)))
}

func shard(name string) string {
	if len(name) < 2 {
		return "__"
	}
	return name[:2]
}

// ObjectDir returns the directory of the artifact with digest d (which may not
// exist).
func (s *Store) ObjectDir(d Digest) string {
	return filepath.Join(s.dir, "objects", shard(string(d)), string(d))
}

func (s *Store) manifestPath(d Digest) string { return s.ObjectDir(d) + ".manifest" }

func (s *Store) recordPath(k Key) string {
	return filepath.Join(s.dir, "keys", shard(string(k)), string(k)+".json")
}

func (s *Store) descPath(k Key) string {
	return filepath.Join(s.dir, "keys", shard(string(k)), string(k)+".desc.json")
}

func (s *Store) lockPath(k Key) string {
	return filepath.Join(s.dir, "locks", shard(string(k)), string(k)+".lock")
}

// FailedLog returns where the log of a failed run of k is kept.
func (s *Store) FailedLog(k Key) string { return filepath.Join(s.dir, "failed", string(k)+".log") }

// touchAge is how stale a record's modification time may get before Get
// refreshes it: the time of last use that GC's age policy reads, updated
// at most once an hour so that a no-op rerun writes nothing.
const touchAge = time.Hour

// Get returns the record of key k and true when both the record and its
// artifact are present and the artifact is whole (CheckObject: a stat per
// file). A missing entry is not an error. A damaged artifact is a miss
// reported as a *DamagedError, with the record: the caller recomputes the
// stage, and Put replaces the damaged object. A hit refreshes the record's
// modification time (its time of last use, which GC's age policy reads) when
// it is more than an hour old.
func (s *Store) Get(k Key) (Record, bool, error) {
	p := s.recordPath(k)
	data, mtime, err := readSmall(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("cache record %s: %w", p, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil || r.Key != k || !isHex(string(r.Digest)) {
		return Record{}, false, fmt.Errorf("cache record %s is corrupt (run runner verify)", p)
	}
	if !s.HasObject(r.Digest) {
		return Record{}, false, nil
	}
	if err := s.checkFiles(r.Digest); err != nil {
		return r, false, err
	}
	if now := s.now(); now.Sub(mtime) > touchAge {
		_ = os.Chtimes(p, now, now)
	}
	return r, true, nil
}

// readSmall reads a small file with as few system calls as possible (open,
// fstat, read, close), returning its modification time too.
func readSmall(p string) ([]byte, time.Time, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	buf := make([]byte, info.Size()+1)
	n, err := io.ReadFull(f, buf)
	if err != io.ErrUnexpectedEOF && err != nil {
		return nil, time.Time{}, err
	}
	return buf[:n], info.ModTime(), nil
}

var tmpSeq atomic.Int64

// TempDir creates a fresh directory under tmp/ for a stage computing k.
func (s *Store) TempDir(k Key) (string, error) {
	for {
		name := fmt.Sprintf("%s.%d.%d", k, os.Getpid(), tmpSeq.Add(1))
		p := filepath.Join(s.dir, "tmp", name)
		err := os.Mkdir(p, 0o777)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("cache temp dir: %w", err)
		}
	}
}

// CleanTemp removes temp dirs that earlier, dead processes left for key k,
// keeping the one named keep. Call it only while holding k's lock: then no
// live process owns them.
func (s *Store) CleanTemp(k Key, keep string) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if err != nil {
		return err
	}
	prefix := string(k) + "."
	for _, e := range entries {
		p := filepath.Join(s.dir, "tmp", e.Name())
		if strings.HasPrefix(e.Name(), prefix) && p != keep {
			if err := RemoveTree(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// PutInfo is what the caller knows about an artifact it puts.
type PutInfo struct {
	Stage   string  // id of the producing stage instance
	Kind    string  // its kind
	Seconds float64 // how long it ran
}

// Put moves the finished artifact in dir (normally under TempDir) into the
// store and records it as the result of key k. dir is consumed: on success it
// no longer exists. If an artifact with the same digest is already stored and
// whole (re-hashed to make sure), dir is removed and the stored one is kept
// (with its log.txt and run/); a damaged one is moved to quarantine/ and
// replaced. Every file and directory is fsync'ed before the record that
// points at them is written, so that after a power loss a record never
// points at empty files.
func (s *Store) Put(k Key, dir string, info PutInfo) (Record, error) {
	m, err := HashDir(dir)
	if err != nil {
		return Record{}, err
	}
	d := m.Digest()
	if err := s.putObject(d, m, dir); err != nil {
		return Record{}, err
	}
	r := Record{
		Key: k, Digest: d, Files: len(m), Size: m.Size(),
		Stage: info.Stage, Kind: info.Kind, Created: s.now().UTC().Round(time.Millisecond), Seconds: info.Seconds,
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return Record{}, err
	}
	p := s.recordPath(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return Record{}, err
	}
	if err := step("record", func() error { return atomicfile.WriteFileDurable(p, append(data, '\n'), 0o666) }); err != nil {
		return Record{}, fmt.Errorf("cache record for %s: %w", k.Short(), err)
	}
	return r, nil
}

// faultAt, when set (by tests), is called at each step of Put ("seal",
// "manifest", "rename", "stamp", "record") and an error it returns is
// taken as that step's failure: how a full disk or an I/O error at any
// point of a put is tested.
var faultAt func(step string) error

// step runs op, the named step of a put, unless faultAt fails it first.
func step(name string, op func() error) error {
	if faultAt != nil {
		if err := faultAt(name); err != nil {
			return err
		}
	}
	return op()
}

// putObject stores dir as the object with digest d unless an intact one
// exists.
func (s *Store) putObject(d Digest, m Manifest, dir string) error {
	obj := s.ObjectDir(d)
	if s.HasObject(d) {
		diff, err := s.VerifyObject(d)
		if err == nil && len(diff) == 0 {
			if s.readStamp(d) == nil {
				_ = s.writeStamp(d, m)
			}
			return RemoveTree(dir)
		}
		// Damaged (or unreadable): set it aside and store the new copy.
		if err := s.quarantineObject(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(obj), 0o777); err != nil {
		return err
	}
	if err := step("seal", func() error { return seal(dir) }); err != nil {
		return fmt.Errorf("artifact %s: %w", d.Short(), err)
	}
	if err := step("manifest", func() error { return atomicfile.WriteFileDurable(s.manifestPath(d), m.Bytes(), 0o666) }); err != nil {
		return fmt.Errorf("artifact %s: manifest: %w", d.Short(), err)
	}
	if err := step("rename", func() error { return os.Rename(dir, obj) }); err != nil {
		// Another process stored the same content first.
		if info, serr := os.Stat(obj); serr == nil && info.IsDir() {
			return RemoveTree(dir)
		}
		return fmt.Errorf("artifact %s: %w", d.Short(), err)
	}
	if err := atomicfile.Sync(filepath.Dir(obj)); err != nil {
		return fmt.Errorf("artifact %s: %w", d.Short(), err)
	}
	if err := step("stamp", func() error { return s.writeStamp(d, m) }); err != nil {
		return fmt.Errorf("artifact %s: stamp: %w", d.Short(), err)
	}
	return nil
}

// VerifyObject re-hashes the artifact with digest d and reports how it differs from
// its manifest; nil means intact.
func (s *Store) VerifyObject(d Digest) ([]string, error) {
	got, err := HashDir(s.ObjectDir(d))
	if err != nil {
		return nil, err
	}
	if got.Digest() == d {
		return nil, nil
	}
	want, err := s.Manifest(d)
	if err != nil {
		return []string{fmt.Sprintf("digest %s, want %s (manifest unreadable: %v)", got.Digest().Short(), d.Short(), err)}, nil
	}
	diff := want.Diff(got)
	if len(diff) == 0 {
		diff = []string{fmt.Sprintf("digest %s, want %s (the manifest file itself was altered)", got.Digest().Short(), d.Short())}
	}
	return diff, nil
}

// Manifest reads the stored manifest of the artifact with digest d.
func (s *Store) Manifest(d Digest) (Manifest, error) {
	data, err := os.ReadFile(s.manifestPath(d))
	if err != nil {
		return nil, err
	}
	return ParseManifest(data)
}

// WriteDesc stores the description of key k (what went into it and how to run
// it), replacing any earlier one.
func (s *Store) WriteDesc(k Key, data []byte) error {
	p := s.descPath(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	return atomicfile.WriteFileDurable(p, data, 0o666)
}

// ReadDesc returns the description stored for key k.
func (s *Store) ReadDesc(k Key) ([]byte, error) {
	data, err := os.ReadFile(s.descPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no description of key %s in cache %s", k, s.dir)
	}
	return data, err
}

// HasDesc reports whether a description of key k is stored.
func (s *Store) HasDesc(k Key) bool {
	_, err := os.Stat(s.descPath(k))
	return err == nil
}

// Index remembers, for each stage id of one spec, the key and digest of its
// latest run. Plan and Run read it to explain what changed, and to find a
// cached stage with one stat(2) instead of reading its record.
type Index map[string]IndexEntry

// IndexEntry is what an index remembers of one stage id. Digest is empty
// when that run failed.
type IndexEntry struct {
	Key    Key    `json:"key"`              // the id's stage key in that run
	Digest Digest `json:"digest,omitempty"` // its artifact, if it succeeded
}

func (s *Store) indexPath(spec string) string { return filepath.Join(s.dir, "index", spec+".json") }

// ReadIndex returns the index of spec; an absent or unreadable index is
// empty (it only costs plan reasons and a faster look-up).
func (s *Store) ReadIndex(spec string) (Index, error) {
	data, err := os.ReadFile(s.indexPath(spec))
	if errors.Is(err, fs.ErrNotExist) {
		return Index{}, nil
	}
	if err != nil {
		return nil, err
	}
	idx := Index{}
	if err := json.Unmarshal(data, &idx); err != nil {
		return Index{}, nil
	}
	return idx, nil
}

// IndexedSpecs lists, sorted, the names of the specs that have an index.
func (s *Store) IndexedSpecs() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "index"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// WriteIndex replaces the index of spec.
func (s *Store) WriteIndex(spec string, idx Index) error {
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.indexPath(spec), append(data, '\n'), 0o666)
}

// TouchIndex marks every key of spec's index as used now, for GC's age
// policy, rewriting the file's time at most once an hour.
func (s *Store) TouchIndex(spec string) {
	p := s.indexPath(spec)
	if info, err := os.Stat(p); err == nil {
		if now := s.now(); now.Sub(info.ModTime()) > touchAge {
			_ = os.Chtimes(p, now, now)
		}
	}
}

// HasObject reports whether the artifact with digest d is stored.
func (s *Store) HasObject(d Digest) bool {
	info, err := os.Stat(s.ObjectDir(d))
	return err == nil && info.IsDir()
}

// seal makes the finished artifact in dir durable and read-only: every
// file is fsync'ed and loses its write bits, then every directory, bottom-up
// (so the walk can still list them), is fsync'ed and made read-only. A rename
// of dir then publishes complete files.
func seal(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := atomicfile.Sync(p); err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()&^0o222)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := atomicfile.Sync(dirs[i]); err != nil {
			return err
		}
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// RemoveTree removes p and everything under it, read-only directories
// included. A missing p is not an error.
func RemoveTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil || !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EACCES) {
		return err
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}
