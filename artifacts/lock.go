package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held flock(2) lock on a file of the store. The kernel releases it
// when the process dies, so a lock is never left stale.
type Lock struct {
	f *os.File
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// pollMin and pollMax bound the interval at which a waiting locker retries:
// flock(2) cannot be interrupted by a context, so waiting is polling.
const (
	pollMin = 5 * time.Millisecond
	pollMax = 200 * time.Millisecond
)

// waitNotice is how long a locker waits before it calls its waiting
// callback: short waits are normal and not worth a message.
var waitNotice = time.Second

// LockKey takes the exclusive lock of key k, waiting while another process or
// goroutine holds it, until ctx is done. After waiting a second it calls
// waiting once (waiting may be nil).
func (s *Store) LockKey(ctx context.Context, k Key, waiting func()) (*Lock, error) {
	p := s.lockPath(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return nil, err
	}
	l, err := lockFile(ctx, p, unix.LOCK_EX, waiting)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", k.Short(), err)
	}
	return l, nil
}

// TryLockKey takes the lock of key k if it is free and reports whether it did.
func (s *Store) TryLockKey(k Key) (*Lock, bool, error) {
	return tryLock(s.lockPath(k), unix.LOCK_EX)
}

// Computing reports whether some process holds the lock of key k: a runner
// or a `runner exec-stage` is computing k right now.
func (s *Store) Computing(k Key) bool { return heldLock(s.lockPath(k)) }

// ErrBusy is returned when the store is in use by a process that excludes the
// requested operation.
var ErrBusy = errors.New("cache is in use by another runner")

// Share takes cache.lock shared, as every run does for its whole duration, so
// that GC and Verify never remove what it uses. It waits while GC or Verify
// hold it exclusively, calling waiting once after a second.
func (s *Store) Share(ctx context.Context, waiting func()) (*Lock, error) {
	return lockFile(ctx, filepath.Join(s.dir, "cache.lock"), unix.LOCK_SH, waiting)
}

// Exclude takes cache.lock exclusively without waiting: it fails with ErrBusy
// while any run holds it.
func (s *Store) Exclude() (*Lock, error) {
	l, ok, err := tryLock(filepath.Join(s.dir, "cache.lock"), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBusy
	}
	return l, nil
}

// LockPath takes an exclusive flock(2) lock on the file at p (created if
// missing), waiting until ctx is done and calling waiting once after a
// second. It is for packages that keep their own files in the store, such as
// the cluster executor's per-key job records; key locks use LockKey.
func LockPath(ctx context.Context, p string, waiting func()) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return nil, err
	}
	l, err := lockFile(ctx, p, unix.LOCK_EX, waiting)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return l, nil
}

// TryLockPath takes the exclusive lock of the file at p if it is free and
// reports whether it did.
func TryLockPath(p string) (*Lock, bool, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return nil, false, err
	}
	return tryLock(p, unix.LOCK_EX)
}

// Held reports whether some process holds a flock(2) lock on the file at p:
// a process that died holds none.
func Held(p string) bool { return heldLock(p) }

func lockFile(ctx context.Context, p string, how int, waiting func()) (*Lock, error) {
	wait := pollMin
	start := time.Now()
	for {
		l, ok, err := tryLock(p, how)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if waiting != nil && time.Since(start) >= waitNotice {
			waiting()
			waiting = nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
	}
}

// tryLock opens p and takes a flock of kind how without blocking. It checks
// that the file it locked is still the one at p: GC removes lock files, and a
// lock on a removed file would exclude nobody.
func tryLock(p string, how int) (*Lock, bool, error) {
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o666)
		if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
			// A read-only cache: flock works on a read-only descriptor of
			// an existing lock file, so cached results can still be served.
			var rerr error
			if f, rerr = os.Open(p); rerr != nil {
				return nil, false, err
			}
			err = nil
		}
		if err != nil {
			return nil, false, err
		}
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, false, nil
		}
		if err != nil {
			f.Close()
			return nil, false, fmt.Errorf("flock %s: %w", p, err)
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			return &Lock{f: f}, true, nil
		}
		f.Close() // the file was replaced or removed under us: retry
	}
}

// heldLock reports whether some process holds the lock file at p.
func heldLock(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
