package datasets

import (
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/npz"
)

// TestCustomArrays reads arrays of one's own: examples of any shape, kept
// as given, integer labels; they round-trip through the fetch artifact and
// give the seed's per-class subset.
func TestCustomArrays(t *testing.T) {
	info := mustLookup(t, Custom)
	s, err := ReadNPZ(info, "../testdata/onnx/tabular.npz", false)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := writeAndLoad(t, s)
	src, _ := npz.ReadFile("../testdata/onnx/tabular.npz")
	m := ds.Meta
	if m.Dataset != Custom || m.Classes != 3 || !slices.Equal(m.Shape, []int{6}) || m.Pixels != "float32" || !m.Test.SameAsTrain ||
		!slices.Equal(m.Train.LabelCounts, []int{20, 20, 20}) {
		t.Errorf("meta %+v", m)
	}
	if !slices.Equal(ds.Train.X, src.Arrays["x"].Data.([]float32)) || !slices.Equal(ds.Train.ExampleShape(), []int{6}) {
		t.Errorf("examples not kept as given: shape %v", ds.Train.ExampleShape())
	}
	sub, idx, err := ds.Train.Subset(5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sub.N != 15 || !slices.Equal(sub.ExampleShape(), []int{6}) || !slices.Equal(sub.Image(0), ds.Train.Image(idx[0])) {
		t.Errorf("subset of %d, shape %v", sub.N, sub.ExampleShape())
	}

	// Sequences [N, 2, 5] in float64, with a test split of the same shape.
	p := writeNPZ(t,
		npz.Named{Name: "x", Array: &npz.Array{Shape: []int{2, 2, 5}, Data: make([]float64, 20)}},
		npz.Named{Name: "y", Array: &npz.Array{Shape: []int{2}, Data: []int32{0, 4}}},
		npz.Named{Name: "x_test", Array: &npz.Array{Shape: []int{1, 2, 5}, Data: make([]float64, 10)}},
		npz.Named{Name: "y_test", Array: &npz.Array{Shape: []int{1}, Data: []int64{1}}},
	)
	s, err = ReadNPZ(info, p, false)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ = writeAndLoad(t, s)
	if ds.Meta.Classes != 5 || !slices.Equal(ds.Test.ExampleShape(), []int{2, 5}) || ds.Test.N != 1 {
		t.Errorf("sequences: %+v", ds.Meta)
	}

	for _, c := range []struct {
		arrays []npz.Named
		want   string
	}{
		{[]npz.Named{{Name: "x", Array: &npz.Array{Shape: []int{3}, Data: []float32{1, 2, 3}}}, {Name: "y", Array: &npz.Array{Shape: []int{3}, Data: []int64{0, 1, 2}}}},
			"x has shape [3], want [N, …]"},
		{[]npz.Named{{Name: "x", Array: &npz.Array{Shape: []int{2, 1}, Data: []float32{1, 2}}}, {Name: "y", Array: &npz.Array{Shape: []int{2}, Data: []int64{0, -1}}}},
			"label -1 of example 1"},
		{[]npz.Named{{Name: "x", Array: &npz.Array{Shape: []int{2, 1}, Data: []float32{1, 2}}}, {Name: "y", Array: &npz.Array{Shape: []int{2}, Data: []float32{0, 1}}}},
			"want integer class indices"},
		{[]npz.Named{{Name: "x", Array: &npz.Array{Shape: []int{2, 1}, Data: []float32{1, 2}}}, {Name: "y", Array: &npz.Array{Shape: []int{2}, Data: []int64{0, 1}}},
			{Name: "x_test", Array: &npz.Array{Shape: []int{1, 2}, Data: []float32{1, 2}}}, {Name: "y_test", Array: &npz.Array{Shape: []int{1}, Data: []int64{0}}}},
			"x_test examples are [2], x examples [1]"},
	} {
		if _, err := ReadNPZ(info, writeNPZ(t, c.arrays...), false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
