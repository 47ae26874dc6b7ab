package npz

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/corrupt"
)

// npyBytes returns a as a .npy file.
func npyBytes(t testing.TB, a *Array) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteNPY(&b, a); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawNPY builds a .npy file of format version 1 (or 2 when v2) from a
// header dict and data bytes, as the format description lays it out.
func rawNPY(dict string, v2 bool, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	h := dict + "\n"
	if v2 {
		b.Write([]byte{2, 0})
		binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	} else {
		b.Write([]byte{1, 0})
		binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

// TestCorruptNPY is the corpus of damaged .npy files: each must be
// refused with a one-line error and no panic, through ReadNPY (size
// unknown) and ReadNPYFile (size known). Huge shapes must also not
// allocate: the whole read stays under 8 MiB.
func TestCorruptNPY(t *testing.T) {
	good := npyBytes(t, &Array{Shape: []int{3, 4}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}})
	hdrEnd := len(good) - 48
	dict := func(descr, shape string) string {
		return fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape)
	}
	data16 := make([]byte, 16)
	reject := []corrupt.Case{
		{Name: "empty", Data: nil},
		{Name: "wrong magic", Data: append([]byte("\x93NUMPZ"), good[6:]...)},
		{Name: "zip file", Data: []byte("PK\x03\x04 not an npy")},
		{Name: "version 4", Data: append(append([]byte(magic), 4, 0), good[8:]...)},
		{Name: "v1 header longer than the file", Data: append(append([]byte(magic), 1, 0, 0xff, 0xff), good[10:]...)},
		{Name: "v2 header length 4 GiB", Data: append([]byte(magic), 2, 0, 0xff, 0xff, 0xff, 0xff, '{')},
		{Name: "v2 header over the cap", Data: rawNPY(dict("<f4", "1,")+strings.Repeat(" ", MaxHeaderBytes), true, data16)},
		{Name: "no descr", Data: rawNPY("{'fortran_order': False, 'shape': (4,), }", false, data16)},
		{Name: "no shape", Data: rawNPY("{'descr': '<f4', 'fortran_order': False, }", false, data16)},
		{Name: "complex dtype", Data: rawNPY(dict("<c16", "1,"), false, data16)},
		{Name: "object dtype", Data: rawNPY(dict("|O", "2,"), false, data16)},
		{Name: "float16 dtype", Data: rawNPY(dict("<f2", "8,"), false, data16)},
		{Name: "negative dim", Data: rawNPY(dict("<f4", "-1,"), false, data16)},
		{Name: "negative second dim", Data: rawNPY(dict("<f4", "2, -2"), false, data16)},
		{Name: "dim over int64", Data: rawNPY(dict("<f4", "99999999999999999999,"), false, data16)},
		{Name: "dims product overflows", Data: rawNPY(dict("<f8", "4294967296, 4294967296"), false, data16)},
		{Name: "bytes overflow", Data: rawNPY(dict("<f8", "2305843009213693952,"), false, data16)},
		{Name: "huge valid-looking shape", Data: rawNPY(dict("<f8", "1099511627776,"), false, data16)},
		{Name: "huge image shape", Data: rawNPY(dict("|u1", "60000000, 1, 28, 28"), false, data16)},
		{Name: "product wraps to zero", Data: rawNPY(dict("<f4", "4294967296, 4294967296, 4294967296, 4294967296"), false, data16)},
		{Name: "65 dims", Data: rawNPY(dict("|u1", strings.Repeat("1, ", 65)), false, data16)},
		{Name: "shape not numbers", Data: rawNPY(dict("<f4", "a, b"), false, data16)},
		{Name: "data one element short", Data: rawNPY(dict("<f4", "5,"), false, data16)},
		{Name: "bool data short", Data: rawNPY(dict("|b1", "17,"), false, data16)},
	}
	reject = append(reject, corrupt.Truncations(good, 6, 7, 8, 9, 10, hdrEnd/2, hdrEnd-1, hdrEnd, hdrEnd+1, hdrEnd+4)...)
	// The magic and version: any flip there is refused.
	reject = append(reject, corrupt.BitFlips(good, 0, 8)...)
	// A flip in the header length is refused where the file's size is
	// known; a stream may hold enough bytes for a shorter header.
	lengthFlips := corrupt.BitFlips(good, 8, 10)
	// Flips in the header text may still give a valid header.
	survive := corrupt.BitFlips(good, 10, hdrEnd)

	var must, may corrupt.Tally
	for i := range reject {
		reject[i].MaxAlloc = 8 << 20
		c := reject[i]
		if n := corrupt.Allocated(func() {
			must.Reject(t, c.Name+" (stream)", func() error { _, err := ReadNPY(bytes.NewReader(c.Data)); return err })
		}); n > c.MaxAlloc {
			t.Errorf("%s: ReadNPY allocated %d bytes for a %d-byte input", c.Name, n, len(c.Data))
		}
	}
	// Trailing bytes are refused where the file's end is known.
	files := append(append(reject, lengthFlips...), corrupt.Case{Name: "trailing byte", Data: append(bytes.Clone(good), 0)})
	must.RejectFiles(t, ".npy", files, func(path string) error { _, err := ReadNPYFile(path); return err })
	for _, c := range lengthFlips {
		may.Survive(t, c.Name+" (stream)", func() error { _, err := ReadNPY(bytes.NewReader(c.Data)); return err })
	}
	for _, c := range survive {
		may.Survive(t, c.Name, func() error {
			a, err := ReadNPY(bytes.NewReader(c.Data))
			if err == nil && dataLen(a.Data) != a.Len() {
				t.Errorf("%s: shape %v but %d elements", c.Name, a.Shape, dataLen(a.Data))
			}
			return err
		})
	}
	must.Log(t, "npy, must refuse")
	may.Log(t, "npy, bit flips that may leave a valid file")
}

// zipParts locates the fields of a one-member archive that the corpus
// edits: central directory entry and end record offsets.
type zipParts struct {
	b        []byte
	cd, eocd int
}

func parseZip(t *testing.T, b []byte) zipParts {
	t.Helper()
	cd := bytes.Index(b, []byte("PK\x01\x02"))
	eocd := bytes.LastIndex(b, []byte("PK\x05\x06"))
	if cd < 0 || eocd < 0 {
		t.Fatal("no central directory")
	}
	return zipParts{b: bytes.Clone(b), cd: cd, eocd: eocd}
}

func (z zipParts) put32(off int, v uint32) []byte {
	binary.LittleEndian.PutUint32(z.b[off:], v)
	return z.b
}

// withSecondEntry returns the archive with its central directory entry
// repeated under the name with its first byte changed: two members over the
// same bytes.
func (z zipParts) withSecondEntry() []byte {
	entry := z.b[z.cd:z.eocd]
	dup := bytes.Clone(entry)
	dup[46] ^= 1 // first byte of the name
	out := append(append(bytes.Clone(z.b[:z.eocd]), dup...), z.b[z.eocd:]...)
	e := len(out) - (len(z.b) - z.eocd)
	binary.LittleEndian.PutUint16(out[e+8:], 2)
	binary.LittleEndian.PutUint16(out[e+10:], 2)
	binary.LittleEndian.PutUint32(out[e+12:], uint32(2*len(entry)))
	return out
}

// zipOf writes one member named name with content, stored or deflated.
func zipOf(t testing.TB, name string, content []byte, method uint16) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCorruptNPZ is the corpus of damaged .npz archives: lying sizes,
// overlapping members, a deflate bomb under a huge shape, bad CRCs,
// truncations and bit flips in the zip structures.
func TestCorruptNPZ(t *testing.T) {
	arr := &Array{Shape: []int{4}, Data: []float64{1, 2, 3, 4}}
	member := npyBytes(t, arr)
	stored := zipOf(t, "a.npy", member, zip.Store)
	deflated := zipOf(t, "a.npy", member, zip.Deflate)
	for _, b := range [][]byte{stored, deflated} {
		if _, err := Read(bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("the valid archive: %v", err)
		}
	}
	sp, dp := parseZip(t, stored), parseZip(t, deflated)
	// Central directory entry fields: method +10, CRC +16, compressed
	// size +20, uncompressed size +24, local header offset +42.
	bigShape := rawNPY("{'descr': '<f8', 'fortran_order': False, 'shape': (268435456,), }", false, make([]byte, 64))

	// A deflate bomb: 64 MiB of zeros (about 64 KiB compressed) behind a
	// header that announces 2⁴⁰ elements, and a declared size of 2 GiB.
	zeros := make([]byte, 64<<20)
	bomb := parseZip(t, zipOf(t, "bomb.npy", append(rawNPY("{'descr': '|u1', 'fortran_order': False, 'shape': (1099511627776,), }", false, nil), zeros...), zip.Deflate))
	bombLie := bomb.put32(bomb.cd+24, 0x7fffffff)
	// The same bomb with an honest header and a declared size smaller than
	// what the stream holds.
	small := parseZip(t, zipOf(t, "bomb.npy", append(rawNPY(fmt.Sprintf("{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }", len(zeros)), false, nil), zeros...), zip.Deflate))
	smallLie := small.put32(small.cd+24, 1000)

	crc := bytes.Clone(stored)
	crc[bytes.Index(stored, member)+len(member)-4] ^= 0x40 // a data byte of the member: its CRC no longer matches

	var twoNames bytes.Buffer
	zw := zip.NewWriter(&twoNames)
	for range 2 {
		w, _ := zw.Create("x.npy")
		w.Write(member)
	}
	zw.Close()

	reject := []corrupt.Case{
		{Name: "empty", Data: nil},
		{Name: "not a zip", Data: member},
		{Name: "uncompressed size lies large (stored, huge shape)", Data: parseZip(t, zipOf(t, "a.npy", bigShape, zip.Store)).put32(parseZip(t, zipOf(t, "a.npy", bigShape, zip.Store)).cd+24, 0x7fffffff)},
		{Name: "uncompressed size lies small (stored)", Data: parseZip(t, stored).put32(sp.cd+24, 10)},
		{Name: "uncompressed size lies small (deflated)", Data: parseZip(t, deflated).put32(dp.cd+24, 10)},
		{Name: "compressed size past the end", Data: parseZip(t, stored).put32(sp.cd+20, 0x7fffffff)},
		{Name: "local header offset past the end", Data: parseZip(t, stored).put32(sp.cd+42, 0x7fffffff)},
		{Name: "unknown method", Data: func() []byte { z := parseZip(t, stored); z.b[z.cd+10] = 12; return z.b }()},
		{Name: "bad CRC", Data: crc},
		{Name: "wrong CRC in the directory", Data: parseZip(t, stored).put32(sp.cd+16, 0x12345678)},
		{Name: "overlapping members", Data: sp.withSecondEntry()},
		{Name: "deflate bomb under a huge shape", Data: bombLie},
		{Name: "deflate bomb, declared size small", Data: smallLie},
		{Name: "duplicate names", Data: twoNames.Bytes()},
		{Name: "member not an array", Data: zipOf(t, "notes.txt", []byte("hello"), zip.Store)},
		{Name: "member name with a newline", Data: zipOf(t, "x\n.npy", []byte("bad"), zip.Store)},
		{Name: "member with bytes after its array", Data: zipOf(t, "a.npy", append(bytes.Clone(member), 1, 2, 3), zip.Deflate)},
	}
	reject = append(reject, corrupt.Truncations(stored, 4, 30, sp.cd-1, sp.cd, sp.cd+10, sp.eocd, sp.eocd+10)...)
	reject = append(reject, corrupt.Truncations(deflated, dp.cd, dp.eocd)...)
	// Signatures of the local header, the directory entry and the end record.
	reject = append(reject, corrupt.BitFlips(stored, 0, 4)...)
	survive := append(corrupt.BitFlips(stored, 4, 30), corrupt.BitFlips(stored, sp.cd, sp.cd+46)...)
	survive = append(survive, corrupt.BitFlips(deflated, 30, dp.cd)...)

	var must, may corrupt.Tally
	for i := range reject {
		reject[i].MaxAlloc = 16 << 20
	}
	must.RejectFiles(t, ".npz", reject, func(path string) error { _, err := ReadFile(path); return err })
	for _, c := range survive {
		may.Survive(t, c.Name, func() error { _, err := Read(bytes.NewReader(c.Data), int64(len(c.Data))); return err })
	}
	must.Log(t, "npz, must refuse")
	may.Log(t, "npz, bit flips in zip structures")

	// The errors name the member and say what is wrong.
	_, err := Read(bytes.NewReader(bombLie), int64(len(bombLie)))
	if err == nil || !strings.Contains(err.Error(), "bomb.npy") || !strings.Contains(err.Error(), "1099511627776") {
		t.Errorf("bomb: error %v, want it to name the member and the shape", err)
	}
}

// TestHonestBombReads checks that the bounds refuse no real array: the
// 64 MiB of zeros of the bomb above read back when the header and the zip
// sizes tell the truth.
func TestHonestBombReads(t *testing.T) {
	zeros := make([]byte, 64<<20)
	b := zipOf(t, "z.npy", npyBytes(t, &Array{Shape: []int{len(zeros)}, Data: zeros}), zip.Deflate)
	ar, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got := ar.Arrays["z"]; got.Len() != len(zeros) || dataLen(got.Data) != len(zeros) {
		t.Errorf("read %v, want %d elements", got.Shape, len(zeros))
	}
}

// TestFortran3D checks the Fortran-order reordering on three dimensions
// against element-by-element index arithmetic.
func TestFortran3D(t *testing.T) {
	f := make([]int32, 24) // f[i + 2j + 6k] = value of element (i, j, k)
	for i := range 2 {
		for j := range 3 {
			for k := range 4 {
				f[i+2*j+6*k] = int32(100*i + 10*j + k)
			}
		}
	}
	var body bytes.Buffer
	binary.Write(&body, binary.LittleEndian, f)
	a, err := ReadNPY(bytes.NewReader(rawNPY("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }", false, body.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	got := a.Data.([]int32)
	for i := range 2 {
		for j := range 3 {
			for k := range 4 {
				if v := got[12*i+4*j+k]; v != int32(100*i+10*j+k) {
					t.Errorf("element (%d,%d,%d) = %d, want %d", i, j, k, v, 100*i+10*j+k)
				}
			}
		}
	}
}
