package artifacts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Key is a stage key: the hex SHA-256 of the canonical description of one
// stage computation.
type Key string

// Digest is an artifact digest: the hex SHA-256 of the artifact's Manifest.
type Digest string

// LogName is the file the runner adds to every artifact: the stage's own log.
// It is kept in the artifact but left out of its manifest and digest.
const LogName = "log.txt"

// RunDirName is the top-level directory of an artifact that describes the run
// which computed it rather than its results: wall times, the host, the
// backend (the runner's run.json, the train stage's timings.csv). Like
// LogName it is kept in the artifact but left out of its manifest and
// digest, so the same computation has the same digest on every machine and
// executor, after any number of interruptions.
const RunDirName = "run"

// Undigested reports whether the artifact-relative, slash-separated path rel
// is run information that the manifest leaves out: the top-level log.txt and
// everything under the top-level run/ directory.
func Undigested(rel string) bool {
	return rel == LogName || rel == RunDirName || strings.HasPrefix(rel, RunDirName+"/")
}

// hexLen is the length of a hex SHA-256.
const hexLen = 2 * sha256.Size

// ParseKey checks that s is a well-formed key.
func ParseKey(s string) (Key, error) {
	if !isHex(s) {
		return "", fmt.Errorf("%q is not a stage key (want %d hex digits)", s, hexLen)
	}
	return Key(s), nil
}

// ParseDigest checks that s is a well-formed digest.
func ParseDigest(s string) (Digest, error) {
	if !isHex(s) {
		return "", fmt.Errorf("%q is not an artifact digest (want %d hex digits)", s, hexLen)
	}
	return Digest(s), nil
}

func isHex(s string) bool {
	if len(s) != hexLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Short returns the first 12 hex digits, for display.
func (k Key) Short() string { return short(string(k)) }

// Short returns the first 12 hex digits, for display.
func (d Digest) Short() string { return short(string(d)) }

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// Entry is one file of a manifest.
type Entry struct {
	// Path is slash-separated and relative to the artifact directory.
	Path string
	Size int64 // in bytes
	// Sum is the file's SHA-256.
	Sum [sha256.Size]byte
}

// Manifest lists the files of an artifact, sorted by path. Its text form,
// which the digest hashes, has one line per file:
//
//	<hex sha256> <size> "<path>"
//
// with the path quoted as Go's strconv.Quote does.
type Manifest []Entry

// Bytes returns the manifest's text form.
func (m Manifest) Bytes() []byte {
	var b bytes.Buffer
	for _, e := range m {
		b.WriteString(hex.EncodeToString(e.Sum[:]))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(e.Size, 10))
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Path))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Digest returns the SHA-256 of the manifest's text form.
func (m Manifest) Digest() Digest {
	sum := sha256.Sum256(m.Bytes())
	return Digest(hex.EncodeToString(sum[:]))
}

// Size returns the total size of the listed files.
func (m Manifest) Size() int64 {
	var n int64
	for _, e := range m {
		n += e.Size
	}
	return n
}

// ParseManifest reads a manifest's text form.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("manifest line %d: want 3 fields", line)
		}
		var e Entry
		sum, err := hex.DecodeString(f[0])
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("manifest line %d: bad sha256 %q", line, f[0])
		}
		copy(e.Sum[:], sum)
		if e.Size, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return nil, fmt.Errorf("manifest line %d: bad size: %w", line, err)
		}
		if e.Path, err = strconv.Unquote(f[2]); err != nil {
			return nil, fmt.Errorf("manifest line %d: bad path %s: %w", line, f[2], err)
		}
		m = append(m, e)
	}
	return m, sc.Err()
}

// Diff describes how got differs from m, one line per file added, removed or
// changed, sorted by path.
func (m Manifest) Diff(got Manifest) []string {
	want := make(map[string]Entry, len(m))
	for _, e := range m {
		want[e.Path] = e
	}
	var out []string
	seen := make(map[string]bool, len(got))
	for _, e := range got {
		seen[e.Path] = true
		w, ok := want[e.Path]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: unexpected file (%d bytes)", e.Path, e.Size))
		case w.Size != e.Size:
			out = append(out, fmt.Sprintf("%s: size %d, want %d", e.Path, e.Size, w.Size))
		case w.Sum != e.Sum:
			out = append(out, fmt.Sprintf("%s: content differs (sha256 %x, want %x)", e.Path, e.Sum[:6], w.Sum[:6]))
		}
	}
	for _, e := range m {
		if !seen[e.Path] {
			out = append(out, fmt.Sprintf("%s: missing", e.Path))
		}
	}
	sort.Strings(out)
	return out
}

// copyBufSize is the read buffer of file hashing: large enough for few
// syscalls, small enough that memory stays flat whatever the file size.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// HashFile returns the SHA-256 and size of a file, streamed through a fixed
// buffer.
func HashFile(path string) (sum [sha256.Size]byte, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	size, err = io.CopyBuffer(h, onlyReader{f}, *bp)
	if err != nil {
		return sum, 0, fmt.Errorf("hash %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, size, nil
}

// onlyReader hides *os.File's WriterTo so io.CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

// parallelBytes is the artifact size from which files are hashed by several
// goroutines at once.
const parallelBytes = 8 << 20

// HashDir returns the manifest of the artifact in dir. The top-level log.txt
// and run/ directory are left out (see Undigested). Only regular files and directories are allowed: a symlink or
// any other kind of file is an error, since an artifact must be
// self-contained. Empty directories are not recorded.
func HashDir(dir string) (Manifest, error) {
	var m Manifest
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == RunDirName {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("artifact %s: %s is a %s, not a regular file", dir, rel, fileKind(d.Type()))
		}
		if Undigested(rel) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		m = append(m, Entry{Path: rel, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(m, func(i, j int) bool { return m[i].Path < m[j].Path })
	workers := 1
	if total >= parallelBytes && len(m) > 1 {
		workers = min(runtime.GOMAXPROCS(0), 4, len(m))
	}
	if err := hashEntries(dir, m, workers); err != nil {
		return nil, err
	}
	return m, nil
}

func hashEntries(dir string, m Manifest, workers int) error {
	hashOne := func(i int) error {
		sum, size, err := HashFile(filepath.Join(dir, filepath.FromSlash(m[i].Path)))
		if err != nil {
			return err
		}
		if size != m[i].Size {
			return fmt.Errorf("artifact %s: %s changed size while being hashed", dir, m[i].Path)
		}
		m[i].Sum = sum
		return nil
	}
	if workers <= 1 {
		for i := range m {
			if err := hashOne(i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := hashOne(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range m {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func fileKind(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// PathHasher computes content digests of input paths (files or directories
// named by Path params), remembering each file's sum by path, size and
// modification time so that one process hashes an unchanged file only once.
// It is safe for concurrent use.
type PathHasher struct {
	mu   sync.Mutex
	memo map[string]memoEntry
}

type memoEntry struct {
	size  int64
	mtime int64
	sum   [sha256.Size]byte
}

// Digest returns the content digest of the file or directory at path. A
// directory's digest is its manifest's (HashDir's, except that log.txt is not
// special and symlinks are followed); a file's is that of a manifest with the
// single entry ".", so the digest depends on content only, never on spelling.
func (h *PathHasher) Digest(path string) (Digest, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !info.IsDir() {
		sum, err := h.file(path, info)
		if err != nil {
			return "", err
		}
		return Manifest{{Path: ".", Size: info.Size(), Sum: sum}}.Digest(), nil
	}
	var m Manifest
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil {
			return err
		}
		if info.IsDir() {
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s: symlinked directories inside an input path are not supported", p)
			}
			return nil
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is a %s, not a regular file", p, fileKind(info.Mode().Type()))
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		sum, err := h.file(p, info)
		if err != nil {
			return err
		}
		m = append(m, Entry{Path: filepath.ToSlash(rel), Size: info.Size(), Sum: sum})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(m, func(i, j int) bool { return m[i].Path < m[j].Path })
	return m.Digest(), nil
}

func (h *PathHasher) file(path string, info fs.FileInfo) ([sha256.Size]byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mtime := info.ModTime().UnixNano()
	h.mu.Lock()
	e, ok := h.memo[abs]
	h.mu.Unlock()
	if ok && e.size == info.Size() && e.mtime == mtime {
		return e.sum, nil
	}
	sum, size, err := HashFile(abs)
	if err != nil {
		return sum, err
	}
	if size != info.Size() {
		return sum, fmt.Errorf("%s changed while being hashed", path)
	}
	h.mu.Lock()
	if h.memo == nil {
		h.memo = map[string]memoEntry{}
	}
	h.memo[abs] = memoEntry{size: size, mtime: mtime, sum: sum}
	h.mu.Unlock()
	return sum, nil
}
