package npz

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/testenv"
)

// fixture is the PyTorch-made LeNet fixture, copied from ../shared/fixtures so
// that a clean clone tests against it.
const fixture = "../testdata/lenet-fmnist"

func TestReadPyTorchFixture(t *testing.T) {
	ar, err := ReadFile(filepath.Join(fixture, "weights.npz"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"conv1.weight": {6, 1, 5, 5}, "conv1.bias": {6},
		"conv2.weight": {16, 6, 5, 5}, "conv2.bias": {16},
		"fc1.weight": {120, 400}, "fc1.bias": {120},
		"fc2.weight": {84, 120}, "fc2.bias": {84},
		"fc3.weight": {10, 84}, "fc3.bias": {10},
	}
	if len(ar.Names) != len(want) {
		t.Fatalf("got %d arrays %v, want %d", len(ar.Names), ar.Names, len(want))
	}
	for name, shape := range want {
		a, err := ar.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Shape, shape) {
			t.Errorf("%s: shape %v, want %v", name, a.Shape, shape)
		}
		if _, ok := a.Data.([]float32); !ok {
			t.Errorf("%s: data %T, want []float32", name, a.Data)
		}
	}
	raw, err := ReadFile(filepath.Join(fixture, "subset_raw.npz"))
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := raw.Get("indices")
	ints, err := idx.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if ints[0] != 1303 || ints[99] != 57977 {
		t.Errorf("indices[0], [99] = %d, %d; want 1303, 57977 (fixture subset_raw.npz)", ints[0], ints[99])
	}
	x, _ := raw.Get("x")
	if _, ok := x.Data.([]uint8); !ok || !reflect.DeepEqual(x.Shape, []int{100, 28, 28}) {
		t.Errorf("x: %T %v, want []uint8 [100 28 28]", x.Data, x.Shape)
	}
}

func TestRoundTripAndDeterminism(t *testing.T) {
	arrays := []Named{
		{"f32", &Array{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, -6.5}}},
		{"f64", &Array{Shape: []int{3}, Data: []float64{1e-300, 0, -2}}},
		{"i64", &Array{Shape: []int{}, Data: []int64{-7}}},
		{"i32", &Array{Shape: []int{1, 2}, Data: []int32{5, -5}}},
		{"u8", &Array{Shape: []int{2, 2}, Data: []uint8{0, 255, 1, 2}}},
		{"b", &Array{Shape: []int{2}, Data: []bool{true, false}}},
	}
	var b1, b2 bytes.Buffer
	if err := Write(&b1, arrays); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b2, arrays); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("two writes of the same arrays differ")
	}
	ar, err := Read(bytes.NewReader(b1.Bytes()), int64(b1.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for i, na := range arrays {
		if ar.Names[i] != na.Name {
			t.Errorf("name %d = %q, want %q", i, ar.Names[i], na.Name)
		}
		got := ar.Arrays[na.Name]
		if !reflect.DeepEqual(got.Data, na.Array.Data) || len(got.Shape) != len(na.Array.Shape) {
			t.Errorf("%s: got %v %v, want %v %v", na.Name, got.Shape, got.Data, na.Array.Shape, na.Array.Data)
		}
	}
}

func TestFortranOrder(t *testing.T) {
	// A 2×3 float64 array [[1,2,3],[4,5,6]] stored column-major.
	var b bytes.Buffer
	h := "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }"
	h += strings.Repeat(" ", 64-(10+len(h)+1)%64) + "\n"
	b.WriteString(magic)
	b.Write([]byte{1, 0, byte(len(h)), 0})
	b.WriteString(h)
	a := &Array{Shape: []int{6}, Data: []float64{1, 4, 2, 5, 3, 6}}
	var body bytes.Buffer
	WriteNPY(&body, a)
	b.Write(body.Bytes()[len(body.Bytes())-48:])
	got, err := ReadNPY(&b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1, 2, 3, 4, 5, 6}; !reflect.DeepEqual(got.Data, want) {
		t.Fatalf("got %v, want %v", got.Data, want)
	}
}

func TestBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"magic":     "NOTNUMPY",
		"truncated": magic + "\x01\x00\x10\x00{'descr'",
		"dtype":     magic + "\x01\x00\x3c\x00{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }   \n",
	} {
		if _, err := ReadNPY(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestNumPyLoads checks that numpy reads what we write (Debian's
// python3-numpy; a skip where it is not installed, a failure in CI).
func TestNumPyLoads(t *testing.T) {
	py := testenv.RequirePython(t, "numpy")
	path := filepath.Join(t.TempDir(), "out.npz")
	err := WriteFile(path, []Named{
		{"eigval", &Array{Shape: []int{2, 2}, Data: []float64{1.5, -2, 3, 4}}},
		{"y", &Array{Shape: []int{3}, Data: []int64{0, 9, 3}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `import numpy as np, sys
d = np.load(sys.argv[1])
print(d["eigval"].tolist(), d["y"].tolist(), d["y"].dtype)`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "[[1.5, -2.0], [3.0, 4.0]] [0, 9, 3] int64"; got != want {
		t.Fatalf("numpy read %q, want %q", got, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
