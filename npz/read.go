package npz

import (
	"archive/zip"
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/internal/bounded"
)

// Reading treats every file as untrusted. A header may make the reader
// allocate no more than the bytes that can follow it: a .npy file's size,
// or for an archive member the least of its declared size and what its
// compressed bytes can inflate to (bounded.InflatedCap), read through an
// io.LimitReader. Where that bound is not a count of bytes really present
// (a member, a plain io.Reader), memory for the data grows as the bytes
// arrive. So a huge shape in a small file is an error naming the shape,
// never a huge allocation, a makeslice panic or a wrap to an empty array.
const (
	// MaxHeaderBytes bounds the header of format versions 2 and 3, whose
	// length field would allow 4 GiB (version 1's allows 64 KiB). NumPy
	// writes headers of a few hundred bytes and by default reads none
	// over 10000.
	MaxHeaderBytes = 1 << 20
	// maxDims is NumPy's limit on the number of dimensions (NPY_MAXDIMS).
	maxDims = 64
	// chunkBytes is how much data is read and decoded at a time.
	chunkBytes = 1 << 20
)

var (
	reDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	reFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// itemSizes are the dtypes read, by kind and size without byte order.
var itemSizes = map[string]int{"f4": 4, "f8": 8, "i8": 8, "i4": 4, "u1": 1, "b1": 1}

// ReadNPY reads one array in .npy format (versions 1, 2 and 3) from r.
// The input's size is unknown here, so memory for the data grows as the
// bytes arrive: a header announcing more than r holds fails when r ends.
func ReadNPY(r io.Reader) (*Array, error) {
	return readNPY(bufio.NewReaderSize(r, 1<<16), -1, false)
}

// ReadNPYFile reads the .npy file at path. Errors name the file.
func ReadNPYFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	a, err := readNPY(br, st.Size(), st.Mode().IsRegular())
	if err == nil {
		err = atEnd(br)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// readNPY reads one array from br, after which at most avail bytes follow
// (avail < 0: unknown). exact says that avail bytes are really there (a
// regular file's size), so that the data may be allocated at once.
func readNPY(br *bufio.Reader, avail int64, exact bool) (*Array, error) {
	h, prefix, err := readHeader(br, avail)
	if err != nil {
		return nil, err
	}
	a, descr, fortran, err := parseHeader(h)
	if err != nil {
		return nil, err
	}
	kind := strings.TrimLeft(descr, "<>|=")
	size, ok := itemSizes[kind]
	if !ok {
		return nil, fmt.Errorf("npy: unsupported dtype %s", quoteShort(descr))
	}
	n, ok := elements(a.Shape)
	if !ok || n > math.MaxInt/size {
		return nil, fmt.Errorf("npy: shape %v of %s is too large (its size overflows)", a.Shape, descr)
	}
	if rest := avail - prefix - int64(len(h)); avail >= 0 && int64(n)*int64(size) > rest {
		return nil, fmt.Errorf("npy: header declares %s%v = %d bytes of data, only %d bytes follow (truncated or corrupt)",
			descr, a.Shape, int64(n)*int64(size), rest)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if strings.HasPrefix(descr, ">") {
		order = binary.BigEndian
	}
	prealloc := min(n, chunkBytes/size)
	if exact {
		prealloc = n
	}
	switch kind {
	case "f4":
		a.Data, err = readElems[float32](br, order, n, prealloc, size)
	case "f8":
		a.Data, err = readElems[float64](br, order, n, prealloc, size)
	case "i8":
		a.Data, err = readElems[int64](br, order, n, prealloc, size)
	case "i4":
		a.Data, err = readElems[int32](br, order, n, prealloc, size)
	case "u1":
		a.Data, err = readElems[uint8](br, order, n, prealloc, size)
	case "b1":
		a.Data, err = readElems[bool](br, order, n, prealloc, size)
	}
	if err != nil {
		return nil, fmt.Errorf("npy: %s%v: %w", descr, a.Shape, err)
	}
	if fortran && len(a.Shape) > 1 {
		a.Data = fortranToC(a.Data, a.Shape)
	}
	return a, nil
}

// readHeader reads the magic, the version and the header (its text is
// returned), checking the header fits in the avail bytes that follow
// (avail < 0: unknown); prefix is the bytes before the header text.
func readHeader(br *bufio.Reader, avail int64) (h string, prefix int64, err error) {
	pre := make([]byte, 8)
	if _, err := io.ReadFull(br, pre); err != nil {
		return "", 0, fmt.Errorf("npy: reading magic: %w", short(err))
	}
	if string(pre[:6]) != magic {
		return "", 0, errors.New("npy: not a .npy file (bad magic)")
	}
	if pre[7] != 0 {
		return "", 0, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	var hlen int64
	switch pre[6] {
	case 1:
		var n uint16
		if err := binary.Read(br, binary.LittleEndian, &n); err != nil {
			return "", 0, fmt.Errorf("npy: reading header length: %w", short(err))
		}
		hlen, prefix = int64(n), 10
	case 2, 3:
		var n uint32
		if err := binary.Read(br, binary.LittleEndian, &n); err != nil {
			return "", 0, fmt.Errorf("npy: reading header length: %w", short(err))
		}
		hlen, prefix = int64(n), 12
		if hlen > MaxHeaderBytes {
			return "", 0, fmt.Errorf("npy: header of %d bytes, more than the %d allowed", hlen, MaxHeaderBytes)
		}
	default:
		return "", 0, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	if avail >= 0 && hlen > avail-prefix {
		return "", 0, fmt.Errorf("npy: header of %d bytes, only %d bytes follow (truncated)", hlen, max(avail-prefix, 0))
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return "", 0, fmt.Errorf("npy: reading header: %w", short(err))
	}
	return string(hdr), prefix, nil
}

// parseHeader reads the header's dict: the array's shape (in a new Array),
// its dtype descr, and whether its data is in Fortran order.
func parseHeader(h string) (a *Array, descr string, fortran bool, err error) {
	md, mf, ms := reDescr.FindStringSubmatch(h), reFortran.FindStringSubmatch(h), reShape.FindStringSubmatch(h)
	if md == nil || mf == nil || ms == nil {
		return nil, "", false, fmt.Errorf("npy: malformed header %s", quoteShort(strings.TrimSpace(h)))
	}
	a = &Array{}
	for _, f := range strings.Split(ms[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.Atoi(strings.TrimSuffix(f, "L"))
		if err != nil || d < 0 {
			return nil, "", false, fmt.Errorf("npy: bad shape (%s)", quoteShort(ms[1]))
		}
		if len(a.Shape) == maxDims {
			return nil, "", false, fmt.Errorf("npy: shape has more than %d dimensions", maxDims)
		}
		a.Shape = append(a.Shape, d)
	}
	return a, md[1], mf[1] == "True", nil
}

// readElems reads n elements of size bytes in the given byte order, a chunk
// at a time, into a slice that starts with room for prealloc elements and
// doubles as data arrives.
func readElems[T float32 | float64 | int64 | int32 | uint8 | bool](r io.Reader, order binary.ByteOrder, n, prealloc, size int) ([]T, error) {
	out := make([]T, 0, prealloc)
	buf := make([]byte, min(n, chunkBytes/size)*size)
	for len(out) < n {
		k := min(n-len(out), chunkBytes/size)
		b := buf[:k*size]
		if m, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("data ends after %d of %d elements: %w", len(out)+m/size, n, short(err))
		}
		if cap(out)-len(out) < k {
			grown := make([]T, len(out), min(n, max(2*cap(out), len(out)+k)))
			copy(grown, out)
			out = grown
		}
		if _, err := binary.Decode(b, order, out[len(out):len(out)+k]); err != nil {
			return nil, err
		}
		out = out[:len(out)+k]
	}
	return out, nil
}

// short rewords the errors io.ReadFull gives at a premature end.
func short(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return errors.New("input ends early (truncated)")
	}
	return err
}

// atEnd checks that nothing follows an array in br. Reaching the end also
// lets a zip member's reader check its CRC.
func atEnd(br *bufio.Reader) error {
	switch _, err := br.ReadByte(); {
	case err == nil:
		return errors.New("npy: bytes follow the array's data (corrupt file)")
	case err != io.EOF:
		return fmt.Errorf("npy: after the data: %w", err)
	}
	return nil
}

// quoteShort quotes s for an error message, on one line and cut to 100
// bytes.
func quoteShort(s string) string {
	if len(s) > 100 {
		return strconv.Quote(s[:100]) + "…"
	}
	return strconv.Quote(s)
}

// fortranToC reorders column-major data into row-major order.
func fortranToC(data any, shape []int) any {
	switch x := data.(type) {
	case []float32:
		return fromFortran(x, shape)
	case []float64:
		return fromFortran(x, shape)
	case []int64:
		return fromFortran(x, shape)
	case []int32:
		return fromFortran(x, shape)
	case []uint8:
		return fromFortran(x, shape)
	case []bool:
		return fromFortran(x, shape)
	}
	return data
}

// fromFortran returns x, stored column-major with the given shape, in
// row-major order, walking the Fortran offset along with the C index.
func fromFortran[T any](x []T, shape []int) []T {
	out := make([]T, len(x))
	idx := make([]int, len(shape))
	fstride := make([]int, len(shape))
	s := 1
	for k := range shape {
		fstride[k] = s
		s *= shape[k]
	}
	off := 0
	for i := range out {
		out[i] = x[off]
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k]++
			off += fstride[k]
			if idx[k] < shape[k] {
				break
			}
			off -= idx[k] * fstride[k]
			idx[k] = 0
		}
	}
	return out
}

// Read reads an .npz archive from r of the given size. Members must not
// overlap (an overlapping archive is a zip bomb), and each one's data is
// bounded as the package doc of reading says.
func Read(r io.ReaderAt, size int64) (*Archive, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("npz: %w", err)
	}
	if err := checkLayout(zr.File, size); err != nil {
		return nil, fmt.Errorf("npz: %w", err)
	}
	ar := &Archive{Arrays: map[string]*Array{}}
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, ".npy")
		if _, dup := ar.Arrays[name]; dup {
			return nil, fmt.Errorf("npz: %s: the archive holds the name twice", bounded.Name(f.Name))
		}
		a, err := readMember(f)
		if err != nil {
			return nil, fmt.Errorf("npz: %s: %w", bounded.Name(f.Name), err)
		}
		ar.Names = append(ar.Names, name)
		ar.Arrays[name] = a
	}
	return ar, nil
}

// checkLayout checks that every member's compressed bytes lie inside the
// archive and that no two members share bytes.
func checkLayout(files []*zip.File, size int64) error {
	type span struct {
		name       string
		start, end int64
	}
	spans := make([]span, 0, len(files))
	for _, f := range files {
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("%s: %w", bounded.Name(f.Name), err)
		}
		if f.CompressedSize64 > uint64(size) || off > size-int64(f.CompressedSize64) {
			return fmt.Errorf("%s: declares %d compressed bytes at byte %d, past the end of the %d-byte archive", bounded.Name(f.Name), f.CompressedSize64, off, size)
		}
		spans = append(spans, span{f.Name, off, off + int64(f.CompressedSize64)})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return fmt.Errorf("members %s and %s overlap (not an archive numpy writes)", bounded.Name(spans[i-1].name), bounded.Name(spans[i].name))
		}
	}
	return nil
}

// readMember reads one .npy member, through an io.LimitReader at the most
// bytes it can hold, and checks its CRC.
func readMember(f *zip.File) (*Array, error) {
	limit := int64(min(f.UncompressedSize64, math.MaxInt64))
	switch f.Method {
	case zip.Store:
		limit = min(limit, int64(f.CompressedSize64))
	case zip.Deflate:
		limit = min(limit, bounded.InflatedCap(int64(f.CompressedSize64)))
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// One byte over the limit lets the zip reader see its end (and check
	// the CRC), or readNPY see bytes it did not expect.
	br := bufio.NewReaderSize(io.LimitReader(rc, limit+1), 1<<16)
	a, err := readNPY(br, limit, false)
	if err != nil {
		return nil, err
	}
	if err := atEnd(br); err != nil {
		return nil, err
	}
	return a, nil
}

// ReadFile reads the .npz archive at path. Errors name the file.
func ReadFile(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ar, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ar, nil
}
