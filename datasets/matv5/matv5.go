// Package matv5 reads the numeric arrays of a MATLAB level 5 MAT-file (the
// format of SVHN's train_32x32.mat and test_32x32.mat), with or without
// compressed data elements, in either byte order.
//
// Layout, as MathWorks documents it ("MAT-File Format", level 5): a 128-byte
// header (116 bytes of text, 8 bytes of subsystem offset, a version 0x0100 and
// the endian indicator "MI" as written by the machine), then data elements.
// Each element is an 8-byte tag (uint32 data type, uint32 byte count) and its
// data, padded to 8 bytes; an element of at most 4 bytes may use the "small"
// form, whose tag packs the byte count in the upper and the type in the lower
// 16 bits of the first word, with the data in the second. A top-level element
// is a matrix (miMATRIX) or a zlib stream holding one (miCOMPRESSED). A matrix
// holds sub-elements: array flags (class in the low byte), dimensions, name,
// and real part (stored in any numeric data type, converted to the class).
// Data is column-major (Fortran order), as MATLAB stores it.
//
// Only numeric, real, full arrays are returned. Other arrays (cell, struct,
// char, sparse, objects) are skipped and listed by name in File.Skipped;
// complex arrays are an error. Level 4 and v7.3 (HDF5) files are errors.
package matv5

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/internal/bounded"
)

// Class is a MATLAB array class (mxCLASS).
type Class int

// The numeric classes this package returns, with their MATLAB codes.
const (
	Double Class = 6
	Single Class = 7
	Int8   Class = 8
	Uint8  Class = 9
	Int16  Class = 10
	Uint16 Class = 11
	Int32  Class = 12
	Uint32 Class = 13
	Int64  Class = 14
	Uint64 Class = 15
)

var classNames = map[Class]string{
	1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse",
	Double: "double", Single: "single", Int8: "int8", Uint8: "uint8", Int16: "int16", Uint16: "uint16",
	Int32: "int32", Uint32: "uint32", Int64: "int64", Uint64: "uint64",
}

// String returns MATLAB's name of the class.
func (c Class) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return fmt.Sprintf("class(%d)", int(c))
}

func (c Class) numeric() bool { return c >= Double && c <= Uint64 }

// Data types of data elements (miTYPE).
const (
	miINT8       = 1
	miUINT8      = 2
	miINT16      = 3
	miUINT16     = 4
	miINT32      = 5
	miUINT32     = 6
	miSINGLE     = 7
	miDOUBLE     = 9
	miINT64      = 12
	miUINT64     = 13
	miMATRIX     = 14
	miCOMPRESSED = 15
	miUTF8       = 16
)

var typeSizes = map[uint32]int{
	miINT8: 1, miUINT8: 1, miINT16: 2, miUINT16: 2, miINT32: 4, miUINT32: 4,
	miSINGLE: 4, miDOUBLE: 8, miINT64: 8, miUINT64: 8, miUTF8: 1,
}

// Array is one numeric array of a MAT-file.
type Array struct {
	// Name is the variable name.
	Name string
	// Class is the MATLAB class.
	Class Class
	// Dims are the sizes, at least two, as MATLAB reports them.
	Dims []int
	// Data holds the elements in column-major order: []uint8 for class
	// uint8 (kept compact: SVHN's images are uint8), []float64 for every
	// other class (int64 values beyond 2⁵³ lose precision).
	Data any
}

// Len returns the number of elements, the product of Dims.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Dims {
		n *= d
	}
	return n
}

// Float64s returns the elements as float64.
func (a *Array) Float64s() []float64 {
	switch d := a.Data.(type) {
	case []float64:
		return d
	case []uint8:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}

// File is the numeric content of a MAT-file.
type File struct {
	// Header is the descriptive text of the header, trailing spaces removed.
	Header string
	// Arrays are the numeric arrays in file order.
	Arrays []*Array
	// Skipped names the arrays of other classes, as "name (class)".
	Skipped []string
}

// Get returns the named array, or an error listing the arrays present.
func (f *File) Get(name string) (*Array, error) {
	for _, a := range f.Arrays {
		if a.Name == name {
			return a, nil
		}
	}
	var have []string
	for _, a := range f.Arrays {
		have = append(have, fmt.Sprintf("%s %s%v", bounded.Name(a.Name), a.Class, a.Dims))
	}
	have = append(have, f.Skipped...)
	sort.Strings(have)
	if len(have) == 0 {
		return nil, fmt.Errorf("no array %q: the file holds no arrays", name)
	}
	return nil, fmt.Errorf("no array %q (the file holds %s)", name, strings.Join(have, ", "))
}

// maxBytes bounds any size read from a file (4 GiB), so that a corrupt size
// is an error rather than a huge allocation.
const maxBytes = 1 << 32

// maxArrayBytes bounds the memory of the arrays one file gives, together
// (4 GiB; SVHN's largest file, extra_32x32.mat, gives 1.3 GB). A variable so
// that tests can lower it.
var maxArrayBytes int64 = 1 << 32

// Read parses a whole MAT-file held in b.
func Read(b []byte) (*File, error) {
	if len(b) < 128 {
		return nil, fmt.Errorf("%d bytes, shorter than the 128-byte MAT-file header (truncated or not a MAT-file)", len(b))
	}
	if b[0] == 0 || b[1] == 0 || b[2] == 0 || b[3] == 0 {
		return nil, errors.New("not a level 5 MAT-file (a zero in the first 4 bytes means level 4, which is not supported)")
	}
	f := &File{Header: strings.TrimRight(string(b[:116]), " \x00")}
	var order binary.ByteOrder
	switch string(b[126:128]) {
	case "IM":
		order = binary.LittleEndian
	case "MI":
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a level 5 MAT-file: endian indicator %q, want \"IM\" or \"MI\" (header %q)", b[126:128], firstLine(f.Header))
	}
	if v := order.Uint16(b[124:126]); v != 0x0100 {
		if v == 0x0200 {
			return nil, errors.New("MAT-file v7.3 (HDF5) is not supported; save with -v7 or -v6")
		}
		return nil, fmt.Errorf("MAT-file version %#04x, want 0x0100", v)
	}
	p := &parser{order: order}
	rest := b[128:]
	off := 128
	for len(rest) > 0 {
		typ, data, next, err := p.element(rest, false)
		if err != nil {
			return nil, fmt.Errorf("data element at byte %d: %w", off, err)
		}
		switch typ {
		case miCOMPRESSED:
			if data, err = p.inflate(data); err != nil {
				return nil, fmt.Errorf("compressed element at byte %d: %w", off, err)
			}
		case miMATRIX:
		default:
			return nil, fmt.Errorf("top-level data element at byte %d has data type %d, want a matrix (%d) or compressed (%d)", off, typ, miMATRIX, miCOMPRESSED)
		}
		if err := p.matrix(f, data); err != nil {
			return nil, fmt.Errorf("array at byte %d: %w", off, err)
		}
		off += next
		rest = rest[next:]
	}
	return f, nil
}

// ReadFile reads the MAT-file at path. Errors name the file.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Read(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n,"); i >= 0 {
		return s[:i]
	}
	return s
}

type parser struct {
	order binary.ByteOrder
	// arrayBytes is the memory of the arrays decoded so far.
	arrayBytes int64
}

// inflate returns the data of the matrix element a compressed element
// holds. The zlib stream is read only as far as the element's tag
// announces, which must be within what its compressed bytes can inflate to
// (bounded.InflatedCap), through a bounded.LimitReader; memory grows as
// the bytes arrive. Up to 7 bytes of padding may follow the matrix.
func (p *parser) inflate(compressed []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, err
	}
	var tag [8]byte
	if _, err := io.ReadFull(zr, tag[:]); err != nil {
		return nil, zlibErr(err)
	}
	typ, n := p.order.Uint32(tag[:]), int64(p.order.Uint32(tag[4:]))
	if typ != miMATRIX {
		return nil, fmt.Errorf("holds data type %d, want a matrix (%d)", typ, miMATRIX)
	}
	if capacity := bounded.InflatedCap(int64(len(compressed))) - 8; n > capacity {
		return nil, fmt.Errorf("matrix declares %d bytes, more than %d compressed bytes can hold (corrupt)", n, len(compressed))
	}
	lr := bounded.LimitReader(zr, n+7, "the compressed matrix")
	data, err := bounded.ReadFull(lr, n)
	if err != nil {
		return nil, fmt.Errorf("matrix declares %d bytes, the stream holds %d: %w", n, len(data), zlibErr(err))
	}
	// Read to the stream's end, which checks its Adler-32 checksum.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return nil, fmt.Errorf("after the matrix: %w", zlibErr(err))
	}
	return data, nil
}

// zlibErr rewords the errors of a premature end of a zlib stream.
func zlibErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return errors.New("zlib stream ends early (truncated)")
	}
	return err
}

// element splits one data element off b: its type, its data, and the offset
// of what follows. Sub-elements (pad = true) are padded to 8 bytes; top-level
// ones are not (MATLAB sizes matrices in multiples of 8 and never pads
// compressed elements).
func (p *parser) element(b []byte, pad bool) (typ uint32, data []byte, next int, err error) {
	if len(b) < 8 {
		return 0, nil, 0, fmt.Errorf("%d bytes left, too few for an 8-byte tag (truncated)", len(b))
	}
	first := p.order.Uint32(b)
	if small := first >> 16; small != 0 {
		if small > 4 {
			return 0, nil, 0, fmt.Errorf("small data element declares %d bytes, at most 4 fit", small)
		}
		return first & 0xffff, b[4 : 4+small], 8, nil
	}
	n := uint64(p.order.Uint32(b[4:]))
	if n > maxBytes || 8+n > uint64(len(b)) {
		return 0, nil, 0, fmt.Errorf("data element of type %d declares %d bytes, %d remain (truncated)", first, n, len(b)-8)
	}
	next = 8 + int(n)
	if pad {
		next = min((next+7)&^7, len(b))
	}
	return first, b[8 : 8+n], next, nil
}

// matrix decodes the sub-elements of one miMATRIX element into f.
func (p *parser) matrix(f *File, b []byte) error {
	var subs [][]byte
	var types []uint32
	for len(b) > 0 && len(subs) < 4 {
		typ, data, next, err := p.element(b, true)
		if err != nil {
			return err
		}
		subs, types = append(subs, data), append(types, typ)
		b = b[next:]
	}
	if len(subs) < 3 {
		return fmt.Errorf("matrix has %d sub-elements, want array flags, dimensions and name", len(subs))
	}
	if types[0] != miUINT32 || len(subs[0]) < 8 {
		return fmt.Errorf("matrix does not start with array flags (type %d, %d bytes)", types[0], len(subs[0]))
	}
	flags := p.order.Uint32(subs[0])
	class := Class(flags & 0xff)
	complex := flags&0x0800 != 0
	if types[1] != miINT32 || len(subs[1])%4 != 0 || len(subs[1]) < 8 {
		return fmt.Errorf("matrix dimensions have type %d and %d bytes, want at least two int32", types[1], len(subs[1]))
	}
	dims := make([]int, len(subs[1])/4)
	var count int64 = 1
	for i := range dims {
		d := int32(p.order.Uint32(subs[1][4*i:]))
		if d < 0 {
			return fmt.Errorf("matrix dimension %d is negative (%d)", i, d)
		}
		dims[i] = int(d)
		count *= int64(d)
		if count > maxBytes {
			return fmt.Errorf("matrix dimensions %v are too large", dims[:i+1])
		}
	}
	if types[2] != miINT8 && types[2] != miUTF8 && types[2] != miUINT8 {
		return fmt.Errorf("matrix name has data type %d, want int8", types[2])
	}
	name := string(subs[2])
	if !class.numeric() {
		f.Skipped = append(f.Skipped, fmt.Sprintf("%s (%s)", bounded.Name(name), class))
		return nil
	}
	if complex {
		return fmt.Errorf("array %q is complex, which is not supported", name)
	}
	if len(subs) < 4 {
		return fmt.Errorf("array %q has no real part", name)
	}
	outBytes := 8 * count // float64
	if class == Uint8 {
		outBytes = count
	}
	if p.arrayBytes+outBytes > maxArrayBytes {
		return fmt.Errorf("array %q (%s%v) would take the file's arrays past %d bytes of memory", name, class, dims, maxArrayBytes)
	}
	data, err := p.numbers(subs[3], types[3], class, int(count))
	if err != nil {
		return fmt.Errorf("array %q (%s%v): %w", name, class, dims, err)
	}
	p.arrayBytes += outBytes
	f.Arrays = append(f.Arrays, &Array{Name: name, Class: class, Dims: dims, Data: data})
	return nil
}

// numbers converts count elements stored as data type typ to the class's Go
// representation.
func (p *parser) numbers(b []byte, typ uint32, class Class, count int) (any, error) {
	size, ok := typeSizes[typ]
	if !ok || typ == miUTF8 {
		return nil, fmt.Errorf("real part has data type %d, not a numeric type", typ)
	}
	if int64(len(b)) != int64(size)*int64(count) {
		return nil, fmt.Errorf("real part holds %d bytes, the dimensions need %d elements of %d bytes (%d)", len(b), count, size, size*count)
	}
	if class == Uint8 {
		if typ != miUINT8 {
			return nil, fmt.Errorf("uint8 array stored as data type %d, want uint8 (%d)", typ, miUINT8)
		}
		return b, nil // b is the file's (or inflated element's) own buffer, not reused
	}
	out := make([]float64, count)
	for i := range out {
		e := b[i*size:]
		switch typ {
		case miINT8:
			out[i] = float64(int8(e[0]))
		case miUINT8:
			out[i] = float64(e[0])
		case miINT16:
			out[i] = float64(int16(p.order.Uint16(e)))
		case miUINT16:
			out[i] = float64(p.order.Uint16(e))
		case miINT32:
			out[i] = float64(int32(p.order.Uint32(e)))
		case miUINT32:
			out[i] = float64(p.order.Uint32(e))
		case miSINGLE:
			out[i] = float64(math.Float32frombits(p.order.Uint32(e)))
		case miDOUBLE:
			out[i] = math.Float64frombits(p.order.Uint64(e))
		case miINT64:
			out[i] = float64(int64(p.order.Uint64(e)))
		case miUINT64:
			out[i] = float64(p.order.Uint64(e))
		}
	}
	return out, nil
}
