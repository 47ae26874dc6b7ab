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
	if p.Keep == nil && p.OlderThan <= 0 {
		return GCReport{}, errors.New("gc needs a scope: keys to keep or a minimum age")
	}
	l, err := s.Exclude()
	if err != nil {
		return GCReport{}, err
	}
	defer l.Unlock()
	g := &collector{s: s, p: p, now: s.now(), recent: map[Key]bool{}, used: map[Digest]bool{}}
	if p.OlderThan > 0 {
		if err := s.recentIndexKeys(g.now.Add(-p.OlderThan), g.recent); err != nil {
			return g.rep, err
		}
	}
	// The order matters: objects are kept by the records that remain.
	for _, phase := range []func() error{g.records, g.objects, g.leftovers, g.scratch, g.reuse, g.locks} {
		if err := phase(); err != nil {
			return g.rep, err
		}
	}
	return g.rep, nil
}

// collector is one GC: its policy and what it found so far.
type collector struct {
	s      *Store
	p      GCPolicy
	now    time.Time
	recent map[Key]bool // keys listed by a spec index used within OlderThan
	used   map[Digest]bool
	rep    GCReport
}

// remove removes path, unless this is a dry run.
func (g *collector) remove(path string) error {
	if g.p.DryRun {
		return nil
	}
	return RemoveTree(path)
}

// removable reports whether the policy removes what key k left, last used
// at mtime.
func (g *collector) removable(k Key, mtime time.Time) bool {
	if g.p.Keep != nil && g.p.Keep[k] {
		return false
	}
	if g.p.OlderThan > 0 && (g.now.Sub(mtime) <= g.p.OlderThan || g.recent[k]) {
		return false
	}
	return true
}

// records removes the records and descriptions the policy removes, and
// notes the objects the others point to.
func (g *collector) records() error {
	return g.s.eachShardFile("keys", func(path, name string, info fs.FileInfo) error {
		switch {
		case strings.HasSuffix(name, ".desc.json"):
			return g.description(path, Key(strings.TrimSuffix(name, ".desc.json")), info)
		case strings.HasSuffix(name, ".json") && isHex(strings.TrimSuffix(name, ".json")):
			k := Key(strings.TrimSuffix(name, ".json"))
			if g.removable(k, info.ModTime()) {
				g.rep.Records++
				return g.remove(path)
			}
			var r Record
			data, err := os.ReadFile(path)
			if err == nil && json.Unmarshal(data, &r) == nil && isHex(string(r.Digest)) {
				g.used[r.Digest] = true
				g.rep.KeptRecords++
				return nil
			}
			g.rep.Records++ // unreadable: cannot be trusted
			return g.remove(path)
		}
		g.rep.Junk++
		return g.remove(path)
	})
}

// description decides the job description of key k at path: it follows
// its record, or without one its own age; a queued cluster job keeps it.
func (g *collector) description(path string, k Key, info fs.FileInfo) error {
	if g.s.jobRecorded(k) {
		return nil // a queued cluster job will read it
	}
	mtime := info.ModTime()
	if _, err := os.Stat(g.s.recordPath(k)); err == nil {
		mtime = g.s.recordTime(k) // decided with its record
	}
	if g.removable(k, mtime) {
		return g.remove(path)
	}
	return nil
}

// objects removes the objects no remaining record points to, with their
// manifests and stamps.
func (g *collector) objects() error {
	return g.s.eachShardFile("objects", func(path, name string, info fs.FileInfo) error {
		base, ext, _ := strings.Cut(name, ".")
		d := Digest(base)
		switch {
		case info.IsDir() && isHex(name):
			if g.used[d] {
				g.rep.KeptObjects++
				return nil
			}
			g.rep.Objects++
			g.rep.Bytes += treeSize(path)
			return g.remove(path)
		case (ext == "manifest" || ext == "stamp") && isHex(base):
			if g.used[d] {
				return nil
			}
			return g.remove(path)
		}
		g.rep.Junk++
		return g.remove(path)
	})
}

// leftovers removes temp dirs, failed logs and quarantined artifacts. No
// run holds cache.lock, so no live process owns these.
func (g *collector) leftovers() error {
	for _, sub := range []struct {
		dir   string
		count *int
	}{{"tmp", &g.rep.Temp}, {"failed", &g.rep.Failed}, {"quarantine", &g.rep.Quarantined}} {
		entries, err := os.ReadDir(filepath.Join(g.s.dir, sub.dir))
		if err != nil {
			return err
		}
		for _, e := range entries {
			*sub.count++
			if err := g.remove(filepath.Join(g.s.dir, sub.dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// scratch removes scratch dirs, the resumable state of interrupted stages:
// kept by the policy like records (by key and age), removed once their key
// is stored.
func (g *collector) scratch() error {
	entries, err := os.ReadDir(filepath.Join(g.s.dir, "scratch"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		k := Key(e.Name())
		info, ierr := e.Info()
		_, stored := os.Stat(g.s.recordPath(k))
		if ierr != nil || stored == nil || g.removable(k, info.ModTime()) {
			g.rep.Scratch++
			if err := g.remove(filepath.Join(g.s.dir, "scratch", e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// reuse makes the reuse indexes forget the records removed.
func (g *collector) reuse() error {
	if err := g.s.pruneReuse(g.p.DryRun); err != nil {
		return fmt.Errorf("reuse index: %w", err)
	}
	return nil
}

// locks removes the lock files no process holds.
func (g *collector) locks() error {
	return g.s.eachShardFile("locks", func(path, name string, info fs.FileInfo) error {
		if heldLock(path) {
			return nil // an exec-stage process outside any run; leave it
		}
		g.rep.Locks++
		return g.remove(path)
	})
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
