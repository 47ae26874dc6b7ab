package records

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/analysis/records/recordstest"
	"github.com/hessian-spectra/runner/stage"
)

func TestReadMetrics(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.csv")
	// Columns in another order than the documented one, and an extra column.
	csv := "test_acc,epoch,train_acc,train_loss,test_loss,extra,penalty\n" +
		"0.5,1,0.6,1.5,1.7,x,\n" +
		"0.75,2,0.8,0.5,0.7,y,12.5\n"
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Epoch) != 2 || m.Epoch[1] != 2 || m.TestAcc[1] != 0.75 || m.TrainAcc[0] != 0.6 || m.TrainLoss[1] != 0.5 || m.TestLoss[0] != 1.7 {
		t.Errorf("ReadMetrics = %+v", m)
	}
	if !math.IsNaN(m.Penalty[0]) || m.Penalty[1] != 12.5 || !math.IsNaN(m.LR[0]) {
		t.Errorf("penalty %v, lr %v; want NaN 12.5, NaN NaN", m.Penalty, m.LR)
	}
}

func TestReadMetricsErrors(t *testing.T) {
	for name, c := range map[string]struct{ csv, want string }{
		"missing column":   {"epoch,train_acc,test_acc\n1,1,1\n", `no column "train_loss"`},
		"empty required":   {"epoch,train_loss,train_acc,test_loss,test_acc\n1,1,,1,1\n", "metrics.csv:2: train_acc is empty"},
		"not a number":     {"epoch,train_loss,train_acc,test_loss,test_acc\n1,1,abc,1,1\n", `train_acc "abc"`},
		"epochs backwards": {"epoch,train_loss,train_acc,test_loss,test_acc\n2,1,1,1,1\n1,1,1,1,1\n", "epoch 1 follows epoch 2"},
		"no rows":          {"epoch,train_loss,train_acc,test_loss,test_acc\n", "no epochs"},
	} {
		path := filepath.Join(t.TempDir(), "metrics.csv")
		os.WriteFile(path, []byte(c.csv), 0o644)
		_, err := ReadMetrics(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestLoadRun(t *testing.T) {
	root := t.TempDir()
	a, err := recordstest.Train(root, "sgd[seed=1]", map[string]any{"seed": 1}, "LeNet", "FashionMNIST", 1,
		[]recordstest.Epoch{{LR: 0.01, TrainLoss: 1, TrainAcc: 0.7, TestLoss: 1.1, TestAcc: 0.65, Penalty: math.NaN()}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRun(a)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model() != "LeNet" || r.Dataset() != "FashionMNIST" || r.Metrics.TestAcc[0] != 0.65 || r.Meta.Seed == nil || *r.Meta.Seed != 1 {
		t.Errorf("LoadRun = %+v, meta %+v", r, r.Meta)
	}
	os.Remove(filepath.Join(a.Dir, "meta.json"))
	a.Matrix = map[string]any{"model": "VGG11"}
	if r, err = LoadRun(a); err != nil || r.Meta != nil || r.Model() != "VGG11" || r.Dataset() != "" {
		t.Errorf("without meta.json: %+v, %v; want model from the matrix", r, err)
	}
}

func TestGroupBy(t *testing.T) {
	arts := []stage.Artifact{
		{Stage: "sgd[seed=0]", Matrix: map[string]any{"seed": 0, "method": "a"}},
		{Stage: "htr[seed=0]", Matrix: map[string]any{"seed": 0, "method": "b"}},
		{Stage: "sgd[seed=1]", Matrix: map[string]any{"seed": 1, "method": "b"}},
	}
	g, err := GroupBy(arts, "")
	if err != nil || len(g) != 2 || g[0].Name != "sgd" || len(g[0].Artifacts) != 2 || g[1].Name != "htr" {
		t.Errorf("GroupBy stage = %+v, %v", g, err)
	}
	g, err = GroupBy(arts, "method")
	if err != nil || len(g) != 2 || g[0].Name != "a" || len(g[1].Artifacts) != 2 || g[1].Artifacts[1].Stage != "sgd[seed=1]" {
		t.Errorf("GroupBy method = %+v, %v", g, err)
	}
	if _, err = GroupBy(arts, "lr"); err == nil || !strings.Contains(err.Error(), "sgd[seed=0]") {
		t.Errorf("GroupBy missing key: %v", err)
	}
}

func TestIndexSpectra(t *testing.T) {
	root := t.TempDir()
	grid, dens := recordstest.Gaussian(0, 1, 6, 64)
	var arts []stage.Artifact
	// Run 1 names everything in summary.json; run 2 only in its matrix.
	for _, e := range []int{2, 1} {
		for _, l := range []string{"full", "conv1.weight", "fc.weight"} {
			a, err := recordstest.Spectrum(root, "spec", nil, map[string]any{"layer": l, "epoch": e, "model": "LeNet", "dataset": "MNIST"}, grid, dens, nil)
			if err != nil {
				t.Fatal(err)
			}
			arts = append(arts, a)
		}
	}
	for _, l := range []string{"full", "a"} {
		a, err := recordstest.Spectrum(root, "other[epoch=3,layer="+l+",model=M]", map[string]any{"epoch": 3, "layer": l, "model": "M"}, map[string]any{"epoch": nil}, grid, dens, nil)
		if err != nil {
			t.Fatal(err)
		}
		arts = append(arts, a)
	}
	runs, err := IndexSpectra(arts)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	r := runs[0]
	if r.Label != "LeNet+MNIST" || strings.Join(r.Layers, " ") != "conv1.weight fc.weight" || len(r.Epochs) != 2 || r.Epochs[0] != 1 {
		t.Errorf("run 0 = %+v", r)
	}
	if err := r.Complete(); err != nil {
		t.Error(err)
	}
	ref, ok := r.Ref("fc.weight", 1)
	if !ok || ref.Artifact.Dir != arts[5].Dir {
		t.Errorf("Ref(fc.weight, 1) = %+v, %v", ref, ok)
	}
	s, err := ref.Load()
	if err != nil || len(s.Grid) != 64 || s.Density[10] != dens[10] || s.HasBand() {
		t.Errorf("Load = %v, %v", s, err)
	}
	r = runs[1]
	if r.Key != "other[model=M]" || r.Model != "M" || r.Label != "M (other[model=M])" || r.Epochs[0] != 3 || r.Layers[0] != "a" {
		t.Errorf("run 1 = %+v", r)
	}

	// A missing spectrum is named.
	runs, err = IndexSpectra(arts[:5])
	if err != nil {
		t.Fatal(err)
	}
	if err := runs[0].Complete(); err == nil || !strings.Contains(err.Error(), "fc.weight at epoch 1") {
		t.Errorf("Complete without fc.weight@1: %v", err)
	}
	// A duplicate is an error naming both.
	if _, err := IndexSpectra(append(arts[:1:1], arts[0])); err == nil || !strings.Contains(err.Error(), "both layer full at epoch 2") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestReadSpectrumErrors(t *testing.T) {
	root := t.TempDir()
	for name, c := range map[string]struct {
		grid, dens []float64
		want       string
	}{
		"decreasing": {[]float64{0, 2, 1}, []float64{1, 1, 1}, "not increasing at 2"},
		"lengths":    {[]float64{0, 1, 2}, []float64{1, 1}, "eigval has 3 values, eigval_density 2"},
		"NaN":        {[]float64{0, 1, 2}, []float64{1, math.NaN(), 1}, "value 1 is not finite"},
	} {
		a, err := recordstest.Spectrum(root, "s", nil, map[string]any{}, c.grid, c.dens, make([]float64, len(c.grid)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ReadSpectrum(filepath.Join(a.Dir, "spectrum.npz"))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "spectrum.npz") {
			t.Errorf("%s: error %v, want one naming the file and containing %q", name, err, c.want)
		}
	}
}
