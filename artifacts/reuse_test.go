package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// TestReuseIndex: runners adding to one reuse group at once lose no entry,
// an entry of the same key is replaced, and GC drops the entries of
// removed records.
func TestReuseIndex(t *testing.T) {
	s := newStore(t)
	group := string(key("group"))
	if s.HasReuse(group) {
		t.Fatal("a new store has a reuse index")
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddReuse(context.Background(), group, ReuseEntry{Key: key(fmt.Sprint(i)), Params: map[string]any{"epochs": i}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := s.AddReuse(context.Background(), group, ReuseEntry{Key: key("3"), Params: map[string]any{"epochs": 30}}); err != nil {
		t.Fatal(err)
	}
	entries, err := s.ReadReuse(group)
	if err != nil || len(entries) != 12 || !s.HasReuse(group) {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	last := entries[len(entries)-1]
	if last.Key != key("3") || last.Params["epochs"] != json.Number("30") {
		t.Errorf("re-added entry: %+v", last)
	}
	// Records exist for keys 0 and 1 only: GC keeps their entries.
	putTree(t, s, key("0"), map[string][]byte{"a": []byte("0")})
	putTree(t, s, key("1"), map[string][]byte{"a": []byte("1")})
	if _, err := s.GC(GCPolicy{Keep: map[Key]bool{key("0"): true, key("1"): true}}); err != nil {
		t.Fatal(err)
	}
	// The concurrent writers appended in any order: compare as a set.
	entries, _ = s.ReadReuse(group)
	kept := map[Key]bool{}
	for _, e := range entries {
		kept[e.Key] = true
	}
	if len(entries) != 2 || !kept[key("0")] || !kept[key("1")] {
		t.Errorf("after gc: %+v", entries)
	}
	s.GC(GCPolicy{Keep: map[Key]bool{}})
	if s.HasReuse(group) {
		t.Error("an index with no record left is kept")
	}
}
