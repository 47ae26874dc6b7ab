// Package download fetches published files over HTTP into a local directory:
// it resumes partial downloads with range requests, retries transient
// failures with backoff, tries mirrors in order, verifies the published
// checksum before a file is used, and fails at once when no network is there.
//
// Files in Client.Dir:
//
//	<url-hash>-<name>.part   a partial download from one URL (kept across runs, for resuming)
//	<checksum>-<name>        a complete, verified file (reused without any network access)
//
// where <url-hash> is the first 16 hex digits of the SHA-256 of the URL and
// <checksum> the file's published MD5 (or SHA-256). Several processes may use
// one directory: a lock file per partial download keeps them from writing the
// same file at once (flock on Unix, released by the kernel if a process dies),
// and complete files appear by rename only after their checksum matched. The
// directory must be on a local file system for the locks to hold; a process
// waiting for another's lock gives up when its context is cancelled.
//
// A download never grows past the file's published size (File.Size), or a
// generic bound (Client.MaxBytes) where none is published; a server that
// announces or sends more fails that URL at once. Failing to write into the
// directory (a full disk, a quota, a read-only file system) is a DiskError,
// which is neither retried nor tried on another mirror.
package download

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/internal/bounded"
)

// File is one published file.
type File struct {
	// Name is the file name, e.g. "train-images-idx3-ubyte.gz".
	Name string
	// URLs are the addresses to try, in order (mirrors of one file).
	URLs []string
	// MD5 and SHA256 are published checksums in hex; at least one is needed.
	MD5, SHA256 string
	// Size is the published size in bytes; 0 when unknown (then
	// Client.MaxBytes bounds the download).
	Size int64
}

func (f File) checksum() (algo, want string, h hash.Hash) {
	if f.SHA256 != "" {
		return "sha256", strings.ToLower(f.SHA256), sha256.New()
	}
	return "md5", strings.ToLower(f.MD5), md5.New()
}

// Progress receives download progress in bytes. stage.Progress satisfies it.
type Progress interface {
	Start(what string, total int)
	Advance(n int)
	Finish()
}

// Client downloads files into Dir. The zero value of every field but Dir
// selects a default.
type Client struct {
	// Dir holds partial and complete downloads. Required.
	Dir string
	// HTTP is the client used; nil means one with DialTimeout, proxy
	// settings from the environment, and no overall time limit (files are
	// large; a stalled transfer is caught by IdleTimeout instead).
	HTTP *http.Client
	// DialTimeout bounds connecting to a server (default 15 s). A server
	// that cannot be reached fails the download at once, without retries.
	DialTimeout time.Duration
	// IdleTimeout aborts an attempt that receives no byte for this long
	// (default 60 s); the next attempt resumes where it stopped.
	IdleTimeout time.Duration
	// Attempts is the number of tries per URL for transient failures
	// (broken transfers, HTTP 5xx and 429), default 4.
	Attempts int
	// Backoff is the wait before the second try, doubled for each further
	// one (default 1 s).
	Backoff time.Duration
	// Progress, if not nil, receives one unit per download.
	Progress Progress
	// Log, if not nil, receives one line per retry or fallback.
	Log io.Writer
	// MaxBytes bounds a download whose File.Size is unknown (default
	// DefaultMaxBytes).
	MaxBytes int64
}

// DefaultMaxBytes is the bound on a download of unknown size: 4 GiB, above
// every dataset file this project fetches (the largest, SVHN's
// train_32x32.mat, is 182 MB).
const DefaultMaxBytes = 4 << 30

// limit returns the most bytes a download of f may have.
func (c *Client) limit(f File) int64 {
	switch {
	case f.Size > 0:
		return f.Size
	case c.MaxBytes > 0:
		return c.MaxBytes
	}
	return DefaultMaxBytes
}

// UnreachableError reports that no server of a file could be contacted at
// all (DNS failure, connection refused, no route, connect timeout): most
// often, no network.
type UnreachableError struct {
	URL string
	Err error
}

// Error says which address could not be reached and why, on one line.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v", e.URL, shortNetErr(e.Err))
}

// Unwrap returns the network error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// DiskError reports a failure to write a download into Client.Dir: a full
// disk (ENOSPC), a quota (EDQUOT), a read-only file system (EROFS), missing
// permissions. It is permanent: neither retried nor tried on another mirror.
type DiskError struct {
	Path string
	Err  error
}

// Error names the file and the system's reason, on one line.
func (e *DiskError) Error() string { return fmt.Sprintf("writing %s: %v", e.Path, e.Err) }

// Unwrap returns the system error (e.g. syscall.ENOSPC).
func (e *DiskError) Unwrap() error { return e.Err }

// diskErr wraps err, from writing path, as a *DiskError (nil stays nil).
func diskErr(path string, err error) error {
	if err == nil {
		return nil
	}
	var de *DiskError
	if errors.As(err, &de) {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the DiskError already
	}
	return &DiskError{Path: path, Err: err}
}

// SizeError reports a server that announces or sends more bytes than the
// file may have: its published size, or Client.MaxBytes. It is permanent
// for that URL.
type SizeError struct {
	URL string
	// Got is the size the server announced, or -1 when it sent more than
	// Limit without announcing a size.
	Got   int64
	Limit int64
	// Published is set when Limit is the file's published size.
	Published bool
}

// Error says what the server sent and what was allowed, on one line.
func (e *SizeError) Error() string {
	what := "the bound for a file of unknown size"
	if e.Published {
		what = "the published size"
	}
	if e.Got < 0 {
		return fmt.Sprintf("%s: the server sends more than %s (%d bytes)", e.URL, what, e.Limit)
	}
	return fmt.Sprintf("%s: the server announces %d bytes, more than %s (%d bytes)", e.URL, e.Got, what, e.Limit)
}

// ChecksumError reports a complete download whose checksum differs from the
// published one.
type ChecksumError struct {
	URL, Algo, Got, Want string
}

// Error names the address and both checksums.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: %s checksum %s, want the published %s", e.URL, e.Algo, e.Got, e.Want)
}

// Fetch returns the path of a complete, verified copy of f in c.Dir,
// downloading it when it is not there yet.
func (c *Client) Fetch(ctx context.Context, f File) (string, error) {
	if c.Dir == "" {
		return "", errors.New("download: no directory given")
	}
	if f.MD5 == "" && f.SHA256 == "" {
		return "", fmt.Errorf("download %s: no published checksum to verify it with", f.Name)
	}
	if len(f.URLs) == 0 {
		return "", fmt.Errorf("download %s: no URL", f.Name)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", f.Name, diskErr(c.Dir, err))
	}
	algo, want, _ := f.checksum()
	final := filepath.Join(c.Dir, want+"-"+filepath.Base(f.Name))
	if _, err := os.Stat(final); err == nil {
		got, err := fileSum(final, f)
		if err == nil && got == want {
			return final, nil
		}
		c.logf("%s: cached copy fails its %s check, downloading again", final, algo)
		os.Remove(final)
	}
	var errs []error
	allUnreachable := true
	for _, u := range f.URLs {
		err := c.fetchURL(ctx, u, f, final)
		if err == nil {
			return final, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var de *DiskError
		if errors.As(err, &de) {
			return "", fmt.Errorf("download %s: %w", f.Name, err)
		}
		var ue *UnreachableError
		if !errors.As(err, &ue) {
			allUnreachable = false
		}
		errs = append(errs, err)
		if len(f.URLs) > 1 {
			c.logf("%v; trying the next mirror", err)
		}
	}
	if allUnreachable {
		return "", errs[0]
	}
	return "", fmt.Errorf("download %s: %w", f.Name, oneLine(errs))
}

// joined is errors.Join on one line: the messages separated by "; ".
type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, err := range j {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }

// oneLine returns the one error of errs, or them joined on one line.
func oneLine(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return joined(errs)
}

func (c *Client) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	dt := c.DialTimeout
	if dt == 0 {
		dt = 15 * time.Second
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dt}).DialContext,
		TLSHandshakeTimeout:   dt,
		ResponseHeaderTimeout: 2 * dt,
	}}
}

// errTransient marks failures worth another attempt at the same URL.
type errTransient struct{ err error }

func (e errTransient) Error() string { return e.err.Error() }
func (e errTransient) Unwrap() error { return e.err }

// fetchURL downloads url into its partial file, resuming and retrying, and
// renames it to final once its checksum matches.
func (c *Client) fetchURL(ctx context.Context, url string, f File, final string) error {
	part := partPath(c.Dir, url, f.Name)
	unlock, err := lock(ctx, part+".lock", func() {
		c.logf("%s: waiting for another process downloading into %s", f.Name, c.Dir)
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", url, diskErr(part+".lock", err))
	}
	defer unlock()
	// Another process may have completed the file while we waited.
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	restarted := false
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			c.logf("%s: %v; retrying in %v (attempt %d of %d)", url, last, backoff, attempt, attempts)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		resumed, err := c.attempt(ctx, url, part, filepath.Base(f.Name), f.Size > 0, c.limit(f))
		if err == nil {
			algo, want, _ := f.checksum()
			got, err := fileSum(part, f)
			if err != nil {
				return fmt.Errorf("%s: %w", url, err)
			}
			if got == want {
				if err := os.Rename(part, final); err != nil {
					return fmt.Errorf("%s: %w", url, diskErr(final, err))
				}
				return nil
			}
			os.Remove(part)
			cerr := &ChecksumError{URL: url, Algo: algo, Got: got, Want: want}
			if resumed && !restarted {
				// The server may have changed the file between the two
				// halves; one fresh download settles it.
				restarted = true
				last = cerr
				attempt = 0
				continue
			}
			return cerr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var te errTransient
		var ue *UnreachableError
		switch {
		case errors.As(err, &ue) && attempt > 1:
			// The network went away during this download: worth a retry,
			// unlike a server that was never reachable.
		case !errors.As(err, &te):
			return err
		}
		last = err
	}
	return fmt.Errorf("%s: giving up after %d attempts: %w", url, attempts, last)
}

// partPath returns the path of the partial download of the file name from
// url in dir.
func partPath(dir, url, name string) string {
	uh := sha256.Sum256([]byte(url))
	return filepath.Join(dir, hex.EncodeToString(uh[:8])+"-"+filepath.Base(name)+".part")
}

// attempt makes one request for the rest of the partial file and appends
// what arrives, up to limit bytes in all (the published size when
// published). It reports whether it resumed a partial file.
func (c *Client) attempt(ctx context.Context, url, part, name string, published bool, limit int64) (resumed bool, err error) {
	var offset int64
	if st, err := os.Stat(part); err == nil {
		offset = st.Size()
	}
	if offset > limit {
		// Left by an older run without the bound, or damaged: start over.
		os.Remove(part)
		offset = 0
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("%s: %w", url, err)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if isUnreachable(err) {
			return false, &UnreachableError{URL: url, Err: err}
		}
		return false, errTransient{fmt.Errorf("%s: %w", url, err)}
	}
	defer resp.Body.Close()
	a, err := answerOf(resp, url, part, offset)
	if err != nil || a.done {
		return a.resumed, err
	}
	if a.total > limit {
		return a.resumed, &SizeError{URL: url, Got: a.total, Limit: limit, Published: published}
	}
	out, err := os.OpenFile(part, a.flags, 0o644)
	if err != nil {
		return false, fmt.Errorf("%s: %w", url, diskErr(part, err))
	}
	defer out.Close()
	return a.resumed, c.transfer(resp.Body, cancel, out, a, name, limit, published)
}

// rangeAnswer is how a server answered a request for the rest of a file.
type rangeAnswer struct {
	url, part string
	flags     int   // how to open the partial file: to append, or truncated
	offset    int64 // the bytes of it kept
	total     int64 // the whole file's size; -1 when unknown
	resumed   bool  // the transfer continues the partial file
	done      bool  // nothing to transfer: the partial file may be complete
}

// answerOf reads the server's answer to a request from byte offset.
func answerOf(resp *http.Response, url, part string, offset int64) (rangeAnswer, error) {
	a := rangeAnswer{url: url, part: part, flags: os.O_WRONLY | os.O_CREATE | os.O_APPEND, offset: offset, total: -1}
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			// Not the range asked for: start over without a range.
			os.Remove(part)
			return rangeAnswer{}, errTransient{fmt.Errorf("%s: server answered range %q to a request from byte %d", url, resp.Header.Get("Content-Range"), offset)}
		}
		a.total, a.resumed = size, true
	case resp.StatusCode == http.StatusOK:
		a.flags |= os.O_TRUNC // the server ignored the range, or there was none
		a.offset, a.total = 0, resp.ContentLength
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		// The partial file may already be complete; the checksum decides.
		return rangeAnswer{resumed: true, done: true}, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return rangeAnswer{}, errTransient{fmt.Errorf("%s: HTTP %s", url, resp.Status)}
	default:
		return rangeAnswer{}, fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	return a, nil
}

// transfer appends body to out, the partial file, up to limit bytes in
// all, cancelling the request (cancel) when no byte arrives for the idle
// timeout, and checks that the whole file arrived.
func (c *Client) transfer(body io.Reader, cancel func(), out *os.File, a rangeAnswer, name string, limit int64, published bool) error {
	if c.Progress != nil {
		c.Progress.Start("download "+name, int(a.total))
		defer c.Progress.Finish()
		c.Progress.Advance(int(a.offset))
	}
	idle := c.IdleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	wd := &watchdog{r: body, timer: time.AfterFunc(idle, cancel), idle: idle, progress: c.Progress}
	defer wd.timer.Stop()
	n, err := io.Copy(diskWriter{out, a.part}, bounded.LimitReader(wd, limit-a.offset, a.url))
	var de *DiskError
	var tl *bounded.TooLongError
	switch {
	case errors.As(err, &de):
		return fmt.Errorf("%s: %w", a.url, err)
	case errors.As(err, &tl):
		os.Remove(a.part)
		return &SizeError{URL: a.url, Got: -1, Limit: limit, Published: published}
	case err != nil:
		return errTransient{fmt.Errorf("%s: transfer broke after %d bytes: %w", a.url, a.offset+n, err)}
	}
	if a.total >= 0 && a.offset+n != a.total {
		return errTransient{fmt.Errorf("%s: got %d of %d bytes", a.url, a.offset+n, a.total)}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("%s: %w", a.url, diskErr(a.part, err))
	}
	return nil
}

// diskWriter marks the errors of writing the partial file as DiskErrors,
// to tell them from the network's.
type diskWriter struct {
	f    *os.File
	path string
}

func (w diskWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, diskErr(w.path, err)
}

// watchdog cancels the request when no byte arrives for idle, and reports
// progress.
type watchdog struct {
	r        io.Reader
	timer    *time.Timer
	idle     time.Duration
	progress Progress
}

func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.timer.Reset(w.idle)
		if w.progress != nil {
			w.progress.Advance(n)
		}
	}
	return n, err
}

// parseContentRange parses "bytes START-END/SIZE" (SIZE may be "*").
func parseContentRange(s string) (start, size int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}

// isUnreachable reports whether err means the server could not be contacted
// at all, as opposed to a failure during a transfer.
func isUnreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// shortNetErr strips the layers Go's HTTP client wraps around a network
// error, keeping the reason ("connection refused", "no such host", ...).
func shortNetErr(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		if op.Timeout() {
			return "connection timed out"
		}
		msg := op.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return msg
	}
	return err.Error()
}

// fileSum returns the hex checksum of the file at path by f's algorithm.
func fileSum(path string, f File) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	_, _, h := f.checksum()
	if _, err := io.Copy(h, in); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
