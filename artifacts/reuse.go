package artifacts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// A reuse index lists the stored artifacts of one reuse group: the stage
// computations of a kind that declares stage.Reuse which agree in
// everything but the kind's reuse params (a train stage's epochs, say). The
// runner names the group by a hash of that common part, records each
// artifact it stores there, and looks there for an artifact a new stage can
// start from, instead of scanning the cache.

// ReuseEntry is one artifact of a reuse group: its stage key and the
// values of the group's reuse params it was computed with, as they enter
// keys.
type ReuseEntry struct {
	Key    Key            `json:"key"`
	Params map[string]any `json:"params"`
}

func (s *Store) reusePath(group string) string {
	return filepath.Join(s.dir, "index", "reuse", shard(group), group+".json")
}

// ReadReuse returns the entries of a reuse group, in the order they were
// added; none when the group has no index (or an unreadable one: the index
// only saves work). Numbers in Params are json.Numbers.
func (s *Store) ReadReuse(group string) ([]ReuseEntry, error) {
	data, err := os.ReadFile(s.reusePath(group))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeReuse(data), nil
}

func decodeReuse(data []byte) []ReuseEntry {
	var entries []ReuseEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&entries) != nil {
		return nil
	}
	return entries
}

// HasReuse reports whether a reuse group has an index (one stat(2)).
func (s *Store) HasReuse(group string) bool {
	_, err := os.Stat(s.reusePath(group))
	return err == nil
}

// AddReuse records e in the index of a reuse group, replacing an entry of
// the same key. Concurrent runners take turns on the group's lock file
// (locks/ab/<group>.reuse.lock).
func (s *Store) AddReuse(ctx context.Context, group string, e ReuseEntry) error {
	lock := filepath.Join(s.dir, "locks", shard(group), group+".reuse.lock")
	if err := os.MkdirAll(filepath.Dir(lock), 0o777); err != nil {
		return err
	}
	l, err := lockFile(ctx, lock, unix.LOCK_EX, nil)
	if err != nil {
		return fmt.Errorf("reuse index %s: %w", short(group), err)
	}
	defer l.Unlock()
	p := s.reusePath(group)
	var entries []ReuseEntry
	if data, err := os.ReadFile(p); err == nil {
		entries = decodeReuse(data)
	}
	kept := entries[:0]
	for _, old := range entries {
		if old.Key != e.Key {
			kept = append(kept, old)
		}
	}
	data, err := json.Marshal(append(kept, e))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(data, '\n'), 0o666)
}

// pruneReuse drops, from every reuse index, the entries whose record is
// gone, and removes indexes left empty. GC calls it with cache.lock held
// exclusively, so no runner is adding entries meanwhile.
func (s *Store) pruneReuse(dryRun bool) error {
	root := filepath.Join(s.dir, "index", "reuse")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || dryRun {
			return err
		}
		if !strings.HasSuffix(p, ".json") {
			return os.Remove(p) // an interrupted atomic write
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		entries := decodeReuse(data)
		kept := entries[:0]
		for _, e := range entries {
			if _, err := os.Stat(s.recordPath(e.Key)); err == nil {
				kept = append(kept, e)
			}
		}
		switch {
		case len(kept) == 0:
			return os.Remove(p)
		case len(kept) < len(entries):
			data, err := json.Marshal(kept)
			if err != nil {
				return err
			}
			return atomicfile.WriteFile(p, append(data, '\n'), 0o666)
		}
		return nil
	})
}
