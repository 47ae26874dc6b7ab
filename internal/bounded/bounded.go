// Package bounded reads untrusted input without letting it choose how much
// memory is allocated: a header that announces more data than the input
// holds costs no more memory than the input itself. It also names the parts
// of such input in one-line error messages.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Name returns a name read from an input (an archive member, a variable)
// for an error message: as it is when printable, quoted otherwise, so that
// the message stays on one line.
func Name(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// MaxDeflateRatio is the most bytes one byte of a deflate stream (zlib, gzip,
// the deflate method of zip) can expand to: a 258-byte match coded in 2 bits.
// zlib at its best level reaches about 1029 on zeros.
const MaxDeflateRatio = 1032

// InflatedCap returns the most bytes a deflate stream of n compressed bytes
// can hold (with a little slack for tiny streams), saturating instead of
// overflowing.
func InflatedCap(n int64) int64 {
	const slack = 1 << 10
	if n < 0 {
		return slack
	}
	if n > (1<<63-1-slack)/MaxDeflateRatio {
		return 1<<63 - 1
	}
	return n*MaxDeflateRatio + slack
}

// firstChunk is the allocation ReadFull starts with; it doubles from there
// as data arrives.
const firstChunk = 1 << 20

// ReadFull reads exactly n bytes from r. Memory grows with the bytes that
// actually arrive (doubling from 1 MiB), never with n alone. A short input
// gives the bytes that arrived and io.ErrUnexpectedEOF (io.EOF when none
// did); other read errors are returned as they are.
func ReadFull(r io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("bounded: negative length %d", n)
	}
	if n > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("bounded: length %d does not fit in memory", n)
	}
	want := int(n)
	buf := make([]byte, 0, min(want, firstChunk))
	for len(buf) < want {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(want, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(buf) == want {
				break
			}
			if len(buf) == 0 {
				return buf, io.EOF
			}
			return buf, io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// TooLongError reports an input longer than its bound.
type TooLongError struct {
	// What names the input, e.g. "the decompressed archive".
	What string
	// Limit is the bound that was passed.
	Limit int64
}

// Error says what was too long and its bound, on one line.
func (e *TooLongError) Error() string {
	return fmt.Sprintf("%s holds more than %d bytes (corrupt, or a decompression bomb)", e.What, e.Limit)
}

// LimitReader returns a reader of the first n bytes of r that fails with a
// *TooLongError naming what, rather than ending quietly as io.LimitReader
// does, when r holds more than n bytes.
func LimitReader(r io.Reader, n int64, what string) io.Reader {
	return &limitReader{r: r, left: n, err: &TooLongError{What: what, Limit: n}}
}

type limitReader struct {
	r    io.Reader
	left int64 // bytes still allowed; -1 once more arrived
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err
	}
	// Ask for one byte past the limit, to see whether r holds more.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n, l.left = int(l.left), -1
		return n, l.err
	}
	l.left -= int64(n)
	return n, err
}
