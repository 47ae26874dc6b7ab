package artifacts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// DamagedError reports a stored artifact that no longer matches its
// manifest: a file missing, truncated or rewritten after it was stored (for
// example edited through the results/ view). Get returns it for a damaged
// hit; the runner then recomputes the stage, and Put replaces the damaged
// object.
type DamagedError struct {
	Digest Digest
	// Details say what differs, one line per file.
	Details []string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("artifact %s is damaged: %s", e.Digest.Short(), e.Summary())
}

// Summary joins up to three of the details, counting the rest.
func (e *DamagedError) Summary() string {
	if len(e.Details) > 3 {
		return strings.Join(e.Details[:3], "; ") + fmt.Sprintf("; and %d more", len(e.Details)-3)
	}
	return strings.Join(e.Details, "; ")
}

// A stamp records, beside an object's manifest, the size and modification
// time each of its files had when it was stored (or last verified):
//
//	objects/ab/<digest>.stamp    one line per manifest entry: <size> <mtime ns> "<path>"
//
// CheckObject compares the files with it: a stat per file instead of a hash,
// so that every cache hit can afford it. A file rewritten in place has a new
// modification time even when its size is unchanged (the files are read-only,
// but root ignores that), and is then re-hashed. A stamp is a cache of
// verification, not part of the object: when it is missing or unreadable the
// object is re-hashed and a new stamp written.
func (s *Store) stampPath(d Digest) string { return s.ObjectDir(d) + ".stamp" }

type stampEntry struct {
	size  int64
	mtime int64
}

// writeStamp records the current size and modification time of every file
// of m in the object directory of d.
func (s *Store) writeStamp(d Digest, m Manifest) error {
	dir := s.ObjectDir(d)
	var b bytes.Buffer
	for _, e := range m {
		info, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%d %d %s\n", info.Size(), info.ModTime().UnixNano(), strconv.Quote(e.Path))
	}
	return atomicfile.WriteFile(s.stampPath(d), b.Bytes(), 0o666)
}

// readStamp reads the stamp of d; nil when it is missing or unreadable.
func (s *Store) readStamp(d Digest) map[string]stampEntry {
	data, err := os.ReadFile(s.stampPath(d))
	if err != nil {
		return nil
	}
	out := map[string]stampEntry{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			return nil
		}
		size, err1 := strconv.ParseInt(f[0], 10, 64)
		mtime, err2 := strconv.ParseInt(f[1], 10, 64)
		path, err3 := strconv.Unquote(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil
		}
		out[path] = stampEntry{size, mtime}
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}

// CheckObject checks cheaply that the artifact with digest d is whole: its
// manifest is readable and every file it lists is present with its size and
// the modification time of its stamp. Files whose time changed are re-hashed;
// if their content is intact the stamp is renewed. It returns a
// *DamagedError when the object is missing a file or a file's content
// differs, and nil when the object is whole. Files the manifest does not
// list (an extra file, log.txt, run/) are not looked at: Verify is the deep
// check.
func (s *Store) CheckObject(d Digest) error {
	if !s.HasObject(d) {
		return &DamagedError{Digest: d, Details: []string{"the artifact directory is missing"}}
	}
	return s.checkFiles(d)
}

// checkFiles is CheckObject of an object whose directory is known to be
// there (HasObject), so that a hit in Get stats it once.
func (s *Store) checkFiles(d Digest) error {
	dir := s.ObjectDir(d)
	m, err := s.Manifest(d)
	if err != nil {
		return &DamagedError{Digest: d, Details: []string{fmt.Sprintf("manifest unreadable: %v", err)}}
	}
	stamp := s.readStamp(d)
	var details []string
	rehash := false
	for _, e := range m {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			details = append(details, e.Path+": missing")
			continue
		case err != nil:
			details = append(details, fmt.Sprintf("%s: %v", e.Path, err))
			continue
		case !fi.Mode().IsRegular():
			details = append(details, fmt.Sprintf("%s: is a %s, not a regular file", e.Path, fileKind(fi.Mode().Type())))
			continue
		case fi.Size() != e.Size:
			details = append(details, fmt.Sprintf("%s: size %d, want %d", e.Path, fi.Size(), e.Size))
			continue
		}
		st, ok := stamp[e.Path]
		if ok && st.size == fi.Size() && st.mtime == fi.ModTime().UnixNano() {
			continue
		}
		rehash = true
		sum, _, err := HashFile(p)
		if err != nil {
			details = append(details, fmt.Sprintf("%s: %v", e.Path, err))
		} else if sum != e.Sum {
			details = append(details, fmt.Sprintf("%s: content differs (sha256 %x, want %x)", e.Path, sum[:6], e.Sum[:6]))
		}
	}
	if len(details) > 0 {
		return &DamagedError{Digest: d, Details: details}
	}
	if rehash || stamp == nil {
		_ = s.writeStamp(d, m) // a cache of verification: failing to renew it costs a re-hash next time
	}
	return nil
}

// quarantineObject moves the object d and its manifest and stamp to
// quarantine/, where GC deletes them.
func (s *Store) quarantineObject(d Digest) error {
	dst := filepath.Join(s.dir, "quarantine", string(d)+"."+s.now().UTC().Format("20060102T150405.000000000"))
	if err := os.Rename(s.ObjectDir(d), dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine %s: %w", d.Short(), err)
	}
	for _, ext := range []string{".manifest", ".stamp"} {
		if err := os.Rename(s.ObjectDir(d)+ext, dst+ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("quarantine %s: %w", d.Short(), err)
		}
	}
	return nil
}
