package datasets

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/npz"
)

// debianFMNIST is where Debian's dataset-fashion-mnist installs the real
// dataset; .ci/run installs the package.
const debianFMNIST = testenv.FashionMNISTDir

var (
	realOnce sync.Once
	realSet  *Set
	realErr  error
)

// realFashionMNIST reads the installed dataset once per test binary; when
// it is not installed the test skips (fails in CI).
func realFashionMNIST(t testing.TB) *Set {
	t.Helper()
	testenv.RequireFashionMNIST(t)
	realOnce.Do(func() {
		info, err := Lookup("FashionMNIST")
		if err != nil {
			realErr = err
			return
		}
		realSet, realErr = ReadDir(info, debianFMNIST, false, nil)
	})
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realSet
}

func sum(b []uint8) int64 {
	var s int64
	for _, v := range b {
		s += int64(v)
	}
	return s
}

func histogram(labels []int32, classes int) []int {
	h := make([]int, classes)
	for _, l := range labels {
		h[l]++
	}
	return h
}

// The expected numbers were computed with numpy (/usr/bin/python3) straight
// from the IDX files: np.frombuffer(gzip.open(f).read(), np.uint8,
// offset=16) for images (offset=8 for labels), then np.bincount and integer
// sums.
func TestRealFashionMNIST(t *testing.T) {
	s := realFashionMNIST(t)
	tests := []struct {
		name        string
		im          *Images
		n           int
		sum         int64
		firstLabels []int32
		img0Sum     int64
		row14       []uint8 // raw row 14, columns 10–19, of image 0
	}{
		{"train", s.Train, 60000, 3431114169, []int32{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 76247,
			[]uint8{0, 0, 237, 226, 217, 223, 222, 219, 222, 221}},
		{"test", s.Test, 10000, 573469082, []int32{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 33456,
			[]uint8{0, 0, 98, 136, 110, 109, 110, 162, 135, 144}},
	}
	for _, tt := range tests {
		im := tt.im
		if im.N != tt.n || im.C != 1 || im.H != 32 || im.W != 32 {
			t.Fatalf("%s: %d images of %d×%d×%d, want %d of 1×32×32", tt.name, im.N, im.C, im.H, im.W, tt.n)
		}
		h := histogram(im.Labels, 10)
		for c, n := range h {
			if n != tt.n/10 {
				t.Errorf("%s: class %d has %d images, want %d", tt.name, c, n, tt.n/10)
			}
		}
		// Padding adds only zeros, so the pixel sum is the raw one.
		if got := sum(im.U8); got != tt.sum {
			t.Errorf("%s: pixel sum %d, want %d", tt.name, got, tt.sum)
		}
		if !slices.Equal(im.Labels[:10], tt.firstLabels) {
			t.Errorf("%s: first labels %v, want %v", tt.name, im.Labels[:10], tt.firstLabels)
		}
		img0 := im.U8[:1024]
		if got := sum(img0); got != tt.img0Sum {
			t.Errorf("%s: image 0 sums to %d, want %d", tt.name, got, tt.img0Sum)
		}
		// Raw (14, 10..19) sits at padded (16, 12..21); the 2-pixel border is 0.
		if got := img0[16*32+12 : 16*32+22]; !bytes.Equal(got, tt.row14) {
			t.Errorf("%s: image 0 row 14 = %v, want %v", tt.name, got, tt.row14)
		}
		for i := 0; i < 32; i++ {
			for _, p := range []int{i, 32 + i, 31*32 + i, i*32 + 0, i*32 + 1, i*32 + 30, i*32 + 31} {
				if img0[p] != 0 {
					t.Fatalf("%s: border pixel %d is %d, want 0", tt.name, p, img0[p])
				}
			}
		}
	}
	if s.Source.Kind != "dir" || len(s.Source.Files) != 4 || s.Source.Files[0].Name != "train-images-idx3-ubyte.gz" ||
		s.Source.Files[0].Bytes != 26421856 || len(s.Source.Files[0].SHA256) != 64 {
		t.Errorf("source %+v", s.Source)
	}
}

// TestRealSubsetMatchesFixture checks the per-class subset against the
// PyTorch-made fixture: the seed's picks, raw pixels and float32 values.
func TestRealSubsetMatchesFixture(t *testing.T) {
	s := realFashionMNIST(t)
	dir := t.TempDir()
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	train, meta, err := LoadSplit(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if meta.Classes != 10 || meta.Train.N != 60000 || meta.Test.N != 10000 || meta.Pixels != "uint8" {
		t.Errorf("meta %+v", meta)
	}
	sub, idx, err := train.Subset(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := npz.ReadFile("../testdata/lenet-fmnist/subset_raw.npz")
	if err != nil {
		t.Fatal(err)
	}
	fixture, err := npz.ReadFile("../testdata/lenet-fmnist/subset.npz")
	if err != nil {
		t.Fatal(err)
	}
	wantIdx, _ := raw.Arrays["indices"].Int64s()
	if len(idx) != 100 {
		t.Fatalf("subset of %d, want 100", len(idx))
	}
	for k := range idx {
		if int64(idx[k]) != wantIdx[k] {
			t.Fatalf("subset index %d = %d, fixture has %d (first ten: %v)", k, idx[k], wantIdx[k], idx[:10])
		}
	}
	// Raw pixels: the fixture's [100,28,28] equal our padded images' interior.
	rawX := raw.Arrays["x"].Data.([]uint8)
	for k, i := range idx {
		img := s.Train.U8[i*1024 : (i+1)*1024]
		for y := 0; y < 28; y++ {
			if !bytes.Equal(img[(y+2)*32+2:(y+2)*32+30], rawX[k*784+y*28:k*784+(y+1)*28]) {
				t.Fatalf("subset image %d (train %d) row %d differs from the fixture's raw pixels", k, i, y)
			}
		}
	}
	// Preprocessed values: bit for bit.
	wantX := fixture.Arrays["x"].Data.([]float32)
	if !slices.Equal(fixture.Arrays["x"].Shape, []int{100, 1, 32, 32}) || len(sub.X) != len(wantX) {
		t.Fatalf("fixture x %v, subset %d values", fixture.Arrays["x"].Shape, len(sub.X))
	}
	for k := range wantX {
		if sub.X[k] != wantX[k] {
			t.Fatalf("subset pixel %d = %v, the fixture (PyTorch) has %v", k, sub.X[k], wantX[k])
		}
	}
	wantY, _ := fixture.Arrays["y"].Int64s()
	for k := range wantY {
		if int64(sub.Y[k]) != wantY[k] {
			t.Fatalf("subset label %d = %d, fixture %d", k, sub.Y[k], wantY[k])
		}
	}
}

// TestArtifactDeterministicAndLoadable writes the real dataset twice and
// compares bytes, then checks Load against the raw values.
func TestArtifactDeterministicAndLoadable(t *testing.T) {
	s := realFashionMNIST(t)
	a, b := t.TempDir(), t.TempDir()
	if err := s.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	names := []string{"meta.json", "test_x.npy", "test_y.npy", "train_x.npy", "train_y.npy"}
	ents, _ := os.ReadDir(a)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Errorf("artifact files %v, want %v", got, names)
	}
	for _, n := range names {
		x, _ := os.ReadFile(filepath.Join(a, n))
		y, _ := os.ReadFile(filepath.Join(b, n))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two writes of the same data", n)
		}
	}
	ds, err := Load(a)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Test.N != 10000 || len(ds.Test.X) != 10000*1024 {
		t.Fatalf("test split %d images, %d values", ds.Test.N, len(ds.Test.X))
	}
	// mean = std = 0.5: x = 2v/255 − 1; the sum over the test split follows
	// from the raw pixel sum (573469082, numpy) and the pixel count.
	var total float64
	for _, v := range ds.Test.X {
		total += float64(v)
	}
	want := 2*573469082.0/255 - float64(10000*1024)
	if d := total - want; d > 1 || d < -1 {
		t.Errorf("sum of normalised test pixels %.3f, want %.3f", total, want)
	}
	if ds.Test.X[0] != -1 || ds.Test.Y[0] != 9 {
		t.Errorf("test image 0: corner %v label %d, want -1 and 9", ds.Test.X[0], ds.Test.Y[0])
	}
}

// TestSampleIsTheRealDatasetsHead checks the committed sample against the
// installed dataset.
func TestSampleIsTheRealDatasetsHead(t *testing.T) {
	s := realFashionMNIST(t)
	info, _ := Lookup("FashionMNIST")
	sample, err := ReadDir(info, "../testdata/fashion-mnist-sample", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sample.Train.N != 4000 || sample.Test.N != 1000 {
		t.Fatalf("sample has %d/%d images, want 4000/1000", sample.Train.N, sample.Test.N)
	}
	if !bytes.Equal(sample.Train.U8, s.Train.U8[:4000*1024]) || !slices.Equal(sample.Train.Labels, s.Train.Labels[:4000]) ||
		!bytes.Equal(sample.Test.U8, s.Test.U8[:1000*1024]) || !slices.Equal(sample.Test.Labels, s.Test.Labels[:1000]) {
		t.Error("the sample is not the head of the real dataset")
	}
}

// TestSample runs without the Debian package: the committed sample alone.
func TestSample(t *testing.T) {
	info, _ := Lookup("FashionMNIST")
	s, err := ReadDir(info, "../testdata/fashion-mnist-sample", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// np.bincount of the first 4000 train and 1000 test labels (numpy).
	if h := histogram(s.Train.Labels, 10); !slices.Equal(h, []int{373, 440, 404, 409, 395, 391, 400, 413, 380, 395}) {
		t.Errorf("train histogram %v", h)
	}
	if h := histogram(s.Test.Labels, 10); !slices.Equal(h, []int{107, 105, 111, 93, 115, 87, 97, 95, 95, 95}) {
		t.Errorf("test histogram %v", h)
	}
	if got := sum(s.Train.U8[:1024]); got != 76247 {
		t.Errorf("image 0 sums to %d, want 76247", got)
	}
}

func BenchmarkLoadFashionMNIST(b *testing.B) {
	s := realFashionMNIST(b)
	dir := b.TempDir()
	if err := s.Write(dir); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadDirFashionMNIST(b *testing.B) {
	testenv.RequireFashionMNIST(b)
	info, _ := Lookup("FashionMNIST")
	for b.Loop() {
		if _, err := ReadDir(info, debianFMNIST, false, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPublishedSizesMatchDebian checks the published sizes in the table
// against Debian's copies of the same files, which differ only in gzip's
// header: Debian's omit the original file name (FNAME), which the
// published ones store with its terminating zero byte.
func TestPublishedSizesMatchDebian(t *testing.T) {
	dir := testenv.RequireFashionMNIST(t)
	info, err := Lookup("FashionMNIST")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		const fname = 1 << 3
		if len(b) < 10 || b[3]&fname != 0 {
			t.Fatalf("%s: gzip header flags %#x, want no FNAME", f.Name, b[3])
		}
		name := strings.TrimSuffix(f.Name, ".gz")
		if got := int64(len(b) + len(name) + 1); got != f.Size {
			t.Errorf("%s: Debian's %d bytes + %q + NUL = %d, published size %d", f.Name, len(b), name, got, f.Size)
		}
	}
	for _, d := range table {
		for _, f := range d.Files {
			if f.Size <= 0 {
				t.Errorf("%s %s: no published size", d.Name, f.Name)
			}
		}
	}
}
