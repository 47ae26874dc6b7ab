// Package corrupt makes damaged copies of valid inputs and checks, for the
// readers' tests, that a reader rejects each one cleanly: with an error on
// one line, and without a panic.
package corrupt

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// Case is one damaged input.
type Case struct {
	Name string
	Data []byte
	// MaxAlloc, when not 0, bounds the bytes the reader may allocate on it
	// (RejectFiles checks it).
	MaxAlloc uint64
}

// Truncations returns b cut short at each of the given offsets and at
// points spread over its whole length (0, 1, a few in between, len−1).
// Offsets outside 0…len(b)−1 are ignored; each length appears once.
func Truncations(b []byte, at ...int) []Case {
	n := len(b)
	cuts := append(slices.Clone(at), 0, 1, n/4, n/2, 3*n/4, n-1)
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var out []Case
	for _, c := range cuts {
		if c >= 0 && c < n {
			out = append(out, Case{Name: fmt.Sprintf("truncated at %d of %d", c, n), Data: slices.Clone(b[:c])})
		}
	}
	return out
}

// BitFlips returns a copy of b for every bit of bytes from…to−1 (clipped
// to b), with that one bit flipped.
func BitFlips(b []byte, from, to int) []Case {
	var out []Case
	for i := max(from, 0); i < min(to, len(b)); i++ {
		for bit := 0; bit < 8; bit++ {
			d := slices.Clone(b)
			d[i] ^= 1 << bit
			out = append(out, Case{Name: fmt.Sprintf("bit %d of byte %d flipped", bit, i), Data: d})
		}
	}
	return out
}

// Tally counts the inputs a corpus test fed to a reader and the panics
// they caused.
type Tally struct {
	Cases, Errors, Panics int
}

// Reject runs read on a damaged input that must be refused: it fails t
// when read panics, returns no error, or returns an error of more than one
// line. It returns read's error.
func (ty *Tally) Reject(t testing.TB, name string, read func() error) error {
	t.Helper()
	err, ok := ty.run(t, name, read)
	if ok && err == nil {
		t.Errorf("%s: read without error", name)
	}
	return err
}

// Survive runs read on an input that may or may not be valid (a bit flipped
// in the data): it fails t only when read panics or returns an error of
// more than one line.
func (ty *Tally) Survive(t testing.TB, name string, read func() error) error {
	t.Helper()
	err, _ := ty.run(t, name, read)
	return err
}

func (ty *Tally) run(t testing.TB, name string, read func() error) (err error, ok bool) {
	t.Helper()
	ty.Cases++
	func() {
		defer func() {
			if p := recover(); p != nil {
				ty.Panics++
				t.Errorf("%s: panic: %v\n%s", name, p, debug.Stack())
			}
		}()
		err = read()
		ok = true
	}()
	if err != nil {
		ty.Errors++
		if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
			t.Errorf("%s: error of more than one line: %q", name, msg)
		}
	}
	return err, ok
}

// RejectFiles writes each case to a file (named after its index, with
// extension ext) in a temporary dir and runs read on its path, as Reject
// does. It also fails t when an error does not name the file, or when read
// allocates more than a case's MaxAlloc.
func (ty *Tally) RejectFiles(t *testing.T, ext string, cases []Case, read func(path string) error) {
	t.Helper()
	dir := t.TempDir()
	for i, c := range cases {
		path := filepath.Join(dir, fmt.Sprintf("case%d%s", i, ext))
		if err := os.WriteFile(path, c.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		n := Allocated(func() { err = ty.Reject(t, c.Name, func() error { return read(path) }) })
		if c.MaxAlloc > 0 && n > c.MaxAlloc {
			t.Errorf("%s: allocated %d bytes for a %d-byte file, want at most %d", c.Name, n, len(c.Data), c.MaxAlloc)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", c.Name, err)
		}
	}
}

// Allocated returns the bytes the process allocated while f ran.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Log reports the counts, for the test log ("go test -v").
func (ty *Tally) Log(t testing.TB, reader string) {
	t.Helper()
	t.Logf("%s: %d corrupt inputs, %d rejected, %d panics", reader, ty.Cases, ty.Errors, ty.Panics)
}
