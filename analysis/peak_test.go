package analysis

import (
	"strings"
	"testing"
)

func testDistances() *Distances {
	return &Distances{
		Layers: []string{"conv1", "conv2", "fc"},
		Epochs: []int{1, 2, 3, 4},
		D: [][]float64{
			{4, 3, 2, 2},
			{1, 1, 1, 2},
			{3, 1, 2, 1},
		},
	}
}

func TestTotals(t *testing.T) {
	d := testDistances()
	lt := d.LayerTotals()
	for i, want := range []float64{11, 5, 7} {
		if lt[i] != want {
			t.Errorf("LayerTotals = %v, want 11 5 7", lt)
		}
	}
	et := d.EpochTotals()
	for i, want := range []float64{8, 5, 5, 5} {
		if et[i] != want {
			t.Errorf("EpochTotals = %v, want 8 5 5 5", et)
		}
	}
	n := Normalize(lt)
	for i, want := range []float64{1, 5.0 / 11, 7.0 / 11} {
		if !near(n[i], want, 1e-15) {
			t.Errorf("Normalize = %v", n)
		}
	}
	if z := Normalize([]float64{0, 0}); z[0] != 0 || z[1] != 0 {
		t.Errorf("Normalize(0, 0) = %v, want zeros", z)
	}
}

func TestPositions(t *testing.T) {
	p := Positions(5)
	for i, want := range []float64{0, 0.25, 0.5, 0.75, 1} {
		if p[i] != want {
			t.Errorf("Positions(5) = %v", p)
		}
	}
	if p := Positions(1); p[0] != 0 {
		t.Errorf("Positions(1) = %v", p)
	}
}

func TestPeakRule(t *testing.T) {
	d := testDistances()
	// Totals 8 5 5 5: the earliest minimum is epoch 2.
	if e, err := (PeakRule{Rule: PeakMinTotal}).Pick(d, "", ""); err != nil || e != 2 {
		t.Errorf("min_total = %d, %v; want 2", e, err)
	}
	if e, err := (PeakRule{Rule: PeakFixed, Epoch: 4}).Pick(d, "", ""); err != nil || e != 4 {
		t.Errorf("fixed 4 = %d, %v; want 4", e, err)
	}
	if _, err := (PeakRule{Rule: PeakFixed, Epoch: 9}).Pick(d, "", ""); err == nil || !strings.Contains(err.Error(), "epoch 9") {
		t.Errorf("fixed 9: error %v, want one naming epoch 9", err)
	}
	// The seed's 0-based epoch 33 for LeNet+FashionMNIST is our epoch 34.
	long := &Distances{Layers: []string{"a"}, Epochs: make([]int, 50), D: [][]float64{make([]float64, 50)}}
	for i := range long.Epochs {
		long.Epochs[i] = i + 1
	}
	if e, err := (PeakRule{Rule: PeakSeed}).Pick(long, "LeNet", "FashionMNIST"); err != nil || e != 34 {
		t.Errorf("seed LeNet+FashionMNIST = %d, %v; want 34", e, err)
	}
	if e, err := (PeakRule{Rule: PeakSeed}).Pick(long, "resnet18", "svhn"); err != nil || e != 12 {
		t.Errorf("seed ResNet18+SVHN = %d, %v; want 12", e, err)
	}
	if _, err := (PeakRule{Rule: PeakSeed}).Pick(long, "VGG11", "CIFAR100"); err == nil {
		t.Error("seed rule for a run the seed lacks: no error")
	}
	if _, err := (PeakRule{Rule: PeakSeed}).Pick(long, "LeNet", ""); err == nil || !strings.Contains(err.Error(), `dataset ""`) {
		t.Errorf("seed rule without a dataset: %v", err)
	}
	if _, err := (PeakRule{Rule: PeakSeed}).Pick(d, "LeNet", "MNIST"); err == nil {
		t.Error("seed epoch 19 beyond a 4-epoch run: no error")
	}
}

func TestSeedPeakEpochTable(t *testing.T) {
	// SEED-SPEC §6.3, 0-based; ours are one more.
	want := map[[2]string]int{
		{"LeNet", "FashionMNIST"}: 33, {"LeNet", "MNIST"}: 18, {"LeNet", "SVHN"}: 20, {"LeNet", "CIFAR10"}: 44,
		{"VGG11_bn", "MNIST"}: 21, {"VGG11_bn", "FashionMNIST"}: 6, {"VGG11_bn", "SVHN"}: 28, {"VGG11_bn", "CIFAR10"}: 19,
		{"ResNet18", "MNIST"}: 19, {"ResNet18", "FashionMNIST"}: 25, {"ResNet18", "SVHN"}: 11, {"ResNet18", "CIFAR10"}: 26,
	}
	for k, e0 := range want {
		if e, ok := SeedPeakEpoch(k[0], k[1]); !ok || e != e0+1 {
			t.Errorf("SeedPeakEpoch(%s, %s) = %d, %v; want %d", k[0], k[1], e, ok, e0+1)
		}
	}
}
