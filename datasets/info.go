package datasets

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/datasets/download"
)

// Info holds the constants of one dataset, as the seed uses them
// (SEED-SPEC §1.1, §1.2), and where it is published.
type Info struct {
	// Name is the dataset's name in specs and artifacts, e.g. "FashionMNIST".
	Name string
	// Channels is the number of image channels (1 or 3).
	Channels int
	// RawSize is the side of the published images in pixels.
	RawSize int
	// Size is the side after zero padding: the models' input size.
	Size int
	// Classes is the number of model outputs.
	Classes int
	// LegacyClasses is the number of outputs the seed's eigenspectrum
	// scripts use (11 for SVHN, whose output 10 is never a target).
	LegacyClasses int
	// Mean and Std are the per-channel normalisation constants, applied to
	// pixels scaled to [0, 1].
	Mean, Std []float64
	// TrainN and TestN are the sizes of the published splits.
	TrainN, TestN int
	// Files are the published files with their official addresses,
	// checksums (torchvision's for MNIST, FashionMNIST and SVHN; the CIFAR
	// page's for the binary CIFAR archives) and sizes in bytes (as the
	// servers deliver them; a download never grows past them).
	Files []download.File

	format format
}

// format is how a dataset's files are laid out.
type format int

const (
	formatIDX format = iota + 1
	formatCIFAR10
	formatCIFAR100
	formatSVHN
	formatCustom // arrays of one's own (custom.go)
)

// Pad returns the zero padding added on each side, in pixels.
func (i Info) Pad() int { return (i.Size - i.RawSize) / 2 }

// ClassesFor returns the number of classes, with the seed's legacy count
// when legacy is set.
func (i Info) ClassesFor(legacy bool) int {
	if legacy {
		return i.LegacyClasses
	}
	return i.Classes
}

// per255 divides at run time in float64, as Python evaluates 125.3/255, so
// that the float32 constants PyTorch derives from them are the same.
func per255(v ...float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x / 255
	}
	return out
}

func idxFiles(mirrors []string, md5s [4]string, sizes [4]int64) []download.File {
	names := [4]string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
	files := make([]download.File, 4)
	for k, n := range names {
		files[k] = download.File{Name: n, MD5: md5s[k], Size: sizes[k]}
		for _, m := range mirrors {
			files[k].URLs = append(files[k].URLs, m+n)
		}
	}
	return files
}

// table is the one place the dataset constants live.
var table = []Info{
	{
		Name: "MNIST", Channels: 1, RawSize: 28, Size: 32, Classes: 10, LegacyClasses: 10,
		Mean: []float64{0.1307}, Std: []float64{0.3081}, TrainN: 60000, TestN: 10000,
		format: formatIDX,
		Files: idxFiles([]string{"https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"},
			[4]string{"f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432", "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"},
			[4]int64{9912422, 28881, 1648877, 4542}),
	},
	{
		Name: "FashionMNIST", Channels: 1, RawSize: 28, Size: 32, Classes: 10, LegacyClasses: 10,
		Mean: []float64{0.5}, Std: []float64{0.5}, TrainN: 60000, TestN: 10000,
		format: formatIDX,
		Files: idxFiles([]string{"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"},
			[4]string{"8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe", "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"},
			[4]int64{26421880, 29515, 4422102, 5148}),
	},
	{
		Name: "CIFAR10", Channels: 3, RawSize: 32, Size: 32, Classes: 10, LegacyClasses: 10,
		Mean: per255(125.3, 123.0, 113.9), Std: per255(63.0, 62.1, 66.7), TrainN: 50000, TestN: 10000,
		format: formatCIFAR10,
		Files: []download.File{{Name: "cifar-10-binary.tar.gz", URLs: []string{"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
			MD5: "c32a1d4ab5d03f1284b67883e8d87530", Size: 170052171}},
	},
	{
		Name: "CIFAR100", Channels: 3, RawSize: 32, Size: 32, Classes: 100, LegacyClasses: 100,
		Mean: per255(129.3, 124.1, 112.4), Std: per255(68.2, 65.4, 70.4), TrainN: 50000, TestN: 10000,
		format: formatCIFAR100,
		Files: []download.File{{Name: "cifar-100-binary.tar.gz", URLs: []string{"https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"},
			MD5: "03b5dce01913d631647c71ecec9e9cb8", Size: 168513733}},
	},
	{
		Name: "SVHN", Channels: 3, RawSize: 32, Size: 32, Classes: 10, LegacyClasses: 11,
		Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.5, 0.5, 0.5}, TrainN: 73257, TestN: 26032,
		format: formatSVHN,
		Files: []download.File{
			{Name: "train_32x32.mat", URLs: []string{"http://ufldl.stanford.edu/housenumbers/train_32x32.mat"}, MD5: "e26dedcc434d2e4c54c9b2d4a06d8373", Size: 182040794},
			{Name: "test_32x32.mat", URLs: []string{"http://ufldl.stanford.edu/housenumbers/test_32x32.mat"}, MD5: "eb5a983be6a315427106f1b164d9cef3", Size: 64275384},
		},
	},
}

// Names returns the names of the known datasets, sorted, and Custom.
func Names() []string {
	names := make([]string, len(table))
	for i, d := range table {
		names[i] = d.Name
	}
	sort.Strings(names)
	return append(names, Custom)
}

// Lookup returns the constants of the named dataset. The name is matched
// exactly; the error lists the known names. Custom's Info leaves the
// constants to the arrays (ReadNPZ).
func Lookup(name string) (Info, error) {
	if name == Custom {
		return customInfo, nil
	}
	for _, d := range table {
		if d.Name == name {
			d.Mean = append([]float64(nil), d.Mean...)
			d.Std = append([]float64(nil), d.Std...)
			d.Files = append([]download.File(nil), d.Files...)
			return d, nil
		}
	}
	return Info{}, fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(Names(), ", "))
}

// IsCustom reports whether the dataset is Custom: arrays of one's own,
// read only from an .npz.
func (i Info) IsCustom() bool { return i.format == formatCustom }
