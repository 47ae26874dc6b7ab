package matv5

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/corrupt"
)

// The writer below follows MathWorks' level 5 description independently of
// the reader: it is the test's own encoder of the real layout.

type writer struct {
	order binary.ByteOrder
	buf   bytes.Buffer
}

func (w *writer) u32(v uint32) { binary.Write(&w.buf, w.order, v) }

func (w *writer) pad() {
	for w.buf.Len()%8 != 0 {
		w.buf.WriteByte(0)
	}
}

// elem writes a sub-element, in the small form when it fits in 4 bytes.
func (w *writer) elem(typ uint32, data []byte) {
	if len(data) <= 4 {
		w.u32(uint32(len(data))<<16 | typ)
		w.buf.Write(data)
		w.buf.Write(make([]byte, 4-len(data)))
		return
	}
	w.u32(typ)
	w.u32(uint32(len(data)))
	w.buf.Write(data)
	w.pad()
}

// matrix returns a complete miMATRIX element.
func matrix(order binary.ByteOrder, name string, class Class, flags uint32, dims []int, dataType uint32, data []byte) []byte {
	sub := &writer{order: order}
	fl := make([]byte, 8)
	order.PutUint32(fl, flags|uint32(class))
	sub.elem(miUINT32, fl)
	dm := make([]byte, 4*len(dims))
	for i, d := range dims {
		order.PutUint32(dm[4*i:], uint32(d))
	}
	sub.elem(miINT32, dm)
	sub.elem(miINT8, []byte(name))
	if data != nil {
		sub.elem(dataType, data)
	}
	top := &writer{order: order}
	top.u32(miMATRIX)
	top.u32(uint32(sub.buf.Len()))
	top.buf.Write(sub.buf.Bytes())
	return top.buf.Bytes()
}

func compressed(order binary.ByteOrder, m []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(m)
	zw.Close()
	w := &writer{order: order}
	w.u32(miCOMPRESSED)
	w.u32(uint32(z.Len()))
	w.buf.Write(z.Bytes())
	return w.buf.Bytes()
}

func header(order binary.ByteOrder) []byte {
	h := []byte("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2001")
	h = append(h, bytes.Repeat([]byte{' '}, 116-len(h))...)
	h = append(h, make([]byte, 8)...)
	v := make([]byte, 2)
	order.PutUint16(v, 0x0100)
	h = append(h, v...)
	if order == binary.LittleEndian {
		return append(h, 'I', 'M')
	}
	return append(h, 'M', 'I')
}

// svhnLike builds a file shaped like SVHN's: X uint8 [2,2,3,N] column-major
// (tiny images), y double [N,1] stored compactly as uint8 (as MATLAB does
// when the values fit), plus a char array the reader must skip.
func svhnLike(order binary.ByteOrder, compress bool) (file []byte, x []uint8, y []float64) {
	n := 2
	x = make([]uint8, 2*2*3*n)
	for i := range x {
		x[i] = uint8(3*i + 1)
	}
	y = []float64{10, 3}
	yb := []byte{10, 3}
	b := header(order)
	for _, m := range [][]byte{
		matrix(order, "X", Uint8, 0, []int{2, 2, 3, n}, miUINT8, x),
		matrix(order, "y", Double, 0, []int{n, 1}, miUINT8, yb),
		matrix(order, "note", 4, 0, []int{1, 2}, miUINT16, []byte{0, 'h', 0, 'i'}),
	} {
		if compress {
			m = compressed(order, m)
		}
		b = append(b, m...)
	}
	return b, x, y
}

func TestReadSVHNLayout(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, compress := range []bool{false, true} {
			b, x, y := svhnLike(order, compress)
			f, err := Read(b)
			if err != nil {
				t.Fatalf("%v compress=%v: %v", order, compress, err)
			}
			X, err := f.Get("X")
			if err != nil {
				t.Fatal(err)
			}
			if X.Class != Uint8 || !slices.Equal(X.Dims, []int{2, 2, 3, 2}) || !bytes.Equal(X.Data.([]uint8), x) {
				t.Errorf("%v compress=%v: X = %v %v %v", order, compress, X.Class, X.Dims, X.Data)
			}
			Y, err := f.Get("y")
			if err != nil {
				t.Fatal(err)
			}
			if Y.Class != Double || !slices.Equal(Y.Float64s(), y) {
				t.Errorf("%v compress=%v: y = %v %v", order, compress, Y.Class, Y.Data)
			}
			if !slices.Equal(f.Skipped, []string{"note (char)"}) {
				t.Errorf("skipped = %v", f.Skipped)
			}
			if !strings.HasPrefix(f.Header, "MATLAB 5.0 MAT-file") {
				t.Errorf("header %q", f.Header)
			}
		}
	}
}

func TestNumericStorageTypes(t *testing.T) {
	le := binary.LittleEndian
	enc := func(vs ...any) []byte {
		var b bytes.Buffer
		for _, v := range vs {
			binary.Write(&b, le, v)
		}
		return b.Bytes()
	}
	tests := []struct {
		name  string
		class Class
		typ   uint32
		data  []byte
		want  []float64
	}{
		{"i8", Int8, miINT8, enc(int8(-5), int8(7)), []float64{-5, 7}},
		{"i16", Int16, miINT16, enc(int16(-300), int16(300)), []float64{-300, 300}},
		{"u16", Double, miUINT16, enc(uint16(65535), uint16(1)), []float64{65535, 1}},
		{"i32", Int32, miINT32, enc(int32(-70000), int32(5)), []float64{-70000, 5}},
		{"u32", Uint32, miUINT32, enc(uint32(4000000000), uint32(0)), []float64{4e9, 0}},
		{"f32", Single, miSINGLE, enc(float32(0.5), float32(-2.25)), []float64{0.5, -2.25}},
		{"f64", Double, miDOUBLE, enc(math.Pi, -1e300), []float64{math.Pi, -1e300}},
		{"i64", Int64, miINT64, enc(int64(-1<<40), int64(3)), []float64{-1 << 40, 3}},
		{"u64", Uint64, miUINT64, enc(uint64(1<<50), uint64(9)), []float64{1 << 50, 9}},
	}
	b := header(le)
	for _, tt := range tests {
		b = append(b, matrix(le, tt.name, tt.class, 0, []int{1, 2}, tt.typ, tt.data)...)
	}
	f, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		a, err := f.Get(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Float64s(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCorruptFiles is the corpus of broken MAT-files; each error must say
// what is wrong and name the file.
func TestCorruptFiles(t *testing.T) {
	le := binary.LittleEndian
	good, _, _ := svhnLike(le, true)
	plain, _, _ := svhnLike(le, false)
	v73 := slices.Clone(good)
	le.PutUint16(v73[124:], 0x0200)
	badEndian := slices.Clone(good)
	copy(badEndian[126:], "XX")
	level4 := append(make([]byte, 4), good[4:]...)
	badZlib := slices.Clone(good)
	badZlib[128+8+2] ^= 0xff // first byte of the deflate data
	complexArr := append(header(le), matrix(le, "z", Double, 0x0800, []int{1, 1}, miDOUBLE, make([]byte, 8))...)
	sizeMismatch := append(header(le), matrix(le, "X", Uint8, 0, []int{2, 2}, miUINT8, []byte{1, 2, 3})...)
	noReal := append(header(le), matrix(le, "X", Uint8, 0, []int{2, 2}, miUINT8, nil)...)
	tests := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "shorter than the 128-byte", nil},
		{"level4", "level 4", level4},
		{"v73", "v7.3 (HDF5)", v73},
		{"bad-endian", "endian indicator", badEndian},
		{"truncated-plain", "truncated", plain[:len(plain)-20]},
		{"truncated-compressed", "truncated", good[:200]},
		{"bad-zlib", "compressed element at byte 128", badZlib},
		{"complex", "complex", complexArr},
		{"size-mismatch", "real part holds 3 bytes", sizeMismatch},
		{"no-real-part", "no real part", noReal},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name+".mat")
		os.WriteFile(p, tt.file, 0o644)
		_, err := ReadFile(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want it to name the file and contain %q", tt.name, err, tt.want)
		}
	}

	f, err := Read(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("labels"); err == nil || !strings.Contains(err.Error(), "X uint8[2 2 3 2], note (char), y double[2 1]") {
		t.Errorf("Get(labels): %v, want an error listing the arrays", err)
	}
}

// tag is an 8-byte element tag.
func tag(order binary.ByteOrder, typ, n uint32) []byte {
	b := make([]byte, 8)
	order.PutUint32(b, typ)
	order.PutUint32(b[4:], n)
	return b
}

// TestCorruptCorpus feeds damaged MAT-files to ReadFile: truncations of
// plain and compressed files, bit flips in the header and the first tags,
// lying sizes and dimensions, and zlib bombs. Each must fail with a one-line
// error naming the file, and no panic.
func TestCorruptCorpus(t *testing.T) {
	defer func(old int64) { maxArrayBytes = old }(maxArrayBytes)
	maxArrayBytes = 4 << 20 // the mechanism, at a size a test can afford

	le := binary.LittleEndian
	good, _, _ := svhnLike(le, true)
	plain, _, _ := svhnLike(le, false)
	withElems := func(elems ...[]byte) []byte { return slices.Concat(append([][]byte{header(le)}, elems...)...) }
	mat := func(name string, class Class, dims []int, typ uint32, data []byte) []byte {
		return matrix(le, name, class, 0, dims, typ, data)
	}
	zeros := make([]byte, 16<<20)
	// A valid uint8 matrix of 16 MiB of zeros, over the arrays' budget.
	bigMatrix := mat("X", Uint8, []int{16 << 20, 1}, miUINT8, zeros)

	reject := []corrupt.Case{
		{Name: "tag declares 4 GiB", Data: withElems(tag(le, miMATRIX, 0xffffffff), make([]byte, 64))},
		{Name: "small element over 4 bytes", Data: withElems(tag(le, 8<<16|miMATRIX, 0))},
		{Name: "top-level int32 element", Data: withElems(tag(le, miINT32, 8), make([]byte, 8))},
		{Name: "negative dimension", Data: withElems(mat("X", Uint8, []int{-1, 2}, miUINT8, []byte{1, 2}))},
		{Name: "dimensions overflow", Data: withElems(mat("X", Double, []int{1 << 30, 1 << 30, 1 << 30}, miUINT8, []byte{1}))},
		{Name: "one dimension", Data: withElems(mat("X", Uint8, []int{4}, miUINT8, []byte{1, 2, 3, 4}))},
		{Name: "data shorter than dims", Data: withElems(mat("X", Double, []int{3, 3}, miDOUBLE, make([]byte, 64)))},
		{Name: "char stored as real part", Data: withElems(mat("X", Double, []int{1, 2}, miUTF8, []byte("hi")))},
		{Name: "uint8 class stored as int16", Data: withElems(mat("X", Uint8, []int{1, 2}, miINT16, make([]byte, 4)))},
		{Name: "name with a newline, complex", Data: withElems(matrix(le, "x\ny", Double, 0x0800, []int{1, 1}, miDOUBLE, make([]byte, 8)))},
		{Name: "compressed: not zlib", Data: withElems(tag(le, miCOMPRESSED, 16), bytes.Repeat([]byte{0xaa}, 16))},
		{Name: "compressed: empty stream", Data: withElems(compressed(le, nil))},
		{Name: "compressed: holds an int32 element", Data: withElems(compressed(le, append(tag(le, miINT32, 4), 1, 2, 3, 4)))},
		{Name: "compressed: matrix declares 4 GiB", Data: withElems(compressed(le, append(tag(le, miMATRIX, 0xfffffff8), make([]byte, 1024)...)))},
		{Name: "zlib bomb: matrix declares 16 MiB of zeros", Data: withElems(compressed(le, append(tag(le, miMATRIX, 16<<20), zeros...)))},
		{Name: "zlib bomb: matrix declares 1 KiB, stream holds 16 MiB", Data: withElems(compressed(le, append(tag(le, miMATRIX, 1024), zeros...)))},
		{Name: "zlib bomb: a valid 16 MiB uint8 array", Data: withElems(compressed(le, bigMatrix))},
		{Name: "zlib stream cut after the matrix", Data: func() []byte {
			c := compressed(le, mat("X", Uint8, []int{2, 2}, miUINT8, []byte{1, 2, 3, 4}))
			c = c[:len(c)-4] // without the Adler-32
			le.PutUint32(c[4:], uint32(len(c)-8))
			return withElems(c)
		}()},
	}
	reject = append(reject, corrupt.Truncations(plain, 116, 124, 127, 129, 135, 136, 140, 150, 200)...)
	reject = append(reject, corrupt.Truncations(good, 129, 136, 140, 150, 200)...)
	// The version and endian indicator.
	reject = append(reject, corrupt.BitFlips(good, 124, 128)...)
	// Header text, the subsystem offset, the first tags and compressed bytes.
	survive := append(corrupt.BitFlips(plain, 0, 124), corrupt.BitFlips(plain, 128, 200)...)
	survive = append(survive, corrupt.BitFlips(good, 128, 180)...)

	var must, may corrupt.Tally
	must.RejectFiles(t, ".mat", reject, func(path string) error { _, err := ReadFile(path); return err })
	for _, c := range survive {
		may.Survive(t, c.Name, func() error {
			f, err := Read(c.Data)
			if err == nil {
				for _, a := range f.Arrays {
					if n := len(a.Float64s()); n != a.Len() {
						t.Errorf("%s: %s has dims %v and %d elements", c.Name, a.Name, a.Dims, n)
					}
				}
				if _, gerr := f.Get("no such array"); gerr == nil || strings.ContainsAny(gerr.Error(), "\r\n") {
					t.Errorf("%s: Get of a missing array: %v", c.Name, gerr)
				}
			}
			return err
		})
	}
	must.Log(t, "MAT v5, must refuse")
	may.Log(t, "MAT v5, bit flips")

	for name, want := range map[string]string{
		"compressed: matrix declares 4 GiB":                     "more than",
		"zlib bomb: matrix declares 1 KiB, stream holds 16 MiB": "holds more than 1031 bytes",
		"zlib bomb: a valid 16 MiB uint8 array":                 "past 4194304 bytes",
	} {
		for _, c := range reject {
			if c.Name == name {
				if _, err := Read(c.Data); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want it to contain %q", name, err, want)
				}
			}
		}
	}
}

// FuzzRead feeds arbitrary bytes to the MAT-file reader.
func FuzzRead(f *testing.F) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, compress := range []bool{false, true} {
			b, _, _ := svhnLike(order, compress)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(b)
		if err == nil {
			for _, a := range file.Arrays {
				if n := len(a.Float64s()); n != a.Len() {
					t.Fatalf("%q has dims %v and %d elements", a.Name, a.Dims, n)
				}
			}
			if _, gerr := file.Get("\x00"); gerr == nil || strings.ContainsAny(gerr.Error(), "\r\n") {
				t.Fatalf("Get of a missing array: %v", gerr)
			}
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
	})
}
