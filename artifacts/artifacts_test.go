package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// goldenTree's manifest digest was computed independently with Python's
// hashlib (see the commit that added this test):
//
//	lines = ["%s %d %s\n" % (sha256(d).hexdigest(), len(d), json.dumps(p)) for p, d in sorted(files)]
//	sha256("".join(lines))
var goldenTree = map[string][]byte{
	"a.txt":          []byte("hello\n"),
	"sub/b.bin":      seq256(),
	"sub/deeper/c":   {},
	"with space.txt": bytes.Repeat([]byte("x"), 1000),
}

const (
	goldenDigest     = "935cdb511d08474afa13803e5ea6d64348bd07650dc06c294bfdc19517f32a3d"
	goldenFileDigest = "affcc44fd0cfc1880819f0ec93f16d35fabfc7ea88ff71873edfd14c48d428ed" // "hello\n" as path "."
)

func seq256() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHashDirGolden(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, goldenTree)
	// log.txt at the top is excluded; an empty directory is not recorded.
	writeTree(t, dir, map[string][]byte{"log.txt": []byte("anything")})
	os.Mkdir(filepath.Join(dir, "empty"), 0o777)
	m, err := HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Digest(); got != goldenDigest {
		t.Errorf("digest %s, want %s\nmanifest:\n%s", got, goldenDigest, m.Bytes())
	}
	if len(m) != 4 || m.Size() != 6+256+0+1000 {
		t.Errorf("manifest has %d files of %d bytes, want 4 of 1262", len(m), m.Size())
	}
	back, err := ParseManifest(m.Bytes())
	if err != nil || back.Digest() != goldenDigest {
		t.Errorf("ParseManifest round trip: %v, digest %s", err, back.Digest())
	}
	// A log.txt below the top level is an ordinary file.
	writeTree(t, dir, map[string][]byte{"sub/log.txt": []byte("x")})
	m2, _ := HashDir(dir)
	if m2.Digest() == goldenDigest {
		t.Error("sub/log.txt did not change the digest")
	}
}

func TestHashDirParallelSameDigest(t *testing.T) {
	// Over parallelBytes the files are hashed concurrently; the manifest must
	// not depend on it.
	dir := t.TempDir()
	big := bytes.Repeat([]byte{7}, parallelBytes)
	files := map[string][]byte{"a": big, "b": big[:100], "c/d": big[:12345]}
	writeTree(t, dir, files)
	m, err := HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m {
		want := sha256.Sum256(files[e.Path])
		if e.Sum != want {
			t.Errorf("%s: sum %x, want %x", e.Path, e.Sum[:4], want[:4])
		}
	}
}

func TestHashDirRejectsSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a": []byte("a")})
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := HashDir(dir)
	if err == nil || !strings.Contains(err.Error(), "link is a symlink") {
		t.Fatalf("err = %v, want it to name the symlink", err)
	}
}

func TestHashFileMemoryFlat(t *testing.T) {
	// Streaming: hashing a 64 MiB file allocates no more than hashing a
	// small one, give or take the fixed buffer.
	dir := t.TempDir()
	p := filepath.Join(dir, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1, 2, 3, 4}, 1<<18) // 1 MiB
	want := sha256.New()
	for i := 0; i < 64; i++ {
		f.Write(chunk)
		want.Write(chunk)
	}
	f.Close()
	HashFile(p) // warm the buffer pool
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum, size, err := HashFile(p)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if size != 64<<20 || hex.EncodeToString(sum[:]) != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("HashFile = %x, %d", sum[:4], size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*copyBufSize {
		t.Errorf("hashing 64 MiB allocated %d bytes; want it bounded by the buffer (%d)", alloc, copyBufSize)
	}
}

func TestPathHasher(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"data/hello": []byte("hello\n"), "data/other": []byte("x")})
	var h PathHasher
	// A file's digest depends on its content only, not its name or spelling.
	d1, err := h.Digest(filepath.Join(dir, "data/hello"))
	if err != nil {
		t.Fatal(err)
	}
	if d1 != goldenFileDigest {
		t.Errorf("file digest %s, want %s", d1, goldenFileDigest)
	}
	d2, _ := h.Digest(filepath.Join(dir, "data", "..", "data", "hello"))
	if d2 != d1 {
		t.Errorf("two spellings of one file: %s vs %s", d1, d2)
	}
	dd, err := h.Digest(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	// A changed file changes the digest even within the memo's lifetime
	// (a new size or mtime invalidates it).
	p := filepath.Join(dir, "data/other")
	os.WriteFile(p, []byte("y"), 0o666)
	os.Chtimes(p, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	dd2, _ := h.Digest(filepath.Join(dir, "data"))
	if dd2 == dd {
		t.Error("directory digest did not change after a file changed")
	}
	if _, err := h.Digest(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path: no error")
	}
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func key(s string) Key {
	sum := sha256.Sum256([]byte(s))
	return Key(hex.EncodeToString(sum[:]))
}

// putTree creates an artifact with files in a temp dir of s and puts it under k.
func putTree(t testing.TB, s *Store, k Key, files map[string][]byte) Record {
	t.Helper()
	tmp, err := s.TempDir(k)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	writeTree(t, out, files)
	r, err := s.Put(k, out, PutInfo{Stage: "s", Kind: "k"})
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(tmp)
	return r
}

func TestPutGet(t *testing.T) {
	s := newStore(t)
	k := key("a")
	if _, ok, err := s.Get(k); ok || err != nil {
		t.Fatalf("Get on an empty store = %v, %v", ok, err)
	}
	files := map[string][]byte{}
	for p, d := range goldenTree {
		files[p] = d
	}
	files["log.txt"] = []byte("first log\n")
	r := putTree(t, s, k, files)
	if r.Digest != goldenDigest || r.Files != 4 {
		t.Fatalf("Put = %+v, want digest %s and 4 files", r, goldenDigest)
	}
	got, ok, err := s.Get(k)
	if !ok || err != nil || got.Digest != goldenDigest {
		t.Fatalf("Get = %+v, %v, %v", got, ok, err)
	}
	data, err := os.ReadFile(filepath.Join(s.ObjectDir(r.Digest), "sub/b.bin"))
	if err != nil || !bytes.Equal(data, seq256()) {
		t.Fatalf("stored file: %v", err)
	}
	info, _ := os.Stat(filepath.Join(s.ObjectDir(r.Digest), "a.txt"))
	if info.Mode().Perm()&0o222 != 0 {
		t.Errorf("stored file mode %v, want read-only", info.Mode())
	}
	// Same content under another key: stored once, the first log kept.
	files["log.txt"] = []byte("second log\n")
	r2 := putTree(t, s, key("b"), files)
	if r2.Digest != r.Digest {
		t.Fatalf("same content, digests %s and %s", r.Digest, r2.Digest)
	}
	log, _ := os.ReadFile(filepath.Join(s.ObjectDir(r.Digest), LogName))
	if string(log) != "first log\n" {
		t.Errorf("log.txt = %q, want the first producer's", log)
	}
	// A record whose artifact vanished is a miss, not a hit.
	RemoveTree(s.ObjectDir(r.Digest))
	if _, ok, _ := s.Get(k); ok {
		t.Error("Get found a record whose artifact is gone")
	}
}

func TestGetCorruptRecord(t *testing.T) {
	s := newStore(t)
	k := key("a")
	putTree(t, s, k, map[string][]byte{"f": []byte("1")})
	os.WriteFile(s.recordPath(k), []byte("{not json"), 0o666)
	if _, _, err := s.Get(k); err == nil || !strings.Contains(err.Error(), s.recordPath(k)) {
		t.Errorf("err = %v, want it to name the record file", err)
	}
}

func TestCleanTemp(t *testing.T) {
	s := newStore(t)
	k := key("a")
	stale, _ := s.TempDir(k)
	writeTree(t, stale, map[string][]byte{"out/half": []byte("x")})
	other, _ := s.TempDir(key("b"))
	mine, _ := s.TempDir(k)
	if err := s.CleanTemp(k, mine); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{stale: false, other: true, mine: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestLockKeyExcludes(t *testing.T) {
	defer func(d time.Duration) { waitNotice = d }(waitNotice)
	waitNotice = 0
	s := newStore(t)
	k := key("a")
	ctx := context.Background()
	l1, err := s.LockKey(ctx, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.TryLockKey(k); ok {
		t.Fatal("TryLockKey succeeded while the lock is held")
	}
	var (
		mu    sync.Mutex
		order []string
	)
	waited := make(chan struct{})
	done := make(chan struct{})
	go func() {
		l2, err := s.LockKey(ctx, k, func() { close(waited) })
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		order = append(order, "second")
		mu.Unlock()
		l2.Unlock()
		close(done)
	}()
	<-waited
	mu.Lock()
	order = append(order, "first unlocks")
	mu.Unlock()
	l1.Unlock()
	<-done
	if strings.Join(order, ",") != "first unlocks,second" {
		t.Errorf("order %v", order)
	}
	// A cancelled wait returns the context's error.
	l3, _ := s.LockKey(ctx, k, nil)
	defer l3.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.LockKey(cctx, k, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled LockKey: err = %v", err)
	}
}

func TestGC(t *testing.T) {
	s := newStore(t)
	ka, kb, kc := key("a"), key("b"), key("c")
	ra := putTree(t, s, ka, map[string][]byte{"f": []byte("A")})
	rb := putTree(t, s, kb, map[string][]byte{"f": []byte("B")})
	putTree(t, s, kc, map[string][]byte{"f": []byte("A")}) // shares A's object
	s.WriteDesc(ka, []byte("{}"))
	s.WriteDesc(kb, []byte("{}"))
	stale, _ := s.TempDir(key("dead"))
	os.WriteFile(s.FailedLog(kb), []byte("boom"), 0o666)

	if _, err := s.GC(GCPolicy{}); err == nil {
		t.Error("GC without a scope did not refuse")
	}
	// Busy while a run shares the cache.
	run, _ := s.Share(context.Background(), nil)
	if _, err := s.GC(GCPolicy{Keep: map[Key]bool{}}); !errors.Is(err, ErrBusy) {
		t.Errorf("GC during a run: err = %v, want ErrBusy", err)
	}
	run.Unlock()

	dry, err := s.GC(GCPolicy{Keep: map[Key]bool{ka: true}, DryRun: true})
	if err != nil || dry.Records != 2 || dry.Objects != 1 {
		t.Fatalf("dry run = %+v, %v; want 2 records and 1 object", dry, err)
	}
	if _, ok, _ := s.Get(kb); !ok {
		t.Fatal("dry run removed a record")
	}
	// Keep a: b's and c's records go, B's object goes, A's object stays.
	rep, err := s.GC(GCPolicy{Keep: map[Key]bool{ka: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 2 || rep.Objects != 1 || rep.KeptRecords != 1 || rep.KeptObjects != 1 || rep.Temp != 1 || rep.Failed != 1 {
		t.Errorf("report %+v", rep)
	}
	if _, ok, _ := s.Get(ka); !ok {
		t.Error("kept record gone")
	}
	if _, ok, _ := s.Get(kc); ok {
		t.Error("record c survived")
	}
	if _, err := os.Stat(s.ObjectDir(rb.Digest)); err == nil {
		t.Error("unreferenced object survived")
	}
	if _, err := os.Stat(s.ObjectDir(ra.Digest)); err != nil {
		t.Error("referenced object removed")
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale temp dir survived")
	}
	if !s.HasDesc(ka) || s.HasDesc(kb) {
		t.Errorf("descriptions: a %v (want kept), b %v (want removed)", s.HasDesc(ka), s.HasDesc(kb))
	}

	// Age: an old record goes unless a recent spec index lists its key.
	kd := key("d")
	putTree(t, s, kd, map[string][]byte{"f": []byte("D")})
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(s.recordPath(ka), old, old)
	os.Chtimes(s.recordPath(kd), old, old)
	s.WriteIndex("recent", Index{"x": {Key: kd}})
	rep, err = s.GC(GCPolicy{OlderThan: 24 * time.Hour})
	if err != nil || rep.Records != 1 {
		t.Errorf("age GC = %+v, %v", rep, err)
	}
	if _, ok, _ := s.Get(ka); ok {
		t.Error("old record survived")
	}
	if _, ok, _ := s.Get(kd); !ok {
		t.Error("a record listed in a recent index was removed")
	}
}

func TestGetRefreshesUseTime(t *testing.T) {
	s := newStore(t)
	k := key("a")
	putTree(t, s, k, map[string][]byte{"f": []byte("A")})
	// Pretend the record is 3 days old: a hit makes it recent again.
	s.now = func() time.Time { return time.Now().Add(72 * time.Hour) }
	old := time.Now().Add(-time.Hour)
	os.Chtimes(s.recordPath(k), old, old)
	if _, ok, _ := s.Get(k); !ok {
		t.Fatal("miss")
	}
	info, _ := os.Stat(s.recordPath(k))
	if s.now().Sub(info.ModTime()) > time.Minute {
		t.Errorf("record time %v not refreshed", info.ModTime())
	}
}

func TestVerifyAndQuarantine(t *testing.T) {
	s := newStore(t)
	ka, kb := key("a"), key("b")
	ra := putTree(t, s, ka, map[string][]byte{"f": []byte("A"), "g": []byte("G")})
	putTree(t, s, kb, map[string][]byte{"f": []byte("B")})
	rep, err := s.Verify(nil)
	if err != nil || rep.Objects != 2 || len(rep.Problems) != 0 {
		t.Fatalf("clean store: %+v, %v", rep, err)
	}
	// Corrupt one file of A, and editing the log changes nothing.
	p := filepath.Join(s.ObjectDir(ra.Digest), "g")
	os.Chmod(p, 0o644)
	os.WriteFile(p, []byte("not G"), 0o644)
	os.WriteFile(filepath.Join(s.ObjectDir(ra.Digest), LogName), []byte("edited"), 0o644)
	rep, err = s.Verify(nil)
	if err != nil || len(rep.Problems) != 1 {
		t.Fatalf("Verify = %+v, %v; want one problem", rep, err)
	}
	pr := rep.Problems[0]
	if pr.Digest != ra.Digest || len(pr.Keys) != 1 || pr.Keys[0] != ka ||
		len(pr.Details) != 1 || !strings.HasPrefix(pr.Details[0], "g: size 5, want 1") {
		t.Errorf("problem %+v", pr)
	}
	if err := s.Quarantine(rep); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(ka); ok {
		t.Error("corrupt entry still served")
	}
	if _, ok, _ := s.Get(kb); !ok {
		t.Error("intact entry lost")
	}
	rep, _ = s.Verify(nil)
	if len(rep.Problems) != 0 {
		t.Errorf("after quarantine: %+v", rep.Problems)
	}
	st, _ := s.Status()
	if st.Quarantined != 1 || st.Records != 1 || st.Objects != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestVerifyDanglingRecord(t *testing.T) {
	s := newStore(t)
	k := key("a")
	r := putTree(t, s, k, map[string][]byte{"f": []byte("A")})
	RemoveTree(s.ObjectDir(r.Digest))
	rep, err := s.Verify(nil)
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Details[0], "missing") {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestStatusHeldLocks(t *testing.T) {
	s := newStore(t)
	k := key("a")
	l, _ := s.LockKey(context.Background(), k, nil)
	st, err := s.Status()
	if err != nil || len(st.Held) != 1 || st.Held[0] != k || st.InUse {
		t.Errorf("status %+v, %v", st, err)
	}
	l.Unlock()
	run, _ := s.Share(context.Background(), nil)
	defer run.Unlock()
	st, _ = s.Status()
	if len(st.Held) != 0 || !st.InUse {
		t.Errorf("status %+v", st)
	}
}

func TestUpdateView(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results", "spec")
	if err := UpdateView(dir, map[string]string{"a": "/x/a", "b[i=1]": "/x/b"}); err != nil {
		t.Fatal(err)
	}
	infoA, _ := os.Lstat(filepath.Join(dir, "a"))
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o666)
	if err := UpdateView(dir, map[string]string{"a": "/x/a", "c": "/x/c"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "a c notes.txt" {
		t.Errorf("view holds %v", names)
	}
	if tgt, _ := os.Readlink(filepath.Join(dir, "c")); tgt != "/x/c" {
		t.Errorf("c → %s", tgt)
	}
	infoA2, _ := os.Lstat(filepath.Join(dir, "a"))
	if !os.SameFile(infoA, infoA2) {
		t.Error("an unchanged link was rewritten")
	}
	if err := UpdateView(dir, map[string]string{"notes.txt": "/x"}); err == nil {
		t.Error("replacing a regular file: no error")
	}
}

func TestViewName(t *testing.T) {
	for id, want := range map[string]string{
		"train":                       "train",
		"spec[layer=conv1.weight]":    "spec[layer=conv1.weight]",
		"fetch[path=a/b%c]":           "fetch[path=a%2Fb%25c]",
		strings.Repeat("x", 300)[:10]: "xxxxxxxxxx",
	} {
		if got := ViewName(id); got != want {
			t.Errorf("ViewName(%q) = %q, want %q", id, got, want)
		}
	}
	long := ViewName(strings.Repeat("y", 300))
	if len(long) != maxViewName || !strings.Contains(long, "~") {
		t.Errorf("long name %q (%d bytes)", long, len(long))
	}
}

// TestRunDirLeftOutOfDigest: log.txt and everything under run/ at the top of
// an artifact describe the run, not the result; a run/ deeper down, or a
// file merely named run, is results.
func TestRunDirLeftOutOfDigest(t *testing.T) {
	base := map[string][]byte{"a.txt": []byte("hello\n")}
	digest := func(extra map[string][]byte) Digest {
		dir := t.TempDir()
		writeTree(t, dir, base)
		writeTree(t, dir, extra)
		m, err := HashDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return m.Digest()
	}
	want := digest(nil)
	if got := digest(map[string][]byte{"log.txt": []byte("x"), "run/timings.csv": []byte("1.5\n"), "run/deep/run.json": []byte("{}")}); got != want {
		t.Errorf("run information changed the digest")
	}
	if got := digest(map[string][]byte{"sub/run/x": []byte("1")}); got == want {
		t.Error("a nested run/ directory was left out")
	}
	for _, rel := range []string{"log.txt", "run", "run/x", "run/a/b"} {
		if !Undigested(rel) {
			t.Errorf("Undigested(%q) = false", rel)
		}
	}
	for _, rel := range []string{"runs/x", "a/run/x", "a/log.txt", "running.csv"} {
		if Undigested(rel) {
			t.Errorf("Undigested(%q) = true", rel)
		}
	}
}

// TestCheckObject: the cheap check on a hit finds missing, resized and
// rewritten files, renews its stamp when only the time changed, and
// re-hashes an object that has no stamp (a cache from before stamps).
func TestCheckObject(t *testing.T) {
	s := newStore(t)
	r := putTree(t, s, key("a"), goldenTree)
	obj := s.ObjectDir(r.Digest)
	if err := s.CheckObject(r.Digest); err != nil {
		t.Fatalf("fresh object: %v", err)
	}
	p := filepath.Join(obj, "a.txt")
	os.Chmod(obj, 0o755)
	os.Chmod(p, 0o644)
	// Touched, same content: intact, and the stamp is renewed.
	later := time.Now().Add(time.Minute)
	os.Chtimes(p, later, later)
	if err := s.CheckObject(r.Digest); err != nil {
		t.Errorf("touched file: %v", err)
	}
	if st := s.readStamp(r.Digest)["a.txt"]; st.mtime != later.UnixNano() {
		t.Errorf("stamp not renewed: %+v", st)
	}
	// Rewritten with the same size: damaged, and Get says so.
	os.WriteFile(p, []byte("HELLO\n"), 0o644)
	var dmg *DamagedError
	if err := s.CheckObject(r.Digest); !errors.As(err, &dmg) || !strings.Contains(err.Error(), "a.txt: content differs") {
		t.Errorf("rewritten file: %v", err)
	}
	if rec, ok, err := s.Get(key("a")); ok || !errors.As(err, &dmg) || rec.Digest != r.Digest {
		t.Errorf("Get of a damaged object = %v, %v", ok, err)
	}
	os.WriteFile(p, []byte("hello\n"), 0o644)
	os.Remove(filepath.Join(obj, "sub", "b.bin"))
	os.Truncate(filepath.Join(obj, "with space.txt"), 3)
	err := s.CheckObject(r.Digest)
	if !errors.As(err, &dmg) || len(dmg.Details) != 2 || dmg.Details[0] != "sub/b.bin: missing" || dmg.Details[1] != "with space.txt: size 3, want 1000" {
		t.Errorf("missing and truncated: %v", err)
	}
	// No stamp: the object is re-hashed and a stamp written.
	s2 := newStore(t)
	r2 := putTree(t, s2, key("b"), map[string][]byte{"f": []byte("1")})
	os.Remove(s2.stampPath(r2.Digest))
	if err := s2.CheckObject(r2.Digest); err != nil || s2.readStamp(r2.Digest) == nil {
		t.Errorf("object without a stamp: %v, stamp %v", err, s2.readStamp(r2.Digest))
	}
}

// TestPutReplacesDamagedObject: putting content whose object is stored but
// damaged moves the damaged copy to quarantine/ and stores the new one; an
// intact one is kept, with its log.
func TestPutReplacesDamagedObject(t *testing.T) {
	s := newStore(t)
	files := map[string][]byte{"f.bin": seq256(), "log.txt": []byte("first\n")}
	r := putTree(t, s, key("a"), files)
	p := filepath.Join(s.ObjectDir(r.Digest), "f.bin")
	info, _ := os.Stat(p)
	os.Chmod(filepath.Dir(p), 0o755)
	os.Chmod(p, 0o644)
	data := seq256()
	data[7] = 0
	os.WriteFile(p, data, 0o644)
	os.Chtimes(p, info.ModTime(), info.ModTime()) // invisible to the cheap check
	files["log.txt"] = []byte("second\n")
	if r2 := putTree(t, s, key("a"), files); r2.Digest != r.Digest {
		t.Fatalf("digest %s, want %s", r2.Digest, r.Digest)
	}
	if diff, err := s.VerifyObject(r.Digest); err != nil || len(diff) != 0 {
		t.Errorf("after the put: %v %v", diff, err)
	}
	if log, _ := os.ReadFile(filepath.Join(s.ObjectDir(r.Digest), LogName)); string(log) != "second\n" {
		t.Errorf("log %q: the replacement's log belongs with it", log)
	}
	q, _ := os.ReadDir(filepath.Join(s.Dir(), "quarantine"))
	if len(q) != 3 { // the directory, its manifest and its stamp
		t.Errorf("quarantine holds %d entries, want 3", len(q))
	}
	files["log.txt"] = []byte("third\n")
	putTree(t, s, key("b"), files)
	if log, _ := os.ReadFile(filepath.Join(s.ObjectDir(r.Digest), LogName)); string(log) != "second\n" {
		t.Errorf("an intact object was replaced: log %q", log)
	}
}

// TestPutDiskFull fails each step of a put as a full disk would: Put returns
// the error, no record points at anything incomplete, and once space is back
// the same put succeeds and Verify finds the store clean.
func TestPutDiskFull(t *testing.T) {
	for _, at := range []string{"seal", "manifest", "rename", "stamp", "record"} {
		t.Run(at, func(t *testing.T) {
			s := newStore(t)
			k := key("a")
			faultAt = func(step string) error {
				if step == at {
					return &fs.PathError{Op: "write", Path: step, Err: syscall.ENOSPC}
				}
				return nil
			}
			defer func() { faultAt = nil }()
			tmp, _ := s.TempDir(k)
			out := filepath.Join(tmp, "out")
			writeTree(t, out, goldenTree)
			if _, err := s.Put(k, out, PutInfo{}); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Put = %v, want ENOSPC", err)
			}
			if _, ok, err := s.Get(k); ok || err != nil {
				t.Errorf("Get after a failed put = %v, %v", ok, err)
			}
			RemoveTree(tmp) // as the runner does
			faultAt = nil
			if r := putTree(t, s, k, goldenTree); r.Digest != goldenDigest {
				t.Errorf("put after the failure: %s", r.Digest)
			}
			if rep, err := s.Verify(nil); err != nil || len(rep.Problems) != 0 || rep.Objects != 1 {
				t.Errorf("verify: %+v %v", rep, err)
			}
		})
	}
}
