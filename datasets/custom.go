package datasets

import (
	"fmt"
	"slices"

	"github.com/hessian-spectra/runner/npz"
)

// Custom is the dataset name of arrays of one's own, read from an .npz
// (fetch source npz): examples of any shape the model takes — images,
// sequences, feature vectors — stored as float32 exactly as given (no
// padding, no normalisation), with integer labels 0…classes−1, classes
// being the largest label plus one. The seed's per-class subset applies
// unchanged.
const Custom = "custom"

// customInfo is Custom's entry: everything else comes from the arrays.
var customInfo = Info{Name: Custom, format: formatCustom}

// finishCustom completes a Custom set whose splits ReadNPZ has read
// (customImages): the test examples must have the training examples' shape,
// and the classes, channels, means and stds come from the arrays.
func finishCustom(set *Set) error {
	if !slices.Equal(set.Test.Shape, set.Train.Shape) {
		return fmt.Errorf("x_test examples are %v, x examples %v; want one shape", set.Test.Shape, set.Train.Shape)
	}
	classes := int(slices.Max(set.Train.Labels)) + 1
	if len(set.Test.Labels) > 0 {
		classes = max(classes, int(slices.Max(set.Test.Labels))+1)
	}
	set.Info.Classes, set.Info.LegacyClasses = classes, classes
	set.Info.Channels = set.Train.C
	set.Info.Mean, set.Info.Std = make([]float64, set.Train.C), make([]float64, set.Train.C)
	for c := range set.Info.Std {
		set.Info.Std[c] = 1
	}
	return nil
}

// customImages converts one split of custom arrays.
func customImages(x, y *npz.Array, name string) (*Images, error) {
	if len(x.Shape) < 2 || x.Shape[0] < 1 {
		return nil, fmt.Errorf("%s has shape %v, want [N, …] with N ≥ 1 examples of at least one value", name, x.Shape)
	}
	if _, isBool := x.Data.([]bool); isBool {
		return nil, fmt.Errorf("%s is boolean, want numbers", name)
	}
	n, shape := x.Shape[0], slices.Clone(x.Shape[1:])
	if len(y.Shape) != 1 || y.Shape[0] != n {
		return nil, fmt.Errorf("labels for %s have shape %v, want [%d]", name, y.Shape, n)
	}
	ys, err := y.Int64s()
	if err != nil {
		return nil, fmt.Errorf("labels for %s: %w (want integer class indices)", name, err)
	}
	im := &Images{N: n, F32: x.Float32s(), Labels: make([]int32, n), Shape: shape}
	im.C, im.H, im.W = imageAxes(shape)
	for i, v := range ys {
		if v < 0 || v > 1<<20 {
			return nil, fmt.Errorf("label %d of example %d (%s) is not a class index 0, 1, …", v, i, name)
		}
		im.Labels[i] = int32(v)
	}
	return im, nil
}

// imageAxes views an example shape as C×H×W: itself for three axes, else
// one channel of one row (rank 1) or of the first axis's rows (rank 2), or
// the first two axes and the rest flattened (rank 4 and more).
func imageAxes(shape []int) (c, h, w int) {
	switch len(shape) {
	case 1:
		return 1, 1, shape[0]
	case 2:
		return 1, shape[0], shape[1]
	case 3:
		return shape[0], shape[1], shape[2]
	}
	return shape[0], shape[1], sizeOfInts(shape[2:])
}

func sizeOfInts(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// checkCustom verifies that custom examples are float32 and that C×H×W is
// the view of their shape that imageAxes gives.
func checkCustom(im *Images) error {
	if len(im.Shape) == 0 || im.F32 == nil {
		return fmt.Errorf("custom examples need a shape (have %v) and float32 values", im.Shape)
	}
	if c, h, w := imageAxes(im.Shape); c != im.C || h != im.H || w != im.W {
		return fmt.Errorf("examples of shape %v stored as %d×%d×%d", im.Shape, im.C, im.H, im.W)
	}
	return nil
}
