package download

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// payload is 100 kB of bytes that differ from position to position.
var payload = func() []byte {
	b := make([]byte, 100_000)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}()

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// server serves payload with range support; misbehave, when set, may take
// over a request (returning true) to simulate a fault.
type server struct {
	mu        sync.Mutex
	requests  []string // the Range header of each request ("" for none)
	misbehave func(n int, w http.ResponseWriter, r *http.Request) bool
	*httptest.Server
}

func newServer(t *testing.T, misbehave func(n int, w http.ResponseWriter, r *http.Request) bool) *server {
	s := &server{misbehave: misbehave}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Header.Get("Range"))
		n := len(s.requests)
		s.mu.Unlock()
		if s.misbehave != nil && s.misbehave(n, w, r) {
			return
		}
		http.ServeContent(w, r, "f.bin", time.Time{}, bytes.NewReader(payload))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

type recorder struct {
	starts []string
	totals []int
	bytes  int
}

func (r *recorder) Start(what string, total int) {
	r.starts = append(r.starts, what)
	r.totals = append(r.totals, total)
}
func (r *recorder) Advance(n int) { r.bytes += n }
func (r *recorder) Finish()       {}

func client(t *testing.T) (*Client, *bytes.Buffer) {
	var log bytes.Buffer
	return &Client{Dir: t.TempDir(), Backoff: time.Millisecond, DialTimeout: 2 * time.Second, Log: &log}, &log
}

func file(urls ...string) File {
	return File{Name: "f.bin", URLs: urls, MD5: md5hex(payload)}
}

func checkDone(t *testing.T, c *Client, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, payload) {
		t.Fatalf("downloaded %d bytes that differ from the %d served", len(b), len(payload))
	}
	if want := filepath.Join(c.Dir, md5hex(payload)+"-f.bin"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	if parts, _ := filepath.Glob(filepath.Join(c.Dir, "*.part")); len(parts) != 0 {
		t.Errorf("partial files left: %v", parts)
	}
}

func TestFetchAndReuse(t *testing.T) {
	s := newServer(t, nil)
	c, _ := client(t)
	rec := &recorder{}
	c.Progress = rec
	path, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
	if len(rec.starts) != 1 || rec.starts[0] != "download f.bin" || rec.totals[0] != len(payload) || rec.bytes != len(payload) {
		t.Errorf("progress: starts %v totals %v bytes %d", rec.starts, rec.totals, rec.bytes)
	}
	// The complete file is reused with no network at all.
	s.Close()
	again, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	if err != nil || again != path {
		t.Errorf("second fetch: %v, %v; want the cached %s", again, err, path)
	}
}

func TestSHA256Checksum(t *testing.T) {
	s := newServer(t, nil)
	c, _ := client(t)
	sum := sha256.Sum256(payload)
	f := File{Name: "f.bin", URLs: []string{s.URL}, SHA256: hex.EncodeToString(sum[:])}
	path, err := c.Fetch(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != hex.EncodeToString(sum[:])+"-f.bin" {
		t.Errorf("path %s not keyed by the sha256", path)
	}
}

// A transfer that breaks halfway resumes with a range request.
func TestResumeAfterBrokenTransfer(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.WriteHeader(http.StatusOK)
		w.Write(payload[:40_000]) // then the handler returns: the connection drops
		return true
	})
	c, log := client(t)
	path, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
	if got := s.ranges(); len(got) != 2 || got[0] != "" || got[1] != "bytes=40000-" {
		t.Errorf("requests' Range headers %q, want [\"\" \"bytes=40000-\"]", got)
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("log %q does not mention the retry", log)
	}
}

// A partial file left by an earlier run is resumed, not restarted.
func TestResumeAcrossRuns(t *testing.T) {
	s := newServer(t, nil)
	c, _ := client(t)
	url := s.URL + "/f.bin"
	uh := sha256.Sum256([]byte(url))
	part := filepath.Join(c.Dir, hex.EncodeToString(uh[:8])+"-f.bin.part")
	os.WriteFile(part, payload[:12_345], 0o644)
	path, err := c.Fetch(context.Background(), file(url))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
	if got := s.ranges(); len(got) != 1 || got[0] != "bytes=12345-" {
		t.Errorf("Range headers %q, want [bytes=12345-]", got)
	}
}

// A server that ignores Range sends the whole file; the partial one is
// replaced, not appended to.
func TestServerIgnoringRange(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Write(payload)
		return true
	})
	c, _ := client(t)
	url := s.URL + "/f.bin"
	uh := sha256.Sum256([]byte(url))
	os.WriteFile(filepath.Join(c.Dir, hex.EncodeToString(uh[:8])+"-f.bin.part"), payload[:500], 0o644)
	path, err := c.Fetch(context.Background(), file(url))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
}

func TestChecksumMismatch(t *testing.T) {
	s := newServer(t, nil)
	c, _ := client(t)
	f := file(s.URL + "/f.bin")
	f.MD5 = strings.Repeat("0", 32)
	_, err := c.Fetch(context.Background(), f)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Got != md5hex(payload) || !strings.Contains(err.Error(), s.URL) {
		t.Fatalf("error %v, want a checksum error naming the URL and the md5 got", err)
	}
	if ents, _ := os.ReadDir(c.Dir); len(ents) > 1 { // only the lock file may stay
		t.Errorf("files left after a mismatch: %v", ents)
	}
}

func TestTransientThenSuccess(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	c, _ := client(t)
	path, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
	if n := len(s.ranges()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestGivesUpAfterAttempts(t *testing.T) {
	s := newServer(t, func(int, http.ResponseWriter, *http.Request) bool { return false })
	s.misbehave = func(n int, w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusBadGateway)
		return true
	}
	c, _ := client(t)
	c.Attempts = 3
	_, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), "502") {
		t.Errorf("error %v", err)
	}
	if n := len(s.ranges()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestNotFoundFallsBackToMirror(t *testing.T) {
	bad := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		http.NotFound(w, r)
		return true
	})
	good := newServer(t, nil)
	c, log := client(t)
	path, err := c.Fetch(context.Background(), file(bad.URL+"/f.bin", good.URL+"/f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
	if n := len(bad.ranges()); n != 1 {
		t.Errorf("404 retried: %d requests", n)
	}
	if !strings.Contains(log.String(), "404") || !strings.Contains(log.String(), "next mirror") {
		t.Errorf("log %q", log)
	}
}

// A stalled transfer is aborted after IdleTimeout and resumed.
func TestStalledTransfer(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload[:30_000])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall until the client gives up
		return true
	})
	c, _ := client(t)
	c.IdleTimeout = 200 * time.Millisecond
	path, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
	if got := s.ranges(); len(got) != 2 || got[1] != "bytes=30000-" {
		t.Errorf("Range headers %q", got)
	}
}

// With no server listening, Fetch fails at once: one line naming the URL,
// no retries.
func TestUnreachableFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	for _, url := range []string{
		"http://" + addr + "/f.bin",
		// TEST-NET-1 (RFC 5737) is never routed: a dial fails or times out.
		"http://192.0.2.1:81/f.bin",
	} {
		c, log := client(t)
		c.DialTimeout = 300 * time.Millisecond
		c.Backoff = time.Hour // a retry would hang the test
		_, err := c.Fetch(context.Background(), file(url))
		var ue *UnreachableError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: error %v, want UnreachableError", url, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "cannot reach "+url+": ") || strings.Contains(msg, "\n") {
			t.Errorf("message %q, want one line starting with the URL", msg)
		}
		if log.Len() != 0 {
			t.Errorf("%s: retried or fell back: %q", url, log)
		}
	}
}

func TestCancel(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload[:1000])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	})
	c, _ := client(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := c.Fetch(ctx, file(s.URL+"/f.bin")); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tt := range []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */1000", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, n, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (s != tt.start || n != tt.size)) {
			t.Errorf("%q: %d %d %v", tt.in, s, n, ok)
		}
	}
}

// A server announcing more than the published size fails that URL at once
// (no retry) and the next mirror is tried.
func TestPublishedSizeBounds(t *testing.T) {
	s := newServer(t, nil)
	good := newServer(t, nil)
	c, _ := client(t)
	f := file(s.URL+"/f.bin", good.URL+"/f.bin")
	f.Size = int64(len(payload)) - 1
	_, err := c.Fetch(context.Background(), f)
	var se *SizeError
	if !errors.As(err, &se) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "more than the published size (99999 bytes)") {
		t.Errorf("error %v, want one line with a SizeError", err)
	}
	if n, m := len(s.ranges()), len(good.ranges()); n != 1 || m != 1 {
		t.Errorf("%d and %d requests, want 1 to each mirror", n, m)
	}
	f.Size = int64(len(payload))
	path, err := c.Fetch(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
}

// A server that announces no size is cut off at Client.MaxBytes, and the
// partial file is removed.
func TestUnknownSizeBound(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Write(payload[:50_000]) // no Content-Length: chunked
		w.(http.Flusher).Flush()
		w.Write(payload[50_000:])
		return true
	})
	c, _ := client(t)
	c.MaxBytes = 60_000
	_, err := c.Fetch(context.Background(), file(s.URL+"/f.bin"))
	var se *SizeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "sends more than the bound for a file of unknown size (60000 bytes)") {
		t.Errorf("error %v, want a SizeError", err)
	}
	if n := len(s.ranges()); n != 1 {
		t.Errorf("%d requests, want 1 (a size error is not transient)", n)
	}
	if parts, _ := filepath.Glob(filepath.Join(c.Dir, "*.part")); len(parts) != 0 {
		t.Errorf("partial files left: %v", parts)
	}
}

// A full disk (writing to /dev/full gives ENOSPC) is a DiskError: not
// retried, and no other mirror is tried.
func TestDiskFullIsPermanent(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	s := newServer(t, nil)
	other := newServer(t, nil)
	c, _ := client(t)
	if err := os.Symlink("/dev/full", partPath(c.Dir, s.URL+"/f.bin", "f.bin")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Fetch(context.Background(), file(s.URL+"/f.bin", other.URL+"/f.bin"))
	var de *DiskError
	if !errors.As(err, &de) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v, want a DiskError wrapping ENOSPC", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "no space left on device") {
		t.Errorf("message %q", msg)
	}
	if n, m := len(s.ranges()), len(other.ranges()); n != 1 || m != 0 {
		t.Errorf("%d requests to the first mirror and %d to the second, want 1 and 0", n, m)
	}
}

// A process waiting for another's download lock gives up when its context
// is cancelled (Ctrl-C), and gets the lock once it is released.
func TestLockWaitHonoursContext(t *testing.T) {
	s := newServer(t, nil)
	c, log := client(t)
	url := s.URL + "/f.bin"
	unlock, err := lock(context.Background(), partPath(c.Dir, url, "f.bin")+".lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := c.Fetch(ctx, file(url)); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if !strings.Contains(log.String(), "waiting for another process") {
		t.Errorf("log %q, want it to say it waits", log)
	}
	if n := len(s.ranges()); n != 0 {
		t.Errorf("%d requests while another process held the lock", n)
	}
	time.AfterFunc(100*time.Millisecond, unlock)
	path, err := c.Fetch(context.Background(), file(url))
	if err != nil {
		t.Fatal(err)
	}
	checkDone(t, c, path)
}

// Errors of several mirrors are joined on one line.
func TestMirrorErrorsOneLine(t *testing.T) {
	bad := func(code int) *server {
		return newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "no", code)
			return true
		})
	}
	a, b := bad(http.StatusNotFound), bad(http.StatusForbidden)
	c, _ := client(t)
	_, err := c.Fetch(context.Background(), file(a.URL+"/f.bin", b.URL+"/f.bin"))
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "403") {
		t.Errorf("error %q, want one line naming both failures", err)
	}
}
