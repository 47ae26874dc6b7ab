package datasets

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hessian-spectra/runner/npz"
)

// Split is one split ready for a model: N normalised images of C×H×W
// float32 pixels in row-major [N,C,H,W] order, and their labels.
type Split struct {
	// N images of C channels of H×W pixels.
	N, C, H, W int
	// X holds N·C·H·W pixels.
	X []float32
	// Y holds N class indices.
	Y []int32
	// Shape is the shape of one example of the Custom dataset, of which
	// C×H×W is a view; nil for images.
	Shape []int
}

// ExampleShape is the shape of one example: [C, H, W] for images.
func (s *Split) ExampleShape() []int {
	if s.Shape != nil {
		return slices.Clone(s.Shape)
	}
	return []int{s.C, s.H, s.W}
}

// ImageLen is the number of pixels of one image, C·H·W.
func (s *Split) ImageLen() int { return s.C * s.H * s.W }

// Image returns the pixels of image i, sharing memory with s.
func (s *Split) Image(i int) []float32 {
	n := s.ImageLen()
	return s.X[i*n : (i+1)*n]
}

// Take returns a new split holding the images at idx, in that order.
func (s *Split) Take(idx []int) *Split {
	out := &Split{N: len(idx), C: s.C, H: s.H, W: s.W, X: make([]float32, len(idx)*s.ImageLen()), Y: make([]int32, len(idx)), Shape: slices.Clone(s.Shape)}
	for k, i := range idx {
		copy(out.Image(k), s.Image(i))
		out.Y[k] = s.Y[i]
	}
	return out
}

// Dataset is a loaded fetch artifact.
type Dataset struct {
	// Meta is the artifact's meta.json.
	Meta Meta
	// Train and Test are the two splits, normalised.
	Train, Test *Split
}

// ReadMeta reads an artifact's meta.json.
func ReadMeta(dir string) (Meta, error) {
	var m Meta
	p := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return m, fmt.Errorf("dataset artifact: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("dataset artifact: %s: %w", p, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("dataset artifact: %s: format %q, want %q", p, m.Format, Format)
	}
	if m.Channels < 1 || m.Height < 1 || m.Width < 1 || m.Classes < 1 || m.Train.N < 0 || m.Test.N < 0 {
		return m, fmt.Errorf("dataset artifact: %s: %d channels of %d×%d pixels, %d classes, %d and %d images: want positive sizes",
			p, m.Channels, m.Height, m.Width, m.Classes, m.Train.N, m.Test.N)
	}
	if len(m.Mean) != m.Channels || len(m.Std) != m.Channels {
		return m, fmt.Errorf("dataset artifact: %s: %d channels but %d means and %d stds", p, m.Channels, len(m.Mean), len(m.Std))
	}
	return m, nil
}

// Load reads a fetch artifact: both splits, normalised.
func Load(dir string) (*Dataset, error) {
	m, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{Meta: m}
	if ds.Train, err = loadSplit(dir, m, "train"); err != nil {
		return nil, err
	}
	if ds.Test, err = loadSplit(dir, m, "test"); err != nil {
		return nil, err
	}
	return ds, nil
}

// LoadSplit reads one split ("train" or "test") of a fetch artifact, for
// stages that need only one (the Hessian subset comes from "train").
func LoadSplit(dir, split string) (*Split, Meta, error) {
	m, err := ReadMeta(dir)
	if err != nil {
		return nil, m, err
	}
	s, err := loadSplit(dir, m, split)
	return s, m, err
}

func loadSplit(dir string, m Meta, split string) (*Split, error) {
	var sm SplitMeta
	var xf, yf string
	switch split {
	case "train":
		sm, xf, yf = m.Train, trainXFile, trainYFile
	case "test":
		sm, xf, yf = m.Test, testXFile, testYFile
	default:
		return nil, fmt.Errorf("dataset artifact: no split %q (want train or test)", split)
	}
	s := &Split{N: sm.N, C: m.Channels, H: m.Height, W: m.Width, Shape: slices.Clone(m.Shape)}
	xp := filepath.Join(dir, xf)
	x, err := npz.ReadNPYFile(xp)
	if err != nil {
		return nil, fmt.Errorf("dataset artifact: %w", err)
	}
	if want := append([]int{s.N}, s.ExampleShape()...); !slices.Equal(x.Shape, want) {
		return nil, fmt.Errorf("dataset artifact: %s has shape %v, meta.json says %v", xp, x.Shape, want)
	}
	switch d := x.Data.(type) {
	case []uint8:
		if m.Pixels != "uint8" {
			return nil, fmt.Errorf("dataset artifact: %s holds uint8, meta.json says %s", xp, m.Pixels)
		}
		s.X = normalizeAll(d, s.C, s.H*s.W, m.Mean, m.Std)
	case []float32:
		if m.Pixels != "float32" {
			return nil, fmt.Errorf("dataset artifact: %s holds float32, meta.json says %s", xp, m.Pixels)
		}
		s.X = d
	default:
		return nil, fmt.Errorf("dataset artifact: %s: dtype %T, want uint8 or float32", xp, x.Data)
	}
	yp := filepath.Join(dir, yf)
	y, err := npz.ReadNPYFile(yp)
	if err != nil {
		return nil, fmt.Errorf("dataset artifact: %w", err)
	}
	ys, err := y.Int64s()
	if err != nil || len(y.Shape) != 1 || y.Shape[0] != s.N {
		return nil, fmt.Errorf("dataset artifact: %s: shape %v, want %d integer labels", yp, y.Shape, s.N)
	}
	s.Y = make([]int32, s.N)
	for i, v := range ys {
		if v < 0 || v >= int64(m.Classes) {
			return nil, fmt.Errorf("dataset artifact: %s: label %d of image %d is outside 0…%d", yp, v, i, m.Classes-1)
		}
		s.Y[i] = int32(v)
	}
	return s, nil
}
