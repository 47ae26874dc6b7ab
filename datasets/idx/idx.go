// Package idx reads and writes the IDX files that MNIST and FashionMNIST are
// published as (unsigned-byte arrays with a big-endian header), gzip-compressed
// or not.
//
// Format: two zero bytes, a type byte (0x08 = unsigned byte, the only type
// these datasets use), a byte giving the number of dimensions d, then d
// big-endian uint32 sizes, then the data in row-major order. Image files are
// 3-d (count, rows, columns), label files 1-d (count).
package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hessian-spectra/runner/internal/bounded"
)

// TypeUByte is the IDX type code of unsigned bytes.
const TypeUByte = 0x08

// maxElements bounds the size a header may announce (2³¹ bytes), whatever
// the input: the largest published IDX file (MNIST's training images) holds
// 47 MB.
const maxElements = 1 << 31

// Array is the content of one IDX file of unsigned bytes.
type Array struct {
	// Dims are the sizes from the header, outermost first.
	Dims []int
	// Data holds the product of Dims bytes in row-major order.
	Data []uint8
}

// Read reads one IDX array of unsigned bytes from r, which may be gzip
// compressed (detected by its magic bytes). It fails on a wrong magic number,
// a type other than unsigned byte, data shorter than the header announces
// (a truncated file), bytes after the data, or a gzip stream that does not
// end cleanly (truncated or failing its CRC).
//
// A header may announce at most 2³¹ bytes; memory for them grows as they
// arrive, and a gzip stream is read through an io.LimitReader one byte past
// what the header announces, so neither a lying header nor a decompression
// bomb costs more memory than the data really there.
func Read(r io.Reader) (*Array, error) { return read(r, -1) }

// read is Read of an input of size bytes (size < 0: unknown). A known size
// lets a header announcing more than the file can hold fail before any read.
func read(r io.Reader, size int64) (*Array, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var src io.Reader = br
	gz := false
	if head, err := br.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		src = zr
		gz = true
	}
	// The most bytes the (decompressed) input can hold.
	capacity := size
	if gz && size >= 0 {
		capacity = bounded.InflatedCap(size)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading magic number: %w", truncated(err, gz))
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("wrong magic number %#08x: not an IDX file (it starts with two zero bytes)", binary.BigEndian.Uint32(hdr[:]))
	}
	if hdr[2] != TypeUByte {
		return nil, fmt.Errorf("IDX type %#02x is not unsigned byte (%#02x)", hdr[2], TypeUByte)
	}
	nd := int(hdr[3])
	if nd == 0 {
		return nil, errors.New("IDX header declares 0 dimensions")
	}
	dimBytes := make([]byte, 4*nd)
	if _, err := io.ReadFull(src, dimBytes); err != nil {
		return nil, fmt.Errorf("reading %d dimension sizes: %w", nd, truncated(err, gz))
	}
	a := &Array{Dims: make([]int, nd)}
	var total int64 = 1
	for i := range a.Dims {
		a.Dims[i] = int(binary.BigEndian.Uint32(dimBytes[4*i:]))
		total *= int64(a.Dims[i])
		if total > maxElements {
			return nil, fmt.Errorf("IDX header declares dimensions %v, more than %d bytes", a.Dims[:i+1], maxElements)
		}
	}
	if rest := capacity - 4 - 4*int64(nd); capacity >= 0 && total > rest {
		if gz {
			return nil, fmt.Errorf("header declares %v = %d bytes of data, a %d-byte gzip file can hold at most %d (corrupt)", a.Dims, total, size, rest)
		}
		return nil, fmt.Errorf("header declares %v = %d bytes of data, the file holds %d bytes (truncated)", a.Dims, total, max(rest, 0))
	}
	// One byte past the data, to see that nothing follows it.
	src = io.LimitReader(src, total+1)
	var err error
	if a.Data, err = bounded.ReadFull(src, total); err != nil {
		return nil, fmt.Errorf("header declares %v = %d bytes of data, the file holds %d bytes: %w", a.Dims, total, len(a.Data), truncated(err, gz))
	}
	// Nothing may follow the data; for gzip this read also checks the CRC.
	var extra [1]byte
	switch n, err := io.ReadFull(src, extra[:]); {
	case n > 0:
		return nil, fmt.Errorf("bytes follow the %v = %d bytes of data the header declares", a.Dims, total)
	case err != io.EOF:
		return nil, fmt.Errorf("after the data: %w", truncated(err, gz))
	}
	return a, nil
}

// truncated rewords the error io.ReadFull gives at a premature end.
func truncated(err error, gz bool) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		if gz {
			return errors.New("gzip stream ends early (truncated file)")
		}
		return errors.New("file ends early (truncated)")
	}
	return err
}

// ReadFile reads the IDX file at path (gzip or not). Errors name the file.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	a, err := read(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Write writes data as an uncompressed IDX array of unsigned bytes with the
// given dims. Wrap w in a gzip.Writer for the .gz form.
func Write(w io.Writer, dims []int, data []uint8) error {
	if len(dims) == 0 || len(dims) > 255 {
		return fmt.Errorf("idx: %d dimensions, want 1 to 255", len(dims))
	}
	total := 1
	var hdr bytes.Buffer
	hdr.Write([]byte{0, 0, TypeUByte, byte(len(dims))})
	for _, d := range dims {
		if d < 0 || d > 1<<32-1 {
			return fmt.Errorf("idx: dimension %d out of range", d)
		}
		total *= d
		binary.Write(&hdr, binary.BigEndian, uint32(d))
	}
	if total != len(data) {
		return fmt.Errorf("idx: dims %v hold %d bytes, data has %d", dims, total, len(data))
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
