package fetch

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
)

const sample = "../../testdata/fashion-mnist-sample"

// params converts given params as the runner does (stage.Kind.Resolve).
func params(t *testing.T, given map[string]any) stage.Params {
	t.Helper()
	p, err := Kind.Resolve(given)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type recorder struct{ starts []string }

func (r *recorder) Start(what string, total int) { r.starts = append(r.starts, what) }
func (r *recorder) Advance(int)                  {}
func (r *recorder) Finish()                      {}

func runKind(t *testing.T, given map[string]any, downloads string) (string, string, *recorder, error) {
	t.Helper()
	out := t.TempDir()
	var log bytes.Buffer
	rec := &recorder{}
	e := &stage.Env{ID: "data", Params: params(t, given), OutDir: out, Log: &log, Progress: rec, Downloads: downloads}
	err := Kind.Call(context.Background(), e)
	return out, log.String(), rec, err
}

func abs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDirSample(t *testing.T) {
	out, log, rec, err := runKind(t, map[string]any{"dataset": "FashionMNIST", "source": "dir", "path": abs(t, sample)}, "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := datasets.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	// The sample's label histograms (numpy, see its README).
	if ds.Train.N != 4000 || ds.Test.N != 1000 || ds.Meta.Dataset != "FashionMNIST" ||
		!slices.Equal(ds.Meta.Train.LabelCounts, []int{373, 440, 404, 409, 395, 391, 400, 413, 380, 395}) {
		t.Errorf("meta %+v", ds.Meta)
	}
	if !strings.Contains(log, "reading FashionMNIST from folder "+abs(t, sample)) || !strings.Contains(log, "4000 training and 1000 test images of 1×32×32") {
		t.Errorf("log:\n%s", log)
	}
	if len(rec.starts) == 0 {
		t.Error("no progress reported")
	}
	// Same params, same bytes.
	again, _, _, err := runKind(t, map[string]any{"dataset": "FashionMNIST", "source": "dir", "path": abs(t, sample)}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"meta.json", "train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy"} {
		a, _ := os.ReadFile(filepath.Join(out, n))
		b, _ := os.ReadFile(filepath.Join(again, n))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs", n)
		}
	}
}

func TestLimits(t *testing.T) {
	out, _, _, err := runKind(t, map[string]any{"dataset": "FashionMNIST", "source": "dir", "path": abs(t, sample),
		"train_limit": 100, "test_limit": 30}, "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := datasets.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	full, err := datasets.ReadDir(mustLookup(t), sample, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.N != 100 || ds.Test.N != 30 || !slices.Equal(ds.Train.Y, full.Train.Labels[:100]) {
		t.Errorf("limited to %d/%d images", ds.Train.N, ds.Test.N)
	}
}

func mustLookup(t *testing.T) datasets.Info {
	info, err := datasets.Lookup("FashionMNIST")
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestRealFashionMNIST(t *testing.T) {
	debian := testenv.RequireFashionMNIST(t)
	out, _, _, err := runKind(t, map[string]any{"dataset": "FashionMNIST", "source": "dir", "path": debian}, "")
	if err != nil {
		t.Fatal(err)
	}
	train, meta, err := datasets.LoadSplit(out, "train")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 60000 || meta.Test.N != 10000 {
		t.Fatalf("%d/%d images", train.N, meta.Test.N)
	}
	// The Hessian subset the lanczos stage takes equals the fixture's.
	_, idx, err := train.Subset(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := npz.ReadFile("../../testdata/lenet-fmnist/subset_raw.npz")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := raw.Arrays["indices"].Int64s()
	for k := range want {
		if int64(idx[k]) != want[k] {
			t.Fatalf("subset index %d = %d, fixture %d", k, idx[k], want[k])
		}
	}
}

func TestNPZFixture(t *testing.T) {
	out, _, _, err := runKind(t, map[string]any{"dataset": "FashionMNIST", "source": "npz", "path": abs(t, "../../testdata/lenet-fmnist/subset.npz")}, "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := datasets.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	fx, _ := npz.ReadFile("../../testdata/lenet-fmnist/subset.npz")
	if ds.Meta.Pixels != "float32" || !slices.Equal(ds.Train.X, fx.Arrays["x"].Data.([]float32)) || !ds.Meta.Test.SameAsTrain {
		t.Errorf("fixture not stored as is: %+v", ds.Meta)
	}
}

// TestCustomArrays reads arrays of one's own (dataset custom), from an
// .npz only.
func TestCustomArrays(t *testing.T) {
	out, _, _, err := runKind(t, map[string]any{"dataset": "custom", "source": "npz", "path": abs(t, "../../testdata/onnx/tabular.npz")}, "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := datasets.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Meta.Dataset != "custom" || ds.Meta.Classes != 3 || !slices.Equal(ds.Train.ExampleShape(), []int{6}) {
		t.Errorf("meta %+v", ds.Meta)
	}
	_, _, _, err = runKind(t, map[string]any{"dataset": "custom", "source": "dir", "path": abs(t, sample)}, "")
	if err == nil || !strings.Contains(err.Error(), "dataset custom is read from an .npz only") {
		t.Errorf("got %v", err)
	}
}

// withFiles points the dataset's official addresses at base for the
// duration of a test.
func withFiles(t *testing.T, base string, md5s map[string]string) {
	t.Helper()
	orig := lookupDataset
	t.Cleanup(func() { lookupDataset = orig })
	lookupDataset = func(name string) (datasets.Info, error) {
		info, err := orig(name)
		for i, f := range info.Files {
			info.Files[i].URLs = []string{base + "/" + f.Name}
			if m, ok := md5s[f.Name]; ok {
				info.Files[i].MD5 = m
			}
		}
		return info, err
	}
}

func TestURLSource(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir(sample)))
	defer srv.Close()
	md5s := map[string]string{}
	ents, _ := os.ReadDir(sample)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(sample, e.Name()))
		s := md5.Sum(b)
		md5s[e.Name()] = hex.EncodeToString(s[:])
	}
	withFiles(t, srv.URL, md5s)
	downloads := t.TempDir()
	out, _, rec, err := runKind(t, map[string]any{"dataset": "FashionMNIST"}, downloads)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := datasets.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.N != 4000 || ds.Meta.Source.Kind != "url" || ds.Meta.Source.Files[0].URL != srv.URL+"/train-images-idx3-ubyte.gz" {
		t.Errorf("meta %+v", ds.Meta)
	}
	if !slices.Contains(rec.starts, "download train-images-idx3-ubyte.gz") {
		t.Errorf("progress units %v lack the download", rec.starts)
	}
	// The downloads stay for the next run, which needs no server.
	srv.Close()
	if _, _, _, err := runKind(t, map[string]any{"dataset": "FashionMNIST", "train_limit": 10}, downloads); err != nil {
		t.Errorf("second run with the files already downloaded: %v", err)
	}
}

func TestURLWithoutNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	l.Close()
	withFiles(t, base, nil)
	out, _, _, err := runKind(t, map[string]any{"dataset": "MNIST"}, t.TempDir())
	if err == nil {
		t.Fatal("no error without a network")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "cannot reach "+base+"/train-images-idx3-ubyte.gz") || !strings.Contains(msg, "source: dir") {
		t.Errorf("error %q, want one line naming the URL and suggesting source: dir", msg)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed fetch left files: %v", ents)
	}
}

func TestBadParamsAndInputs(t *testing.T) {
	emptyDir := t.TempDir()
	tests := []struct {
		given map[string]any
		want  string
	}{
		{map[string]any{"dataset": "FashionMNIST", "source": "dir"}, "source dir needs a path"},
		{map[string]any{"dataset": "FashionMNIST", "source": "npz"}, "source npz needs a path"},
		{map[string]any{"dataset": "FashionMNIST", "path": emptyDir}, "only used with source: dir or npz"},
		{map[string]any{"dataset": "FashionMNIST", "source": "dir", "path": emptyDir},
			"lacks train-images-idx3-ubyte.gz or train-images-idx3-ubyte"},
		{map[string]any{"dataset": "SVHN", "source": "dir", "path": emptyDir}, "lacks train_32x32.mat, test_32x32.mat"},
		{map[string]any{"dataset": "CIFAR10", "source": "dir", "path": emptyDir}, "found none of"},
		{map[string]any{"dataset": "FashionMNIST", "source": "npz", "path": filepath.Join(emptyDir, "none.npz")}, "none.npz"},
	}
	for _, tt := range tests {
		out, _, _, err := runKind(t, tt.given, "")
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.HasPrefix(err.Error(), "data: ") {
			t.Errorf("%v: error %v, want one containing %q, without the stage id (the runner adds it)", tt.given, err, tt.want)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("%v: a failed fetch left files: %v", tt.given, ents)
		}
	}
	p, _ := Kind.Param("dataset")
	if _, err := p.Convert("fashion-mnist"); err == nil {
		t.Error("the schema accepts an unknown dataset")
	}
}
