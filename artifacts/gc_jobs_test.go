package artifacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A queued cluster job reads its key's description when it starts: GC keeps
// the description while slurm/<key>.json records the job.
func TestGCKeepsDescriptionOfQueuedJob(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := Key(strings.Repeat("ab", 32))
	if err := s.WriteDesc(k, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(s.Dir(), "slurm", string(k)+".json")
	if err := os.MkdirAll(filepath.Dir(job), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(job, []byte("{}\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(GCPolicy{Keep: map[Key]bool{}}); err != nil {
		t.Fatal(err)
	}
	if !s.HasDesc(k) {
		t.Fatal("GC removed the description of a key with a queued job")
	}
	os.Remove(job)
	if _, err := s.GC(GCPolicy{Keep: map[Key]bool{}}); err != nil {
		t.Fatal(err)
	}
	if s.HasDesc(k) {
		t.Error("GC kept the description once the job record was gone")
	}
}
