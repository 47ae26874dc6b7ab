package idx

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
