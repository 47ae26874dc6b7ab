package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// StageBinary copies the executable at path into dir/bin/, named by its
// content hash, unless the copy exists, and returns the copy's path. Jobs
// run the copy: it lies in the cache, which every node sees; it is the very
// binary of the run that submitted them, even if bin/runner is rebuilt
// while they wait; and a binary from `go run`, which lives in a temporary
// directory that vanishes, works too.
func StageBinary(dir, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("runner binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("runner binary %s: %w", path, err)
	}
	dst := filepath.Join(dir, "bin", "runner-"+hex.EncodeToString(h.Sum(nil))[:16])
	if info, err := os.Stat(dst); err == nil && info.Size() == size {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := atomicfile.Write(dst, 0o755, false, func(w io.Writer) error { _, err := io.Copy(w, f); return err }); err != nil {
		return "", fmt.Errorf("copy runner binary into the cache: %w", err)
	}
	return dst, nil
}

// checkShared checks that the nodes can see the cache dir (and so the copy
// of the binary in it). A cluster whose only node is this machine sees
// everything. Otherwise a cache on a file system private to this machine
// (tmpfs, /tmp) is an error, and one on a local disk a warning: it may be
// exported to the nodes under the same path, which only they can tell.
func checkShared(ctx context.Context, q Queue, dir string, note func(string)) error {
	nl, ok := q.(NodeLister)
	if !ok {
		return nil
	}
	nodes, err := nl.Nodes(ctx)
	if err != nil || len(nodes) == 0 {
		return nil
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	var others []string
	for _, n := range nodes {
		if n != host && n != "localhost" {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return nil
	}
	list := strings.Join(others, ", ")
	if len(others) > 5 {
		list = strings.Join(others[:5], ", ") + fmt.Sprintf(" and %d more", len(others)-5)
	}
	fs := fsType(dir)
	for _, private := range []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm"} {
		if rel, err := filepath.Rel(private, dir); err == nil && !strings.HasPrefix(rel, "..") {
			fs = "private " + private
		}
	}
	switch {
	case fs == "tmpfs" || fs == "ramfs" || strings.HasPrefix(fs, "private "):
		return fmt.Errorf("%s executor: the cache %s is on %s, which only this machine sees; jobs run on %s. Put the cache on a shared file system (--cache DIR or $RUNNER_CACHE)", q.Name(), dir, fs, list)
	case fs != "" && !networkFS[fs]:
		note(fmt.Sprintf("%s: warning: the cache %s is on a local %s file system; jobs on %s fail unless it is shared with them at the same path", q.Name(), dir, fs, list))
	}
	return nil
}

// networkFS lists the file systems that nodes share.
var networkFS = map[string]bool{"nfs": true, "lustre": true, "gpfs": true, "beegfs": true, "cifs": true, "smb2": true, "ceph": true, "fuse": true, "afs": true, "panfs": true, "9p": true}
