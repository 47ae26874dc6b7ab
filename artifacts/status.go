package artifacts

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Status summarises a store's contents.
type Status struct {
	Dir string // the cache root
	// Records and Objects count stored entries; Bytes is the objects' size.
	Records, Objects int
	Bytes            int64
	// Temp counts directories under tmp/ (running stages, or leftovers of
	// dead processes), Failed the kept logs of failed stages, Quarantined the
	// artifacts set aside by Verify.
	Temp, Failed, Quarantined int
	// DownloadBytes is the size of downloads/.
	DownloadBytes int64
	// Scratch counts the scratch directories of interrupted stages, and
	// ScratchBytes their size.
	Scratch      int
	ScratchBytes int64
	// Locks counts lock files; Held lists the keys whose lock some process
	// holds now (stages being computed).
	Locks int
	Held  []Key
	// InUse reports whether some run holds cache.lock.
	InUse bool
}

// Status reads the store's contents. It takes no lock: counts may be stale
// by the time they are printed.
func (s *Store) Status() (Status, error) {
	st := Status{Dir: s.dir}
	err := s.eachShardFile("keys", func(path, name string, info fs.FileInfo) error {
		if strings.HasSuffix(name, ".json") && isHex(strings.TrimSuffix(name, ".json")) {
			st.Records++
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	err = s.eachShardFile("objects", func(path, name string, info fs.FileInfo) error {
		if info.IsDir() && isHex(name) {
			st.Objects++
			st.Bytes += treeSize(path)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	err = s.eachShardFile("locks", func(path, name string, info fs.FileInfo) error {
		st.Locks++
		if heldLock(path) {
			st.Held = append(st.Held, Key(strings.TrimSuffix(name, ".lock")))
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	sort.Slice(st.Held, func(i, j int) bool { return st.Held[i] < st.Held[j] })
	count := func(sub string) int {
		entries, _ := os.ReadDir(filepath.Join(s.dir, sub))
		n := 0
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".manifest") && !strings.HasSuffix(e.Name(), ".stamp") {
				n++
			}
		}
		return n
	}
	st.Temp, st.Failed, st.Quarantined = count("tmp"), count("failed"), count("quarantine")
	st.DownloadBytes = treeSize(s.Downloads())
	st.Scratch = count("scratch")
	st.ScratchBytes = treeSize(filepath.Join(s.dir, "scratch"))
	st.InUse = heldLock(filepath.Join(s.dir, "cache.lock"))
	return st, nil
}
