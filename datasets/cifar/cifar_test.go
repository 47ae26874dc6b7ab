package cifar

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/corrupt"
)

// record builds one record the way the CIFAR page describes it: label
// byte(s), then 1024 red, 1024 green and 1024 blue bytes. Pixel (c, y, x)
// of image id gets the value (id + 7c + 3y + x) mod 256, so every byte
// position is checkable.
func record(labels []byte, id int) []byte {
	r := append([]byte{}, labels...)
	for c := 0; c < 3; c++ {
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				r = append(r, byte(id+7*c+3*y+x))
			}
		}
	}
	return r
}

func pixel(id, c, y, x int) byte { return byte(id + 7*c + 3*y + x) }

// cifar10Files writes the CIFAR-10 binary layout: 5 training batches of 2
// records and a test batch of 1, labels chosen to cover 0 and 9.
func cifar10Files() map[string][]byte {
	files := map[string][]byte{}
	id := 0
	for b := 1; b <= 5; b++ {
		var f []byte
		for range 2 {
			f = append(f, record([]byte{byte(id % 10)}, id)...)
			id++
		}
		files[CIFAR10.Train[b-1]] = f
	}
	files["test_batch.bin"] = record([]byte{9}, 100)
	files["batches.meta.txt"] = []byte("airplane\nautomobile\n")
	return files
}

func checkCIFAR10(t *testing.T, train, test *Images) {
	t.Helper()
	if train.N != 10 || test.N != 1 {
		t.Fatalf("got %d train and %d test images, want 10 and 1", train.N, test.N)
	}
	for i := 0; i < 10; i++ {
		if int(train.Labels[i]) != i%10 {
			t.Errorf("train label %d = %d, want %d", i, train.Labels[i], i%10)
		}
		for _, p := range [][3]int{{0, 0, 0}, {1, 5, 7}, {2, 31, 31}} {
			got := train.Pixels[i*ImageBytes+p[0]*1024+p[1]*32+p[2]]
			if want := pixel(i, p[0], p[1], p[2]); got != want {
				t.Errorf("train image %d pixel %v = %d, want %d", i, p, got, want)
			}
		}
	}
	if test.Labels[0] != 9 || test.Pixels[2*1024+31*32+31] != pixel(100, 2, 31, 31) {
		t.Errorf("test image decoded wrong: label %d", test.Labels[0])
	}
}

func writeDir(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func tarGz(t testing.TB, folder string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: folder + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, n := range []string{"batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin", "train.bin", "test.bin"} {
		b, ok := files[n]
		if !ok {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: folder + "/" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCIFAR10DirAndTarball(t *testing.T) {
	files := cifar10Files()
	dir := t.TempDir()
	writeDir(t, dir, files)
	train, test, err := CIFAR10.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR10(t, train, test)

	tgz := filepath.Join(dir, CIFAR10.Tarball)
	os.WriteFile(tgz, tarGz(t, CIFAR10.Folder, files), 0o644)
	train, test, err = CIFAR10.ReadTarGzFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR10(t, train, test)
}

func TestCIFAR100FineLabels(t *testing.T) {
	files := map[string][]byte{
		"train.bin": append(record([]byte{19, 99}, 0), record([]byte{0, 42}, 1)...),
		"test.bin":  record([]byte{3, 7}, 2),
	}
	tgz := tarGz(t, CIFAR100.Folder, files)
	train, test, err := CIFAR100.ReadTarGz(bytes.NewReader(tgz), "mem.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 2 || train.Labels[0] != 99 || train.Labels[1] != 42 || test.Labels[0] != 7 {
		t.Errorf("fine labels: train %v test %v, want [99 42] [7]", train.Labels, test.Labels)
	}
	if got, want := train.Pixels[ImageBytes+1024+32+1], pixel(1, 1, 1, 1); got != want {
		t.Errorf("pixel = %d, want %d", got, want)
	}
}

func TestCorruptCIFAR(t *testing.T) {
	files := cifar10Files()
	good := tarGz(t, CIFAR10.Folder, files)

	short := cifar10Files()
	short["data_batch_3.bin"] = short["data_batch_3.bin"][:3073+100]
	badLabel := cifar10Files()
	badLabel["test_batch.bin"] = record([]byte{10}, 0)
	missing := cifar10Files()
	delete(missing, "data_batch_4.bin")
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-6] ^= 0xff

	dir := t.TempDir()
	tests := []struct {
		name, want string
		tgz        []byte
	}{
		{"short-record", "data_batch_3.bin: 3173 bytes is not a whole number of 3073-byte", tarGz(t, CIFAR10.Folder, short)},
		{"label-range", "test_batch.bin: record 0: label byte 0 is 10, want below 10", tarGz(t, CIFAR10.Folder, badLabel)},
		{"missing-member", "no data_batch_4.bin in the archive", tarGz(t, CIFAR10.Folder, missing)},
		{"truncated", "truncated", good[:len(good)/2]},
		{"bad-crc", "checksum", badCRC},
		{"not-gzip", "gzip", []byte("this is not an archive")},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name+".tar.gz")
		os.WriteFile(p, tt.tgz, 0o644)
		_, _, err := CIFAR10.ReadTarGzFile(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want it to name %s and contain %q", tt.name, err, p, tt.want)
		}
	}

	// The same faults in an extracted folder.
	for name, fs := range map[string]map[string][]byte{"short-record": short, "label-range": badLabel, "missing": missing} {
		d := filepath.Join(dir, name)
		writeDir(t, d, fs)
		if _, _, err := CIFAR10.ReadDir(d); err == nil || !strings.Contains(err.Error(), d) {
			t.Errorf("dir %s: error %v, want one naming a file in %s", name, err, d)
		}
	}
}

// zeros writes n zero bytes to w, a megabyte at a time.
func zeros(w io.Writer, n int64) {
	z := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(z)))
		w.Write(z[:k])
		n -= k
	}
}

// rawTarGz writes a .tar.gz of the given members; a member with data nil
// gets size zero bytes (a bomb, at gzip's ratio of about 1000).
func rawTarGz(t *testing.T, members []tarMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		size := int64(len(m.data))
		if m.data == nil {
			size = m.size
		}
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		if m.data == nil {
			zeros(tw, size)
		} else {
			tw.Write(m.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

type tarMember struct {
	name string
	data []byte
	size int64
}

// TestCorruptCorpus is the corpus of damaged CIFAR inputs: members that
// lie about their size, members over MaxRecords, a decompression bomb in a
// member the reader skips, duplicates, truncations and bit flips of the
// tarball, and oversized or damaged .bin files in a folder. Each must fail
// with a one-line error and no panic, without reading a bomb into memory.
func TestCorruptCorpus(t *testing.T) {
	defer func(old int64) { maxArchiveBytes = old }(maxArchiveBytes)
	maxArchiveBytes = 32 << 20 // the mechanism, at a size a test can afford

	files := cifar10Files()
	var members []tarMember
	for _, n := range append(append([]string{}, CIFAR10.Train...), CIFAR10.Test...) {
		members = append(members, tarMember{name: CIFAR10.Folder + "/" + n, data: files[n]})
	}
	good := rawTarGz(t, members)
	with := func(extra ...tarMember) []byte {
		return rawTarGz(t, append(append([]tarMember{}, members...), extra...))
	}
	replace := func(name string, m tarMember) []byte {
		ms := append([]tarMember{}, members...)
		for i := range ms {
			if path.Base(ms[i].name) == name {
				ms[i] = m
			}
		}
		return rawTarGz(t, ms)
	}

	// A header announcing 10 GB, with no data behind it.
	var lying bytes.Buffer
	zw := gzip.NewWriter(&lying)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/data_batch_1.bin", Typeflag: tar.TypeReg, Size: 10 << 30})
	tw.Flush()
	zw.Write(make([]byte, 1024))
	zw.Close()

	over := int64(MaxRecords+1) * int64(CIFAR10.RecordBytes())
	reject := []corrupt.Case{
		{Name: "member announces 10 GB", Data: lying.Bytes()},
		{Name: "member of MaxRecords+1 zero records", Data: replace("data_batch_2.bin", tarMember{name: "cifar-10-batches-bin/data_batch_2.bin", size: over})},
		{Name: "bomb in a skipped member", Data: with(tarMember{name: "cifar-10-batches-bin/junk", size: 40 << 20})},
		{Name: "bomb after the archive", Data: func() []byte {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
			tw := tar.NewWriter(zw)
			for _, m := range members {
				tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Size: int64(len(m.data))})
				tw.Write(m.data)
			}
			tw.Close()
			zeros(zw, 40<<20)
			zw.Close()
			return b.Bytes()
		}()},
		{Name: "duplicate member", Data: with(members[0])},
		{Name: "member name with a newline", Data: replace("test_batch.bin", tarMember{name: "cifar-10-batches-bin/x\n/test_batch.bin", data: []byte{1, 2, 3}})},
		{Name: "empty member", Data: replace("test_batch.bin", tarMember{name: "cifar-10-batches-bin/test_batch.bin", data: []byte{}})},
		{Name: "label out of range", Data: replace("test_batch.bin", tarMember{name: "cifar-10-batches-bin/test_batch.bin", data: record([]byte{200}, 0)})},
		{Name: "CIFAR-100 layout", Data: replace("test_batch.bin", tarMember{name: "cifar-10-batches-bin/test_batch.bin", data: record([]byte{1, 2}, 0)})},
		{Name: "tar without gzip", Data: func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: 1})
			tw.Write([]byte{0})
			tw.Close()
			return b.Bytes()
		}()},
		{Name: "gzip of garbage", Data: func() []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(bytes.Repeat([]byte("not a tar header "), 100))
			zw.Close()
			return b.Bytes()
		}()},
	}
	reject = append(reject, corrupt.Truncations(good, 2, 10, 20, len(good)-8, len(good)-4)...)
	// The gzip magic and method.
	reject = append(reject, corrupt.BitFlips(good, 0, 3)...)
	// The rest of gzip's header, and compressed bytes: no panic; most fail.
	survive := corrupt.BitFlips(good, 3, 200)

	var must, may corrupt.Tally
	must.RejectFiles(t, ".tar.gz", reject, func(path string) error { _, _, err := CIFAR10.ReadTarGzFile(path); return err })
	dir := t.TempDir()
	for _, c := range survive {
		may.Survive(t, c.Name, func() error { _, _, err := CIFAR10.ReadTarGz(bytes.NewReader(c.Data), "mem.tar.gz"); return err })
	}

	// .bin files in a folder: one over MaxRecords (sparse: no disk used),
	// empty, a partial record.
	for name, mk := range map[string]func(string) error{
		"bin over MaxRecords": func(p string) error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(over)
		},
		"empty bin":          func(p string) error { return os.WriteFile(p, nil, 0o644) },
		"partial record bin": func(p string) error { return os.WriteFile(p, files["test_batch.bin"][:100], 0o644) },
	} {
		d := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		writeDir(t, d, files)
		if err := mk(filepath.Join(d, "test_batch.bin")); err != nil {
			t.Fatal(err)
		}
		err := must.Reject(t, name, func() error { _, _, err := CIFAR10.ReadDir(d); return err })
		if err != nil && !strings.Contains(err.Error(), filepath.Join(d, "test_batch.bin")) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	must.Log(t, "CIFAR, must refuse")
	may.Log(t, "CIFAR, bit flips in the tarball's first 200 bytes")

	// The errors say what is wrong.
	for _, c := range reject[:3] {
		_, _, err := CIFAR10.ReadTarGz(bytes.NewReader(c.Data), "x.tar.gz")
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("%s: error %v, want it to say the size is over a bound", c.Name, err)
		}
	}
}

// FuzzReadTarGz feeds arbitrary bytes to the tarball reader.
func FuzzReadTarGz(f *testing.F) {
	f.Add(tarGz(f, CIFAR10.Folder, cifar10Files()))
	f.Add(tarGz(f, CIFAR10.Folder, map[string][]byte{"test_batch.bin": record([]byte{1}, 3)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []Variant{CIFAR10, CIFAR100} {
			train, test, err := v.ReadTarGz(bytes.NewReader(b), "fuzz.tar.gz")
			if err != nil {
				if strings.ContainsAny(err.Error(), "\r\n") {
					t.Fatalf("error of more than one line: %q", err)
				}
				continue
			}
			for _, im := range []*Images{train, test} {
				if len(im.Pixels) != im.N*ImageBytes || len(im.Labels) != im.N {
					t.Fatalf("%d images with %d pixels and %d labels", im.N, len(im.Pixels), len(im.Labels))
				}
			}
		}
	})
}
