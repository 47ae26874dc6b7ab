package artifacts

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// Problem is one corrupt artifact or record found by Verify.
type Problem struct {
	// Digest names the corrupt artifact; empty for a bad record alone.
	Digest Digest
	// Record is the path of a corrupt or dangling record, if that is the problem.
	Record string
	// Details say what differs, one line each.
	Details []string
	// Keys are the records that point to the artifact; Quarantine removes them.
	Keys []Key
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Objects and Bytes count what was re-hashed.
	Objects int
	Bytes   int64 // total size of the artifacts
	// Problems lists what is corrupt, sorted by digest then record.
	Problems []Problem
}

// Verify re-hashes every stored artifact and compares it with its digest, and
// checks that every record is readable and points to an artifact. It changes
// nothing; pass its report to Quarantine to set the problems aside. progress,
// if not nil, is called after each artifact with the counts done and total.
func (s *Store) Verify(progress func(done, total int)) (VerifyReport, error) {
	var rep VerifyReport
	byDigest := map[Digest][]Key{}
	var records []Problem
	err := s.eachShardFile("keys", func(path, name string, info fs.FileInfo) error {
		if !strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".desc.json") || !isHex(strings.TrimSuffix(name, ".json")) {
			return nil
		}
		k := Key(strings.TrimSuffix(name, ".json"))
		var r Record
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if json.Unmarshal(data, &r) != nil || r.Key != k || !isHex(string(r.Digest)) {
			records = append(records, Problem{Record: path, Keys: []Key{k}, Details: []string{"record is unreadable"}})
			return nil
		}
		byDigest[r.Digest] = append(byDigest[r.Digest], k)
		return nil
	})
	if err != nil {
		return rep, err
	}
	var objects []Digest
	err = s.eachShardFile("objects", func(path, name string, info fs.FileInfo) error {
		if info.IsDir() && isHex(name) {
			objects = append(objects, Digest(name))
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	sort.Slice(objects, func(i, j int) bool { return objects[i] < objects[j] })
	present := map[Digest]bool{}
	for i, d := range objects {
		present[d] = true
		diff, err := s.VerifyObject(d)
		if err != nil {
			diff = []string{err.Error()}
		}
		rep.Objects++
		rep.Bytes += treeSize(s.ObjectDir(d))
		if len(diff) > 0 {
			rep.Problems = append(rep.Problems, Problem{Digest: d, Details: diff, Keys: byDigest[d]})
		}
		if progress != nil {
			progress(i+1, len(objects))
		}
	}
	for d, keys := range byDigest {
		if present[d] {
			continue
		}
		for _, k := range keys {
			records = append(records, Problem{Record: s.recordPath(k), Keys: []Key{k},
				Details: []string{fmt.Sprintf("record points to artifact %s, which is missing", d.Short())}})
		}
	}
	sort.Slice(records, func(i, j int) bool { return records[i].Record < records[j].Record })
	rep.Problems = append(rep.Problems, records...)
	return rep, nil
}

// Quarantine sets aside the problems found by Verify: corrupt artifacts move
// to quarantine/ (for inspection; GC deletes them) and the records that point
// to them are removed, so the next run recomputes those stages. It takes
// cache.lock exclusively and fails with ErrBusy while a run holds it.
func (s *Store) Quarantine(rep VerifyReport) error {
	l, err := s.Exclude()
	if err != nil {
		return err
	}
	defer l.Unlock()
	for _, p := range rep.Problems {
		for _, k := range p.Keys {
			if err := os.Remove(s.recordPath(k)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if p.Record != "" {
			if err := os.Remove(p.Record); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if p.Digest == "" {
			continue
		}
		if err := s.quarantineObject(p.Digest); err != nil {
			return err
		}
	}
	return nil
}
