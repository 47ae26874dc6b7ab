package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// ViewName turns a stage id into the name of its entry in the results view:
// the id itself, with "%" and "/" (which matrix values may hold) escaped as
// %25 and %2F. An id too long for a file name is cut and ends in "~" and 12
// hex digits of its SHA-256.
func ViewName(id string) string {
	name := id
	if strings.ContainsAny(id, "%/") {
		name = strings.NewReplacer("%", "%25", "/", "%2F").Replace(id)
	}
	if len(name) > maxViewName {
		sum := sha256.Sum256([]byte(id))
		name = name[:maxViewName-13] + "~" + hex.EncodeToString(sum[:6])
	}
	return name
}

// maxViewName keeps view names under the 255-byte limit of common file
// systems.
const maxViewName = 200

// tmpLinkPrefix starts the names of links being created: ".tmp-<pid>.<n>".
// Stage ids start with a letter or '_', so they never collide.
const tmpLinkPrefix = ".tmp-"

var viewSeq atomic.Int64

// tmpLinkPID returns the process id in a temporary link's name, or 0.
func tmpLinkPID(name string) int {
	rest := strings.TrimPrefix(name, tmpLinkPrefix)
	pid, err := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, '.'))])
	if err != nil {
		return 0
	}
	return pid
}

// pidAlive reports whether a process with this id exists.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// UpdateView makes dir hold exactly the symlinks in links (entry name →
// target): it creates missing ones, replaces wrong ones atomically, removes
// symlinks not listed, and leaves correct ones untouched, so refreshing an
// unchanged view writes nothing. Entries that are not symlinks are left alone
// unless links names them, which is an error.
func UpdateView(dir string, links map[string]string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("results view: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("results view: %w", err)
	}
	existing := make(map[string]bool, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpLinkPrefix) {
			// Another process's link about to be renamed into place, or the
			// leftover of a dead one.
			if pidAlive(tmpLinkPID(name)) {
				continue
			}
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			if _, ok := links[name]; ok {
				return fmt.Errorf("results view: %s is not a symlink; move it away", filepath.Join(dir, name))
			}
			continue
		}
		if _, ok := links[name]; !ok {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("results view: %w", err)
			}
			continue
		}
		existing[name] = true
	}
	for name, target := range links {
		p := filepath.Join(dir, name)
		if existing[name] {
			if cur, err := os.Readlink(p); err == nil && cur == target {
				continue
			}
		}
		tmp := filepath.Join(dir, fmt.Sprintf("%s%d.%d", tmpLinkPrefix, os.Getpid(), viewSeq.Add(1)))
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("results view: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("results view: %w", err)
		}
	}
	return nil
}
