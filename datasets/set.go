package datasets

import (
	"fmt"
	"path/filepath"

	"github.com/hessian-spectra/runner/internal/jsonfile"
	"github.com/hessian-spectra/runner/npz"
)

// Images is one split as a fetch artifact stores it: N images of C×H×W
// pixels, already padded to the models' input size, with their labels.
// Exactly one of U8 and F32 is set.
type Images struct {
	// N images of C channels of H×W pixels.
	N, C, H, W int
	// U8 holds raw pixel values (0–255), normalised when loaded. Sources
	// that publish integers (every dataset's own files) give these.
	U8 []uint8
	// F32 holds already normalised pixels, taken as they are (an npz
	// source with float32 images, e.g. the PyTorch fixture's subset).
	F32 []float32
	// Labels holds N class indices.
	Labels []int32
	// Shape is the shape of one example of the Custom dataset, whose C×H×W
	// is only a view of it (see imageAxes); nil for images.
	Shape []int
}

func (im *Images) imageLen() int { return im.C * im.H * im.W }

// exampleShape is the shape of one stored example.
func (im *Images) exampleShape() []int {
	if im.Shape != nil {
		return im.Shape
	}
	return []int{im.C, im.H, im.W}
}

// head returns the first n images (all when n ≤ 0 or n ≥ N), sharing memory.
func (im *Images) head(n int) *Images {
	if n <= 0 || n >= im.N {
		return im
	}
	out := *im
	out.N = n
	out.Labels = im.Labels[:n]
	if im.U8 != nil {
		out.U8 = im.U8[:n*im.imageLen()]
	}
	if im.F32 != nil {
		out.F32 = im.F32[:n*im.imageLen()]
	}
	return &out
}

// padImages zero-pads n raw images of c channels of raw×raw pixels by pad
// pixels on each side.
func padImages(raw []uint8, n, c, rawSize, pad int) []uint8 {
	if pad == 0 {
		return raw
	}
	size := rawSize + 2*pad
	out := make([]uint8, n*c*size*size)
	for p := 0; p < n*c; p++ {
		src := raw[p*rawSize*rawSize:]
		dst := out[p*size*size:]
		for y := 0; y < rawSize; y++ {
			copy(dst[(y+pad)*size+pad:(y+pad)*size+pad+rawSize], src[y*rawSize:(y+1)*rawSize])
		}
	}
	return out
}

// Set is a dataset read from its source and preprocessed up to
// normalisation: what a fetch artifact holds.
type Set struct {
	Info Info
	// Legacy selects the seed's class count (11 for SVHN).
	Legacy bool
	// Train and Test are the two splits.
	Train, Test *Images
	// TestIsTrain is set when an npz source had no test arrays and the
	// training arrays stand in for them.
	TestIsTrain bool
	// Source records where the data came from.
	Source Source
}

// Source records the origin of a Set, for meta.json. It holds no local
// path: the same files read from another folder (another checkout, another
// machine) give the same artifact, byte for byte.
type Source struct {
	// Kind is "url", "dir" or "npz".
	Kind string `json:"kind"`
	// Files are the files read, by base name, with their checksums.
	Files []SourceFile `json:"files"`
}

// SourceFile is one file a Set was read from.
type SourceFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// URL and MD5 are set for downloaded files: where from, and the
	// published checksum that was verified.
	URL string `json:"url,omitempty"`
	MD5 string `json:"md5,omitempty"`
}

// Limit keeps the first train and test images of each split (0 keeps all).
func (s *Set) Limit(train, test int) {
	s.Train = s.Train.head(train)
	s.Test = s.Test.head(test)
}

// Format is the artifact layout version written to meta.json.
const Format = "runner-dataset/1"

// Meta is the content of an artifact's meta.json.
type Meta struct {
	// Format is the layout version, Format.
	Format string `json:"format"`
	// Dataset is the dataset's name.
	Dataset string `json:"dataset"`
	// Classes is the number of model outputs (11 for legacy SVHN).
	Classes  int  `json:"classes"`
	Legacy   bool `json:"legacy"`
	Channels int  `json:"channels"`
	Height   int  `json:"height"`
	Width    int  `json:"width"`
	// Pad is the zero padding added on each side before normalising.
	Pad int `json:"pad"`
	// Mean and Std are the per-channel normalisation constants.
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
	// Pixels is the dtype of the stored images: "uint8" (raw values,
	// normalised on load) or "float32" (normalised already).
	Pixels string `json:"pixels"`
	// Shape is the shape of one example of the Custom dataset (absent for
	// images: [channels, height, width]).
	Shape  []int     `json:"shape,omitempty"`
	Train  SplitMeta `json:"train"`
	Test   SplitMeta `json:"test"`
	Source Source    `json:"source"`
}

// SplitMeta describes one stored split.
type SplitMeta struct {
	// N is the number of images.
	N int `json:"n"`
	// LabelCounts[c] is the number of images of class c.
	LabelCounts []int `json:"label_counts"`
	// SameAsTrain is set on the test split when it repeats the training
	// split (an npz source without test arrays).
	SameAsTrain bool `json:"same_as_train,omitempty"`
}

// Artifact file names.
const (
	MetaFile   = "meta.json"
	trainXFile = "train_x.npy"
	trainYFile = "train_y.npy"
	testXFile  = "test_x.npy"
	testYFile  = "test_y.npy"
)

// Meta returns the meta.json content describing s.
func (s *Set) Meta() Meta {
	classes := s.Info.ClassesFor(s.Legacy)
	counts := func(im *Images) []int {
		c := make([]int, classes)
		for _, y := range im.Labels {
			c[y]++
		}
		return c
	}
	pixels := "uint8"
	if s.Train.F32 != nil {
		pixels = "float32"
	}
	return Meta{
		Format: Format, Dataset: s.Info.Name, Classes: classes, Legacy: s.Legacy,
		Channels: s.Train.C, Height: s.Train.H, Width: s.Train.W, Pad: s.Info.Pad(),
		Mean: s.Info.Mean, Std: s.Info.Std, Pixels: pixels, Shape: s.Train.Shape,
		Train:  SplitMeta{N: s.Train.N, LabelCounts: counts(s.Train)},
		Test:   SplitMeta{N: s.Test.N, LabelCounts: counts(s.Test), SameAsTrain: s.TestIsTrain},
		Source: s.Source,
	}
}

// Write writes s as a fetch artifact into dir (see the package doc). The
// same Set always gives the same bytes. Each file appears by rename and
// meta.json comes last, so a directory with a meta.json is complete.
func (s *Set) Write(dir string) error {
	if err := s.check(); err != nil {
		return err
	}
	for _, sp := range []struct {
		im     *Images
		xf, yf string
	}{{s.Train, trainXFile, trainYFile}, {s.Test, testXFile, testYFile}} {
		shape := append([]int{sp.im.N}, sp.im.exampleShape()...)
		x := &npz.Array{Shape: shape, Data: sp.im.U8}
		if sp.im.F32 != nil {
			x.Data = sp.im.F32
		}
		if err := npz.WriteNPYFile(filepath.Join(dir, sp.xf), x); err != nil {
			return fmt.Errorf("write dataset: %w", err)
		}
		y := make([]int64, sp.im.N)
		for i, l := range sp.im.Labels {
			y[i] = int64(l)
		}
		if err := npz.WriteNPYFile(filepath.Join(dir, sp.yf), &npz.Array{Shape: []int{sp.im.N}, Data: y}); err != nil {
			return fmt.Errorf("write dataset: %w", err)
		}
	}
	if err := jsonfile.Write(filepath.Join(dir, MetaFile), s.Meta()); err != nil {
		return fmt.Errorf("write dataset: %w", err)
	}
	return nil
}

// check verifies the invariants Write and Load rely on.
func (s *Set) check() error {
	classes := s.Info.ClassesFor(s.Legacy)
	for _, sp := range []struct {
		name string
		im   *Images
	}{{"train", s.Train}, {"test", s.Test}} {
		im := sp.im
		if im == nil {
			return fmt.Errorf("%s: no %s split", s.Info.Name, sp.name)
		}
		if (im.U8 == nil) == (im.F32 == nil) {
			return fmt.Errorf("%s %s: want exactly one of uint8 and float32 pixels", s.Info.Name, sp.name)
		}
		if (im.U8 == nil) != (s.Train.U8 == nil) {
			return fmt.Errorf("%s: train and test pixels have different dtypes", s.Info.Name)
		}
		n := im.N * im.imageLen()
		if len(im.U8)+len(im.F32) != n || len(im.Labels) != im.N {
			return fmt.Errorf("%s %s: %d images of %d×%d×%d need %d pixels and %d labels, have %d and %d",
				s.Info.Name, sp.name, im.N, im.C, im.H, im.W, n, im.N, len(im.U8)+len(im.F32), len(im.Labels))
		}
		if s.Info.IsCustom() {
			if err := checkCustom(im); err != nil {
				return fmt.Errorf("%s %s: %w", s.Info.Name, sp.name, err)
			}
		} else if im.C != s.Info.Channels || im.H != s.Info.Size || im.W != s.Info.Size {
			return fmt.Errorf("%s %s: images are %d×%d×%d, want %d×%d×%d", s.Info.Name, sp.name,
				im.C, im.H, im.W, s.Info.Channels, s.Info.Size, s.Info.Size)
		}
		for i, y := range im.Labels {
			if y < 0 || int(y) >= classes {
				return fmt.Errorf("%s %s: label %d of image %d is outside 0…%d", s.Info.Name, sp.name, y, i, classes-1)
			}
		}
	}
	return nil
}
