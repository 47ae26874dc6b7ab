package artifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GCPolicy says which records GC removes. A record is removed when every
// rule that is set says so; at least one rule must be set.
type GCPolicy struct {
	// Keep, when non-nil, is the set of keys to keep (those of the stages of
	// the specs named by gc --keep); the rule removes every other record.
	Keep map[Key]bool
	// OlderThan, when positive, removes records not used for longer than
	// this. A record counts as used when it was created or found by Get, or
	// when a spec index that lists its key was written or touched by a run
	// (both times are refreshed at most once an hour).
	OlderThan time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCReport counts what GC removed (or would remove, in a dry run).
type GCReport struct {
	Records, Objects int // records and artifacts removed
	// Bytes is the size of the removed objects.
	Bytes int64
	// Temp counts directories under tmp/ left by dead processes, Locks the
	// lock files, Failed the logs of failed stages, Quarantined the
	// quarantined artifacts, Junk other leftovers (interrupted atomic writes).
	Temp, Locks, Failed, Quarantined, Junk int
	// Scratch counts removed scratch directories: those of keys already
	// stored, and those the policy removes by their age.
	Scratch int
	// KeptRecords and KeptObjects count what stays.
	KeptRecords, KeptObjects int
}

// GC removes records by policy, then every object no remaining record
// points to, and every leftover of crashed processes (temp dirs, unheld lock
// files, failed logs, quarantine). Descriptions follow their records; a
// description without a record (a stage that never finished) follows the
// same policy by its own age. Downloads and spec indexes are kept; reuse
// indexes lose the entries of removed records.
//
// GC takes cache.lock exclusively and fails with ErrBusy while a run holds it.
func (s *Store) GC(p GCPolicy) (GCReport, error) {
	var rep GCReport
	if p.Keep == nil && p.OlderThan <= 0 {
		return rep, errors.New("gc needs a scope: keys to keep or a minimum age")
	}
	l, err := s.Exclude()
	if err != nil {
		return rep, err
	}
	defer l.Unlock()
	now := s.now()
	remove := func(path string) error {
		if p.DryRun {
			return nil
		}
		return RemoveTree(path)
	}
	recent := map[Key]bool{}
	if p.OlderThan > 0 {
		if err := s.recentIndexKeys(now.Add(-p.OlderThan), recent); err != nil {
			return rep, err
		}
	}
	removable := func(k Key, mtime time.Time) bool {
		if p.Keep != nil && p.Keep[k] {
			return false
		}
		if p.OlderThan > 0 && (now.Sub(mtime) <= p.OlderThan || recent[k]) {
			return false
		}
		return true
	}

	// Records and descriptions.
	used := map[Digest]bool{}
	err = s.eachShardFile("keys", func(path, name string, info fs.FileInfo) error {
		switch {
		case strings.HasSuffix(name, ".desc.json"):
			k := Key(strings.TrimSuffix(name, ".desc.json"))
			if s.jobRecorded(k) {
				return nil // a queued cluster job will read it
			}
			if _, err := os.Stat(s.recordPath(k)); err == nil {
				// Decided with its record below.
				if removable(k, s.recordTime(k)) {
					return remove(path)
				}
				return nil
			}
			if removable(k, info.ModTime()) {
				return remove(path)
			}
		case strings.HasSuffix(name, ".json") && isHex(strings.TrimSuffix(name, ".json")):
			k := Key(strings.TrimSuffix(name, ".json"))
			if removable(k, info.ModTime()) {
				rep.Records++
				return remove(path)
			}
			var r Record
			data, err := os.ReadFile(path)
			if err == nil && json.Unmarshal(data, &r) == nil && isHex(string(r.Digest)) {
				used[r.Digest] = true
				rep.KeptRecords++
				return nil
			}
			rep.Records++ // unreadable: cannot be trusted
			return remove(path)
		default:
			rep.Junk++
			return remove(path)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}

	// Objects with their manifests and stamps.
	err = s.eachShardFile("objects", func(path, name string, info fs.FileInfo) error {
		base, ext, _ := strings.Cut(name, ".")
		d := Digest(base)
		switch {
		case info.IsDir() && isHex(name):
			if used[d] {
				rep.KeptObjects++
				return nil
			}
			rep.Objects++
			rep.Bytes += treeSize(path)
			return remove(path)
		case (ext == "manifest" || ext == "stamp") && isHex(base):
			if used[d] {
				return nil
			}
			return remove(path)
		}
		rep.Junk++
		return remove(path)
	})
	if err != nil {
		return rep, err
	}

	// Leftovers. No run holds cache.lock, so no live process owns these.
	for _, sub := range []struct {
		dir   string
		count *int
	}{{"tmp", &rep.Temp}, {"failed", &rep.Failed}, {"quarantine", &rep.Quarantined}} {
		entries, err := os.ReadDir(filepath.Join(s.dir, sub.dir))
		if err != nil {
			return rep, err
		}
		for _, e := range entries {
			*sub.count++
			if err := remove(filepath.Join(s.dir, sub.dir, e.Name())); err != nil {
				return rep, err
			}
		}
	}
	// Scratch dirs hold the resumable state of interrupted stages: kept by
	// the policy like records (by key and age), removed once stale.
	entries, err := os.ReadDir(filepath.Join(s.dir, "scratch"))
	if err != nil {
		return rep, err
	}
	for _, e := range entries {
		k := Key(e.Name())
		info, ierr := e.Info()
		_, stored := os.Stat(s.recordPath(k))
		if ierr != nil || stored == nil || removable(k, info.ModTime()) {
			rep.Scratch++
			if err := remove(filepath.Join(s.dir, "scratch", e.Name())); err != nil {
				return rep, err
			}
		}
	}
	// Reuse indexes forget the records removed.
	if err := s.pruneReuse(p.DryRun); err != nil {
		return rep, fmt.Errorf("reuse index: %w", err)
	}
	err = s.eachShardFile("locks", func(path, name string, info fs.FileInfo) error {
		if heldLock(path) {
			return nil // an exec-stage process outside any run; leave it
		}
		rep.Locks++
		return remove(path)
	})
	return rep, err
}

// recentIndexKeys adds to keys every key listed in a spec index modified
// after since.
func (s *Store) recentIndexKeys(since time.Time, keys map[Key]bool) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, "index"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !strings.HasSuffix(e.Name(), ".json") || info.ModTime().Before(since) {
			continue
		}
		idx, err := s.ReadIndex(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil {
			return err
		}
		for _, ie := range idx {
			keys[ie.Key] = true
		}
	}
	return nil
}

// jobDirs are the directories where cluster executors keep a record per
// key whose job is queued or running (package runner/cluster).
var jobDirs = []string{"slurm"}

// jobRecorded reports whether a cluster job record exists for key k.
func (s *Store) jobRecorded(k Key) bool {
	for _, d := range jobDirs {
		if _, err := os.Stat(filepath.Join(s.dir, d, string(k)+".json")); err == nil {
			return true
		}
	}
	return false
}

// recordTime returns the modification time of k's record (zero if absent).
func (s *Store) recordTime(k Key) time.Time {
	info, err := os.Stat(s.recordPath(k))
	if err != nil {
		return time.Time{}
	}
	return info.ModTime()
}

// eachShardFile calls fn for each entry of each shard directory of sub.
func (s *Store) eachShardFile(sub string, fn func(path, name string, info fs.FileInfo) error) error {
	root := filepath.Join(s.dir, sub)
	shards, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		dir := filepath.Join(root, sh.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(filepath.Join(dir, e.Name()), e.Name(), info); err != nil {
				return fmt.Errorf("%s: %w", sub, err)
			}
		}
	}
	return nil
}

func treeSize(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
