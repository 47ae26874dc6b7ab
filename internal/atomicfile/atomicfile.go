// Package atomicfile writes files so that a reader sees the old content or
// the new one, never a part: the bytes go to a temporary file beside the
// target, which is then renamed over it (rename(2) is atomic within a file
// system). A writer that dies leaves at most a hidden temporary file
// (".NAME.tmp…") and the old content.
//
// Durable writes also fsync the file before the rename and its directory
// after it, so that the new content survives a power loss once they return;
// the others leave that to the kernel, which is enough for anything that
// can be recomputed.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
)

// WriteFile writes data to path atomically, creating it with permissions
// perm (before the umask) or replacing it.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, false, bytesWriter(data))
}

// WriteFileDurable is WriteFile that also survives a power loss once it
// returns (see the package doc).
func WriteFileDurable(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, true, bytesWriter(data))
}

// CopyFile copies the file src to dst atomically, with permissions perm
// (before the umask).
func CopyFile(dst, src string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := Write(dst, perm, false, func(w io.Writer) error { _, err := io.Copy(w, in); return err }); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// Write creates path, or replaces it, with what fill writes, atomically:
// fill writes into a temporary file beside path, which is renamed over it
// once fill and the close succeed. On any failure the temporary file is
// removed and path is left as it was. With durable set the file is fsync'ed
// before the rename and its directory after it.
func Write(path string, perm fs.FileMode, durable bool, fill func(w io.Writer) error) error {
	f, err := create(path, perm)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return Sync(filepath.Dir(path))
	}
	return nil
}

// Sync fsyncs the file or directory at path: for a directory, the names
// in it (a rename into it, say) survive a power loss once it returns.
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

var seq atomic.Int64

// create opens a new hidden temporary file beside path, named after it, the
// process and a counter, with permissions perm: O_EXCL, so that two writers
// (goroutines or processes) never share one.
func create(path string, perm fs.FileMode) (*os.File, error) {
	dir, base := filepath.Split(path)
	for {
		name := filepath.Join(dir, "."+base+".tmp"+strconv.Itoa(os.Getpid())+"."+strconv.FormatInt(seq.Add(1), 10))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if os.IsExist(err) {
			continue // left by a dead process of the same pid
		}
		return f, err
	}
}

func bytesWriter(data []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(data); return err }
}
