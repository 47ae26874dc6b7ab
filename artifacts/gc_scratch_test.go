package artifacts

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestGCScratch: a scratch dir whose key is stored is stale and goes; one
// of an unfinished key follows the policy by its age.
func TestGCScratch(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stored := Key(hexKey('a'))
	pending := Key(hexKey('b'))
	out := filepath.Join(t.TempDir(), "out")
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(out, "x"), []byte("x"), 0o644)
	if _, err := s.Put(stored, out, PutInfo{Stage: "s"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{stored, pending} {
		d, err := s.Scratch(k)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "state"), []byte("1"), 0o644)
	}
	st, _ := s.Status()
	if st.Scratch != 2 {
		t.Errorf("status: %d scratch dirs, want 2", st.Scratch)
	}
	rep, err := s.GC(GCPolicy{OlderThan: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scratch != 1 {
		t.Errorf("gc removed %d scratch dirs, want 1 (the stored key's)", rep.Scratch)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "scratch", string(pending))); err != nil {
		t.Errorf("the pending key's recent scratch dir went: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "scratch", string(stored))); err == nil {
		t.Error("the stored key's scratch dir stayed")
	}
}

func hexKey(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
