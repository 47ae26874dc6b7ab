package datasets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hessian-spectra/runner/datasets/download"
	"github.com/hessian-spectra/runner/datasets/idx"
	"github.com/hessian-spectra/runner/npz"
)

// rawPixel is the value test images carry at image i, channel c, row y,
// column x, so every position can be checked.
func rawPixel(i, c, y, x int) uint8 { return uint8(i*31 + c*17 + y*5 + x*3 + 1) }

func rawImages(n, c, size int) []uint8 {
	out := make([]uint8, 0, n*c*size*size)
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					out = append(out, rawPixel(i, ch, y, x))
				}
			}
		}
	}
	return out
}

func writeIDX(t *testing.T, path string, dims []int, data []uint8, gz bool) {
	t.Helper()
	var buf bytes.Buffer
	if gz {
		zw := gzip.NewWriter(&buf)
		idx.Write(zw, dims, data)
		zw.Close()
	} else {
		idx.Write(&buf, dims, data)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mnistDir writes the four IDX files (uncompressed, so the names without
// .gz): 3 training images with labels 0, 9, 4 and 2 test images.
func mnistDir(t *testing.T) string {
	dir := t.TempDir()
	writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte"), []int{3, 28, 28}, rawImages(3, 1, 28), false)
	writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte"), []int{3}, []uint8{0, 9, 4}, false)
	writeIDX(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), []int{2, 28, 28}, rawImages(2, 1, 28), false)
	writeIDX(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), []int{2}, []uint8{7, 7}, false)
	return dir
}

func mustLookup(t *testing.T, name string) Info {
	t.Helper()
	info, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// writeAndLoad round-trips a Set through an artifact directory.
func writeAndLoad(t *testing.T, s *Set) (*Dataset, string) {
	t.Helper()
	dir := t.TempDir()
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	ds, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ds, dir
}

// checkNormalised checks every pixel of a loaded split against the raw
// generator: padded positions are Normalize(0), the others
// Normalize(rawPixel), with each channel's own constants.
func checkNormalised(t *testing.T, sp *Split, info Info, rawSize int, ids []int) {
	t.Helper()
	pad := (sp.H - rawSize) / 2
	for k, id := range ids {
		img := sp.Image(k)
		for c := 0; c < sp.C; c++ {
			for y := 0; y < sp.H; y++ {
				for x := 0; x < sp.W; x++ {
					var v uint8
					if y >= pad && y < pad+rawSize && x >= pad && x < pad+rawSize {
						v = rawPixel(id, c, y-pad, x-pad)
					}
					want := Normalize(v, info.Mean[c], info.Std[c])
					if got := img[(c*sp.H+y)*sp.W+x]; got != want {
						t.Fatalf("image %d (%d) pixel c%d y%d x%d = %v, want %v", k, id, c, y, x, got, want)
					}
				}
			}
		}
	}
}

func TestMNISTDir(t *testing.T) {
	info := mustLookup(t, "MNIST")
	s, err := ReadDir(info, mnistDir(t), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, dir := writeAndLoad(t, s)
	if ds.Train.N != 3 || ds.Test.N != 2 || ds.Train.C != 1 || ds.Train.H != 32 {
		t.Fatalf("splits %+v %+v", ds.Train.N, ds.Test.N)
	}
	checkNormalised(t, ds.Train, info, 28, []int{0, 1, 2})
	checkNormalised(t, ds.Test, info, 28, []int{0, 1})
	if !slices.Equal(ds.Train.Y, []int32{0, 9, 4}) || !slices.Equal(ds.Test.Y, []int32{7, 7}) {
		t.Errorf("labels %v %v", ds.Train.Y, ds.Test.Y)
	}
	// meta.json as a reader in another language sees it.
	var m map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	tr := m["train"].(map[string]any)
	if m["dataset"] != "MNIST" || m["classes"] != 10.0 || m["pad"] != 2.0 || tr["n"] != 3.0 ||
		!slices.Equal(toInts(tr["label_counts"]), []int{1, 0, 0, 0, 1, 0, 0, 0, 0, 1}) {
		t.Errorf("meta.json %s", b)
	}
	src := m["source"].(map[string]any)
	if src["kind"] != "dir" || len(src["files"].([]any)) != 4 {
		t.Errorf("meta.json source %v", src)
	}
}

func toInts(v any) []int {
	var out []int
	for _, x := range v.([]any) {
		out = append(out, int(x.(float64)))
	}
	return out
}

func TestLimit(t *testing.T) {
	s, err := ReadDir(mustLookup(t, "MNIST"), mnistDir(t), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Limit(2, 0)
	ds, _ := writeAndLoad(t, s)
	if ds.Train.N != 2 || ds.Test.N != 2 || !slices.Equal(ds.Train.Y, []int32{0, 9}) ||
		!slices.Equal(ds.Meta.Train.LabelCounts, []int{1, 0, 0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("limited: %d %d %v %v", ds.Train.N, ds.Test.N, ds.Train.Y, ds.Meta.Train.LabelCounts)
	}
}

// TestBadFolders is the corpus of broken IDX folders: each error names the
// file and says what is wrong.
func TestBadFolders(t *testing.T) {
	info := mustLookup(t, "FashionMNIST")
	tests := []struct {
		name   string
		break_ func(dir string)
		want   []string
	}{
		{"missing-split", func(d string) { os.Remove(filepath.Join(d, "t10k-labels-idx1-ubyte")) },
			[]string{"lacks t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte"}},
		{"count-mismatch", func(d string) {
			writeIDX(t, filepath.Join(d, "train-labels-idx1-ubyte"), []int{2}, []uint8{1, 2}, false)
		}, []string{"train-images-idx3-ubyte holds 3 images but", "train-labels-idx1-ubyte holds 2 labels"}},
		{"label-range", func(d string) {
			writeIDX(t, filepath.Join(d, "t10k-labels-idx1-ubyte"), []int{2}, []uint8{1, 10}, false)
		}, []string{"t10k-labels-idx1-ubyte: label 10 of image 1 is outside 0…9"}},
		{"image-size", func(d string) {
			writeIDX(t, filepath.Join(d, "t10k-images-idx3-ubyte"), []int{2, 32, 32}, make([]uint8, 2048), false)
		}, []string{"t10k-images-idx3-ubyte: images have dimensions [2 32 32], want [N 28 28]"}},
		{"wrong-magic", func(d string) {
			os.WriteFile(filepath.Join(d, "train-images-idx3-ubyte"), []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0o644)
		}, []string{"train-images-idx3-ubyte: wrong magic number"}},
		{"truncated-gzip", func(d string) {
			p := filepath.Join(d, "train-images-idx3-ubyte")
			os.Remove(p)
			writeIDX(t, p+".gz", []int{3, 28, 28}, rawImages(3, 1, 28), true)
			b, _ := os.ReadFile(p + ".gz")
			os.WriteFile(p+".gz", b[:len(b)/2], 0o644)
		}, []string{"train-images-idx3-ubyte.gz: header declares", "gzip stream ends early"}},
	}
	for _, tt := range tests {
		dir := mnistDir(t)
		tt.break_(dir)
		_, err := ReadDir(info, dir, false, nil)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range append(tt.want, dir) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.name, err, w)
			}
		}
	}
	if _, err := ReadDir(info, filepath.Join(t.TempDir(), "nope"), false, nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing folder: %v", err)
	}
}

// cifarRecords builds n records of the CIFAR binary layout.
func cifarRecords(labelBytes int, labels []uint8, first int) []byte {
	var b []byte
	for k, l := range labels {
		if labelBytes == 2 {
			b = append(b, l/5) // coarse label
		}
		b = append(b, l)
		b = append(b, rawImages(first+k+1, 3, 32)[(first+k)*3072:]...)
	}
	return b
}

func TestCIFARSources(t *testing.T) {
	// CIFAR-10: 5 train batches of one record each, a test batch of two.
	files := map[string][]byte{"test_batch.bin": cifarRecords(1, []uint8{3, 8}, 5), "batches.meta.txt": []byte("airplane\n")}
	for b := 0; b < 5; b++ {
		files[filepath.Base("data_batch_"+string(rune('1'+b))+".bin")] = cifarRecords(1, []uint8{uint8(b * 2)}, b)
	}
	root := t.TempDir()
	bin := filepath.Join(root, "cifar-10-batches-bin")
	os.MkdirAll(bin, 0o755)
	for n, b := range files {
		os.WriteFile(filepath.Join(bin, n), b, 0o644)
	}
	tgzDir := t.TempDir()
	tgz := filepath.Join(tgzDir, "cifar-10-binary.tar.gz")
	writeTarGz(t, tgz, "cifar-10-batches-bin", files)
	info := mustLookup(t, "CIFAR10")
	for _, path := range []string{bin, root, tgz, tgzDir} {
		s, err := ReadDir(info, path, false, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ds, _ := writeAndLoad(t, s)
		if !slices.Equal(ds.Train.Y, []int32{0, 2, 4, 6, 8}) || !slices.Equal(ds.Test.Y, []int32{3, 8}) {
			t.Errorf("%s: labels %v %v", path, ds.Train.Y, ds.Test.Y)
		}
		checkNormalised(t, ds.Train, info, 32, []int{0, 1, 2, 3, 4})
		checkNormalised(t, ds.Test, info, 32, []int{5, 6})
	}
	if _, err := ReadDir(info, t.TempDir(), false, nil); err == nil || !strings.Contains(err.Error(), "found none of") {
		t.Errorf("empty folder: %v", err)
	}

	// CIFAR-100: fine labels.
	f100 := map[string][]byte{"train.bin": cifarRecords(2, []uint8{99, 0, 42}, 0), "test.bin": cifarRecords(2, []uint8{17}, 3)}
	tgz100 := filepath.Join(t.TempDir(), "cifar-100-binary.tar.gz")
	writeTarGz(t, tgz100, "cifar-100-binary", f100)
	info100 := mustLookup(t, "CIFAR100")
	s, err := ReadDir(info100, tgz100, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := writeAndLoad(t, s)
	if !slices.Equal(ds.Train.Y, []int32{99, 0, 42}) || !slices.Equal(ds.Test.Y, []int32{17}) || ds.Meta.Classes != 100 {
		t.Errorf("CIFAR100 labels %v %v", ds.Train.Y, ds.Test.Y)
	}
	checkNormalised(t, ds.Train, info100, 32, []int{0, 1, 2})
}

func writeTarGz(t *testing.T, path, folder string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: folder + "/" + n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// svhnMat writes a compressed little-endian MAT v5 file in SVHN's layout:
// X uint8 [32,32,3,N] column-major, so X[h,w,c,n] = rawPixel(first+n,c,h,w),
// and y double [N,1].
func svhnMat(t *testing.T, path string, first int, labels []float64, xName string) {
	t.Helper()
	n := len(labels)
	le := binary.LittleEndian
	x := make([]uint8, 32*32*3*n)
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			for w := 0; w < 32; w++ {
				for h := 0; h < 32; h++ {
					x[h+32*w+1024*c+3072*i] = rawPixel(first+i, c, h, w)
				}
			}
		}
	}
	yb := new(bytes.Buffer)
	binary.Write(yb, le, labels)
	elem := func(b *bytes.Buffer, typ uint32, data []byte) {
		if len(data) <= 4 {
			binary.Write(b, le, uint32(len(data))<<16|typ)
			b.Write(append(data, make([]byte, 4-len(data))...))
			return
		}
		binary.Write(b, le, typ)
		binary.Write(b, le, uint32(len(data)))
		b.Write(data)
		for b.Len()%8 != 0 {
			b.WriteByte(0)
		}
	}
	matrix := func(name string, class uint32, dims []int, typ uint32, data []byte) []byte {
		var sub bytes.Buffer
		fl := make([]byte, 8)
		le.PutUint32(fl, class)
		elem(&sub, 6, fl)
		dm := make([]byte, 4*len(dims))
		for i, d := range dims {
			le.PutUint32(dm[4*i:], uint32(d))
		}
		elem(&sub, 5, dm)
		elem(&sub, 1, []byte(name))
		elem(&sub, typ, data)
		var m bytes.Buffer
		binary.Write(&m, le, uint32(14))
		binary.Write(&m, le, uint32(sub.Len()))
		m.Write(sub.Bytes())
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(m.Bytes())
		zw.Close()
		var out bytes.Buffer
		binary.Write(&out, le, uint32(15))
		binary.Write(&out, le, uint32(z.Len()))
		out.Write(z.Bytes())
		return out.Bytes()
	}
	hdr := []byte("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015")
	hdr = append(hdr, bytes.Repeat([]byte{' '}, 116-len(hdr))...)
	hdr = append(hdr, make([]byte, 8)...)
	hdr = append(hdr, 0x00, 0x01, 'I', 'M')
	file := append(hdr, matrix(xName, 9, []int{32, 32, 3, n}, 2, x)...)
	file = append(file, matrix("y", 6, []int{n, 1}, 9, yb.Bytes())...)
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSVHNDir(t *testing.T) {
	dir := t.TempDir()
	svhnMat(t, filepath.Join(dir, "train_32x32.mat"), 0, []float64{10, 1, 9}, "X")
	svhnMat(t, filepath.Join(dir, "test_32x32.mat"), 3, []float64{5, 10}, "X")
	info := mustLookup(t, "SVHN")
	for _, legacy := range []bool{false, true} {
		s, err := ReadDir(info, dir, legacy, nil)
		if err != nil {
			t.Fatal(err)
		}
		ds, _ := writeAndLoad(t, s)
		// Label 10 is the digit 0.
		if !slices.Equal(ds.Train.Y, []int32{0, 1, 9}) || !slices.Equal(ds.Test.Y, []int32{5, 0}) {
			t.Errorf("labels %v %v", ds.Train.Y, ds.Test.Y)
		}
		wantClasses := map[bool]int{false: 10, true: 11}[legacy]
		if ds.Meta.Classes != wantClasses || len(ds.Meta.Train.LabelCounts) != wantClasses || ds.Meta.Legacy != legacy {
			t.Errorf("legacy=%v: classes %d, counts %v", legacy, ds.Meta.Classes, ds.Meta.Train.LabelCounts)
		}
		// [n,c,h,w] = X[h,w,c,n]: torchvision's transpose(3, 2, 0, 1).
		checkNormalised(t, ds.Train, info, 32, []int{0, 1, 2})
		checkNormalised(t, ds.Test, info, 32, []int{3, 4})
	}

	os.Remove(filepath.Join(dir, "test_32x32.mat"))
	if _, err := ReadDir(info, dir, false, nil); err == nil || !strings.Contains(err.Error(), "lacks test_32x32.mat") {
		t.Errorf("missing test file: %v", err)
	}
	svhnMat(t, filepath.Join(dir, "test_32x32.mat"), 3, []float64{5, 10}, "images")
	if _, err := ReadDir(info, dir, false, nil); err == nil || !strings.Contains(err.Error(), `test_32x32.mat: no array "X" (the file holds images uint8[32 32 3 2], y double[2 1])`) {
		t.Errorf("MAT file without X: %v", err)
	}
	svhnMat(t, filepath.Join(dir, "test_32x32.mat"), 3, []float64{5, 11}, "X")
	if _, err := ReadDir(info, dir, false, nil); err == nil || !strings.Contains(err.Error(), "test_32x32.mat: label 11 of image 1") {
		t.Errorf("label 11: %v", err)
	}
}

func writeNPZ(t *testing.T, arrays ...npz.Named) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.npz")
	if err := npz.WriteFile(p, arrays); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNPZSource(t *testing.T) {
	info := mustLookup(t, "FashionMNIST")
	// Raw uint8 [N,28,28] train and test.
	p := writeNPZ(t,
		npz.Named{Name: "x", Array: &npz.Array{Shape: []int{3, 28, 28}, Data: rawImages(3, 1, 28)}},
		npz.Named{Name: "y", Array: &npz.Array{Shape: []int{3}, Data: []int64{1, 2, 3}}},
		npz.Named{Name: "x_test", Array: &npz.Array{Shape: []int{1, 1, 28, 28}, Data: rawImages(1, 1, 28)}},
		npz.Named{Name: "y_test", Array: &npz.Array{Shape: []int{1}, Data: []uint8{9}}},
	)
	s, err := ReadNPZ(info, p, false)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := writeAndLoad(t, s)
	checkNormalised(t, ds.Train, info, 28, []int{0, 1, 2})
	if !slices.Equal(ds.Train.Y, []int32{1, 2, 3}) || ds.Test.N != 1 || ds.Test.Y[0] != 9 || ds.Meta.Source.Kind != "npz" {
		t.Errorf("npz uint8: %v %v %+v", ds.Train.Y, ds.Test.Y, ds.Meta.Source)
	}

	// The PyTorch fixture: float32, already normalised, no test arrays.
	s, err = ReadNPZ(info, "../testdata/lenet-fmnist/subset.npz", false)
	if err != nil {
		t.Fatal(err)
	}
	ds, dir := writeAndLoad(t, s)
	fx, _ := npz.ReadFile("../testdata/lenet-fmnist/subset.npz")
	if !slices.Equal(ds.Train.X, fx.Arrays["x"].Data.([]float32)) || ds.Meta.Pixels != "float32" ||
		!ds.Meta.Test.SameAsTrain || ds.Test.N != 100 {
		t.Errorf("fixture npz not taken as is: pixels %s, test same %v", ds.Meta.Pixels, ds.Meta.Test.SameAsTrain)
	}
	if x, _ := npz.ReadNPYFile(filepath.Join(dir, "train_x.npy")); x == nil || x.Data.([]float32) == nil {
		t.Error("float32 pixels not stored as float32")
	}

	bad := []struct {
		want   string
		arrays []npz.Named
	}{
		{"want arrays x and y", []npz.Named{{Name: "images", Array: &npz.Array{Shape: []int{1}, Data: []uint8{1}}}}},
		{"dtype <f8", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 1, 32, 32}, Data: make([]float64, 1024)}},
			{Name: "y", Array: &npz.Array{Shape: []int{1}, Data: []int64{0}}}}},
		{"want 28×28 (raw) or 32×32 (padded)", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 30, 30}, Data: make([]uint8, 900)}},
			{Name: "y", Array: &npz.Array{Shape: []int{1}, Data: []int64{0}}}}},
		{"normalised images must be 32×32", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 28, 28}, Data: make([]float32, 784)}},
			{Name: "y", Array: &npz.Array{Shape: []int{1}, Data: []int64{0}}}}},
		{"label 10 of image 0", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 28, 28}, Data: make([]uint8, 784)}},
			{Name: "y", Array: &npz.Array{Shape: []int{1}, Data: []int64{10}}}}},
		{"labels for x have shape [2], want [1]", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 28, 28}, Data: make([]uint8, 784)}},
			{Name: "y", Array: &npz.Array{Shape: []int{2}, Data: []int64{0, 1}}}}},
		{"only one of x_test and y_test", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 28, 28}, Data: make([]uint8, 784)}},
			{Name: "y", Array: &npz.Array{Shape: []int{1}, Data: []int64{0}}},
			{Name: "x_test", Array: &npz.Array{Shape: []int{1, 28, 28}, Data: make([]uint8, 784)}}}},
		{"want [N,1,H,W]", []npz.Named{
			{Name: "x", Array: &npz.Array{Shape: []int{1, 3, 28, 28}, Data: make([]uint8, 3*784)}},
			{Name: "y", Array: &npz.Array{Shape: []int{1}, Data: []int64{0}}}}},
	}
	for _, b := range bad {
		p := writeNPZ(t, b.arrays...)
		_, err := ReadNPZ(info, p, false)
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v, want it to name %s and contain %q", err, p, b.want)
		}
	}
}

// TestDownload serves the committed sample over HTTP in place of the
// official addresses and checks the result equals reading the folder.
func TestDownload(t *testing.T) {
	const sample = "../testdata/fashion-mnist-sample"
	srv := httptest.NewServer(http.FileServer(http.Dir(sample)))
	defer srv.Close()
	info := mustLookup(t, "FashionMNIST")
	for i := range info.Files {
		b, err := os.ReadFile(filepath.Join(sample, info.Files[i].Name))
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(b)
		info.Files[i].URLs = []string{srv.URL + "/" + info.Files[i].Name}
		info.Files[i].MD5 = hex.EncodeToString(sum[:])
	}
	c := &download.Client{Dir: t.TempDir()}
	got, err := Download(context.Background(), info, c, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadDir(info, sample, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Train.U8, want.Train.U8) || !slices.Equal(got.Test.Labels, want.Test.Labels) {
		t.Error("downloaded dataset differs from the folder's")
	}
	f := got.Source.Files[1]
	if got.Source.Kind != "url" || f.Name != "train-labels-idx1-ubyte.gz" || f.URL != info.Files[1].URLs[0] ||
		f.MD5 != info.Files[1].MD5 || f.SHA256 != want.Source.Files[1].SHA256 {
		t.Errorf("source %+v", got.Source)
	}

	// Bad checksum: an error naming the URL.
	info.Files[2].MD5 = strings.Repeat("a", 32)
	if _, err := Download(context.Background(), info, &download.Client{Dir: t.TempDir()}, false, nil); err == nil ||
		!strings.Contains(err.Error(), "t10k-images-idx3-ubyte.gz: md5 checksum") {
		t.Errorf("bad checksum: %v", err)
	}
}

func TestDownloadWithoutNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	info := mustLookup(t, "FashionMNIST")
	for i := range info.Files {
		info.Files[i].URLs = []string{"http://" + addr + "/" + info.Files[i].Name}
	}
	c := &download.Client{Dir: t.TempDir(), Backoff: time.Hour}
	_, err = Download(context.Background(), info, c, false, nil)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "cannot reach http://"+addr+"/train-images-idx3-ubyte.gz") ||
		!strings.Contains(msg, "source: dir") || !strings.Contains(msg, "/usr/share/datasets/fashion-mnist") {
		t.Errorf("message %q, want one line naming the URL and suggesting source: dir", msg)
	}
}

func TestLoadErrors(t *testing.T) {
	s, err := ReadDir(mustLookup(t, "MNIST"), mnistDir(t), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() string {
		d := t.TempDir()
		if err := s.Write(d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name   string
		break_ func(d string)
		want   string
	}{
		{"no-meta", func(d string) { os.Remove(filepath.Join(d, "meta.json")) }, "meta.json"},
		{"bad-json", func(d string) { os.WriteFile(filepath.Join(d, "meta.json"), []byte("{"), 0o644) }, "meta.json"},
		{"format", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "meta.json"))
			os.WriteFile(filepath.Join(d, "meta.json"), bytes.Replace(b, []byte(Format), []byte("other/9"), 1), 0o644)
		}, `format "other/9"`},
		{"shape", func(d string) {
			npz.WriteNPYFile(filepath.Join(d, "train_x.npy"), &npz.Array{Shape: []int{2, 1, 32, 32}, Data: make([]uint8, 2048)})
		}, "train_x.npy has shape [2 1 32 32], meta.json says [3 1 32 32]"},
		{"dtype", func(d string) {
			npz.WriteNPYFile(filepath.Join(d, "test_x.npy"), &npz.Array{Shape: []int{2, 1, 32, 32}, Data: make([]float32, 2048)})
		}, "test_x.npy holds float32, meta.json says uint8"},
		{"label", func(d string) {
			npz.WriteNPYFile(filepath.Join(d, "test_y.npy"), &npz.Array{Shape: []int{2}, Data: []int64{1, 12}})
		}, "test_y.npy: label 12 of image 1"},
		{"missing-array", func(d string) { os.Remove(filepath.Join(d, "train_y.npy")) }, "train_y.npy"},
	}
	for _, tt := range tests {
		d := fresh()
		tt.break_(d)
		_, err := Load(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// TestArtifactIndependentOfFolder: the same files read from two folders
// give byte-identical artifacts (no local path is recorded).
func TestArtifactIndependentOfFolder(t *testing.T) {
	const sample = "../testdata/fashion-mnist-sample"
	other := t.TempDir()
	ents, _ := os.ReadDir(sample)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(sample, e.Name()))
		os.WriteFile(filepath.Join(other, e.Name()), b, 0o644)
	}
	info := mustLookup(t, "FashionMNIST")
	var metas [][]byte
	for _, dir := range []string{sample, other} {
		s, err := ReadDir(info, dir, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		if err := s.Write(out); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(out, "meta.json"))
		metas = append(metas, b)
	}
	if !bytes.Equal(metas[0], metas[1]) {
		t.Errorf("meta.json depends on the folder:\n%s\n%s", metas[0], metas[1])
	}
}
