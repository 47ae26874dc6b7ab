package idx

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/corrupt"
)

// labelFile is a 1-d IDX file of 3 labels, written byte by byte from the
// format description (magic 0x00000801, count 3 big-endian, then the bytes).
var labelFile = []byte{0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9}

// imageFile is a 3-d IDX file: 2 images of 2×3 pixels (magic 0x00000803).
var imageFile = []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
	1, 2, 3, 4, 5, 6,
	10, 20, 30, 40, 50, 255}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadPlainAndGzip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		for _, tt := range []struct {
			file []byte
			dims []int
			data []uint8
		}{
			{labelFile, []int{3}, []uint8{7, 0, 9}},
			{imageFile, []int{2, 2, 3}, []uint8{1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 255}},
		} {
			in := tt.file
			if compress {
				in = gz(t, in)
			}
			a, err := Read(bytes.NewReader(in))
			if err != nil {
				t.Fatalf("gzip=%v: %v", compress, err)
			}
			if !slices.Equal(a.Dims, tt.dims) || !bytes.Equal(a.Data, tt.data) {
				t.Errorf("gzip=%v: got dims %v data %v, want %v %v", compress, a.Dims, a.Data, tt.dims, tt.data)
			}
		}
	}
}

func TestWriteGivesTheFormatBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []int{2, 2, 3}, imageFile[16:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), imageFile) {
		t.Errorf("Write = % x, want % x", buf.Bytes(), imageFile)
	}
	if err := Write(&buf, []int{2, 2}, []uint8{1}); err == nil {
		t.Error("Write accepted 1 byte for dims [2 2]")
	}
}

// TestCorruptFiles is the corpus of broken files: each must fail with an
// error that says what is wrong and, through ReadFile, names the file.
func TestCorruptFiles(t *testing.T) {
	good := gz(t, imageFile)
	badCRC := slices.Clone(good)
	badCRC[len(badCRC)-6] ^= 0xff // inside the CRC-32 of the gzip trailer
	tests := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "truncated", nil},
		{"wrong-magic", "wrong magic number", append([]byte{0x12, 0x34}, imageFile[2:]...)},
		{"int32-type", "not unsigned byte", append([]byte{0, 0, 0x0c}, imageFile[3:]...)},
		{"zero-dims", "0 dimensions", []byte{0, 0, 8, 0}},
		{"short-header", "truncated", imageFile[:10]},
		{"short-data", "file holds 11 bytes", imageFile[:27]},
		{"trailing", "bytes follow", append(slices.Clone(imageFile), 0)},
		{"gzip-truncated", "gzip stream ends early", good[:len(good)/2]},
		{"gzip-no-trailer", "gzip stream ends early", good[:len(good)-8]},
		{"gzip-bad-crc", "checksum", badCRC},
		{"huge-header", "more than", []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2}},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name+".idx")
		if err := os.WriteFile(path, tt.file, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(path)
		if err == nil {
			t.Errorf("%s: read without error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q, want it to contain %q and the path", tt.name, err, tt.want)
		}
	}
}

// gzBomb returns a gzip file of an IDX header announcing dims, followed by
// n zero bytes (64 MiB of zeros compress to about 64 KiB).
func gzBomb(t *testing.T, dims []uint32, n int) []byte {
	t.Helper()
	hdr := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		hdr = binary.BigEndian.AppendUint32(hdr, d)
	}
	return gz(t, append(hdr, make([]byte, n)...))
}

// TestCorruptCorpus feeds damaged IDX files, plain and gzipped, to
// ReadFile: truncations, every bit of the plain header flipped, huge and
// overflowing dimensions, and gzip bombs. Each must fail with a one-line
// error naming the file and no panic. A header announcing more than the
// file can hold must fail before allocating (under 8 MiB in all); a bomb
// whose stream really holds what its header announces may cost that data
// (read in doubling chunks: under 3 times the announced size).
func TestCorruptCorpus(t *testing.T) {
	plain, zipped := imageFile, gz(t, imageFile)
	reject := []corrupt.Case{
		{Name: "dims 2^32-1 each", Data: []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}},
		{Name: "dims product just over the cap", Data: []byte{0, 0, 8, 2, 0, 1, 0, 0, 0, 0x80, 0, 1}},
		{Name: "255 dims of 2", Data: append([]byte{0, 0, 8, 255}, bytes.Repeat([]byte{0, 0, 0, 2}, 255)...)},
		{Name: "60000 images in 28 bytes", Data: []byte{0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3}},
		{Name: "gzip: 60000 images in a tiny stream", Data: gz(t, []byte{0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3})},
		{Name: "gzip bomb: 2^31 bytes announced, 64 MiB of zeros", Data: gzBomb(t, []uint32{1 << 31}, 64<<20)},
		{Name: "gzip bomb: 47 MB announced, 64 MiB of zeros", Data: gzBomb(t, []uint32{60000, 28, 28}, 64<<20)},
		{Name: "gzip bomb: 64 MiB announced, 1 KiB more", Data: gzBomb(t, []uint32{64 << 20}, 64<<20+1024)},
		{Name: "gzip: empty", Data: gz(t, nil)},
		{Name: "gzip of gzip", Data: gz(t, gz(t, imageFile))},
		{Name: "gzip: garbage after the stream", Data: append(bytes.Clone(zipped), 1, 2, 3)},
	}
	reject = append(reject, corrupt.Truncations(plain, 2, 3, 4, 8, 12, 15, 16, 17)...)
	reject = append(reject, corrupt.Truncations(zipped, 2, 10, len(zipped)-8, len(zipped)-4)...)
	// Every bit of the plain header: any change of magic, type, rank or a
	// size contradicts the file's length or format.
	reject = append(reject, corrupt.BitFlips(plain, 0, 16)...)
	// gzip's header fields (mtime, OS, flags) and the compressed bytes:
	// a flip must not panic; most fail the CRC.
	survive := corrupt.BitFlips(zipped, 0, len(zipped))

	var must, may corrupt.Tally
	for i, c := range reject {
		switch c.Name {
		case "gzip bomb: 47 MB announced, 64 MiB of zeros":
			reject[i].MaxAlloc = 3 * 60000 * 28 * 28
		case "gzip bomb: 64 MiB announced, 1 KiB more":
			reject[i].MaxAlloc = 3 * 64 << 20
		default:
			reject[i].MaxAlloc = 8 << 20
		}
	}
	must.RejectFiles(t, ".idx", reject, func(path string) error { _, err := ReadFile(path); return err })
	for _, c := range survive {
		may.Survive(t, c.Name, func() error {
			a, err := Read(bytes.NewReader(c.Data))
			if err == nil && (len(a.Data) != 12 || !slices.Equal(a.Dims, []int{2, 2, 3})) {
				// A flip in gzip's header fields leaves the data as it was.
				t.Errorf("%s: read dims %v and %d bytes", c.Name, a.Dims, len(a.Data))
			}
			return err
		})
	}
	must.Log(t, "IDX, must refuse")
	may.Log(t, "IDX, gzip bit flips")
}

// FuzzRead feeds arbitrary bytes to the IDX reader, with the size unknown
// and known.
func FuzzRead(f *testing.F) {
	f.Add(labelFile)
	f.Add(imageFile)
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(imageFile)
	w.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int64{-1, int64(len(b))} {
			a, err := read(bytes.NewReader(b), size)
			if err != nil {
				if strings.ContainsAny(err.Error(), "\r\n") {
					t.Fatalf("error of more than one line: %q", err)
				}
				continue
			}
			n := 1
			for _, d := range a.Dims {
				n *= d
			}
			if n != len(a.Data) {
				t.Fatalf("dims %v with %d bytes", a.Dims, len(a.Data))
			}
		}
	})
}
