package datasets

import (
	"slices"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, name := range []string{"MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN"} {
		info, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Mean) != info.Channels || len(info.Std) != info.Channels || info.Size != 32 {
			t.Errorf("%s: inconsistent constants %+v", name, info)
		}
		for _, f := range info.Files {
			if len(f.URLs) == 0 || len(f.MD5) != 32 {
				t.Errorf("%s: file %s lacks a URL or an MD5", name, f.Name)
			}
		}
	}
	// SEED-SPEC §1.1: pads and class counts.
	for _, tt := range []struct {
		name                   string
		pad, classes, legacy   int
		trainN, testN, channel int
	}{
		{"MNIST", 2, 10, 10, 60000, 10000, 1},
		{"FashionMNIST", 2, 10, 10, 60000, 10000, 1},
		{"CIFAR10", 0, 10, 10, 50000, 10000, 3},
		{"CIFAR100", 0, 100, 100, 50000, 10000, 3},
		{"SVHN", 0, 10, 11, 73257, 26032, 3},
	} {
		info, _ := Lookup(tt.name)
		if info.Pad() != tt.pad || info.ClassesFor(false) != tt.classes || info.ClassesFor(true) != tt.legacy ||
			info.TrainN != tt.trainN || info.TestN != tt.testN || info.Channels != tt.channel {
			t.Errorf("%s: %+v", tt.name, info)
		}
	}
	// Python's 125.3/255 and 66.7/255 (printed by /usr/bin/python3).
	c10, _ := Lookup("CIFAR10")
	if c10.Mean[0] != 0.4913725490196078 || c10.Std[2] != 0.2615686274509804 {
		t.Errorf("CIFAR10 constants %v %v differ from Python's", c10.Mean, c10.Std)
	}
	if _, err := Lookup("fashionmnist"); err == nil || !strings.Contains(err.Error(), "FashionMNIST") {
		t.Errorf("Lookup of a wrong name: %v, want an error listing the names", err)
	}
	// Lookup returns copies: changing one does not change the table.
	c10.Mean[0] = 0
	if again, _ := Lookup("CIFAR10"); again.Mean[0] == 0 {
		t.Error("Lookup shares the table's slices")
	}
}

func TestNormalizeMatchesNumPyFloat32(t *testing.T) {
	// (np.float32(v)/np.float32(255) - np.float32(mean))/np.float32(std) for
	// v = 0, 1, 128, 254, 255, printed with float.hex by /usr/bin/python3.
	tests := []struct {
		mean, std float64
		want      [5]float32
	}{
		{0.1307, 0.3081, [5]float32{-0x1.b264e2p-2, -0x1.a55c4p-2, 0x1.347af4p+0, 0x1.678566p+1, 0x1.69267ap+1}},
		{125.3 / 255, 63.0 / 255, [5]float32{-0x1.fd27d2p+0, -0x1.f91792p+0, 0x1.5f1624p-5, 0x1.057c58p+1, 0x1.078478p+1}},
		{112.4 / 255, 70.4 / 255, [5]float32{-0x1.98ba2ep+0, -0x1.951746p+0, 0x1.c5d186p-3, 0x1.01745ep+1, 0x1.0345dp+1}},
		{0.5, 0.5, [5]float32{-1, -0x1.fbfbfcp-1, 0x1.0102p-8, 0x1.fbfbfcp-1, 1}},
	}
	for _, tt := range tests {
		for k, v := range []uint8{0, 1, 128, 254, 255} {
			got, want := Normalize(v, tt.mean, tt.std), tt.want[k]
			if got != want {
				t.Errorf("Normalize(%d, %v, %v) = %x, want %x", v, tt.mean, tt.std, got, want)
			}
		}
	}
}

func TestPadImages(t *testing.T) {
	raw := []uint8{1, 2, 3, 4, 5, 6, 7, 8} // two 2×2 images
	got := padImages(raw, 2, 1, 2, 1)
	want := []uint8{
		0, 0, 0, 0,
		0, 1, 2, 0,
		0, 3, 4, 0,
		0, 0, 0, 0,

		0, 0, 0, 0,
		0, 5, 6, 0,
		0, 7, 8, 0,
		0, 0, 0, 0,
	}
	if !slices.Equal(got, want) {
		t.Errorf("padImages = %v", got)
	}
}

func TestSubsetIndices(t *testing.T) {
	// Labels 2,3,4 (not starting at 0) at known positions.
	labels := []int32{4, 2, 3, 2, 4, 3, 2, 3, 4, 2, 3, 4}
	got, err := SubsetIndices(labels, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Positions per label: 2 → [1 3 6 9], 3 → [2 5 7 10], 4 → [0 4 8 11].
	// np.random.seed(0); np.random.permutation(4)[:2] is [2, 3]
	// (/usr/bin/python3), so each class keeps its 3rd and 4th position.
	want := []int{6, 9, 7, 10, 8, 11}
	if !slices.Equal(got, want) {
		t.Errorf("SubsetIndices = %v, want %v", got, want)
	}
	if _, err := SubsetIndices(labels, 5, 0); err == nil || !strings.Contains(err.Error(), "class 2 has 4 images, fewer than per_class 5") {
		t.Errorf("too few per class: %v", err)
	}
	if _, err := SubsetIndices([]int32{0, 0, 2, 2}, 1, 0); err == nil || !strings.Contains(err.Error(), "class 1 has 0 images") {
		t.Errorf("a missing class: %v", err)
	}
}

func TestShuffledBatches(t *testing.T) {
	s := &Split{N: 10, C: 1, H: 1, W: 2, X: make([]float32, 20), Y: make([]int32, 10)}
	for i := range 10 {
		s.X[2*i], s.X[2*i+1] = float32(i), float32(-i)
		s.Y[i] = int32(i % 3)
	}
	// numpy.random.RandomState([0, e]).permutation(10) for e = 0, 1
	// (/usr/bin/python3).
	wantOrders := [][]int{{3, 7, 6, 4, 1, 0, 2, 8, 5, 9}, {9, 4, 0, 8, 1, 5, 3, 2, 6, 7}}
	for epoch, want := range wantOrders {
		b := s.Shuffled(4, 0, epoch)
		if b.Len() != 3 {
			t.Fatalf("Len = %d, want 3 (4+4+2)", b.Len())
		}
		var seen []int
		for i, batch := range b.All() {
			wantN := 4
			if i == 2 {
				wantN = 2
			}
			if batch.N != wantN || len(batch.X) != 2*wantN || len(batch.Y) != wantN {
				t.Errorf("epoch %d batch %d: N %d, %d pixels, %d labels", epoch, i, batch.N, len(batch.X), len(batch.Y))
			}
			for k, idx := range batch.Indices {
				if batch.X[2*k] != float32(idx) || batch.X[2*k+1] != float32(-idx) || batch.Y[k] != int32(idx%3) {
					t.Errorf("batch row %d does not hold sample %d", k, idx)
				}
			}
			seen = append(seen, batch.Indices...)
		}
		if !slices.Equal(seen, want) {
			t.Errorf("epoch %d order %v, want numpy's %v", epoch, seen, want)
		}
	}
	seq := s.Sequential(3)
	if seq.Len() != 4 || !slices.Equal(seq.Batch(3).Indices, []int{9}) || !slices.Equal(seq.Batch(1).Indices, []int{3, 4, 5}) {
		t.Errorf("sequential batches wrong: %v", seq.Order())
	}
}
