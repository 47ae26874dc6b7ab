package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/hessian-spectra/runner/datasets/cifar"
	"github.com/hessian-spectra/runner/datasets/download"
	"github.com/hessian-spectra/runner/datasets/idx"
	"github.com/hessian-spectra/runner/datasets/matv5"
	"github.com/hessian-spectra/runner/npz"
)

// Progress receives progress of long loops (downloads in bytes, decoding in
// files). stage.Progress satisfies it.
type Progress = download.Progress

type noProgress struct{}

func (noProgress) Start(string, int) {}
func (noProgress) Advance(int)       {}
func (noProgress) Finish()           {}

// ReadDir reads a dataset from a local folder holding its published files:
//
//   - MNIST, FashionMNIST: train-images-idx3-ubyte, train-labels-idx1-ubyte,
//     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each gzipped (.gz) or
//     not, e.g. /usr/share/datasets/fashion-mnist from Debian's
//     dataset-fashion-mnist;
//   - CIFAR10, CIFAR100: the extracted binary folder (cifar-10-batches-bin,
//     cifar-100-binary), its parent, the .tar.gz, or a folder holding it;
//   - SVHN: train_32x32.mat and test_32x32.mat.
//
// A missing file is an error naming it and the folder.
func ReadDir(info Info, dir string, legacy bool, p Progress) (*Set, error) {
	if p == nil {
		p = noProgress{}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	var set *Set
	switch info.format {
	case formatIDX, formatSVHN:
		if !st.IsDir() {
			return nil, fmt.Errorf("%s: %s is not a folder", info.Name, dir)
		}
		paths := map[string]string{}
		var missing []string
		for _, f := range info.Files {
			cands := []string{f.Name}
			if base, ok := strings.CutSuffix(f.Name, ".gz"); ok {
				cands = append(cands, base)
			}
			found := ""
			for _, c := range cands {
				if _, err := os.Stat(filepath.Join(dir, c)); err == nil {
					found = filepath.Join(dir, c)
					break
				}
			}
			if found == "" {
				missing = append(missing, strings.Join(cands, " or "))
			}
			paths[f.Name] = found
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: folder %s lacks %s", info.Name, dir, strings.Join(missing, ", "))
		}
		set, err = readFiles(info, paths, legacy, p)
	default:
		set, err = readCIFARPath(info, dir, st.IsDir(), legacy)
	}
	if err != nil {
		return nil, err
	}
	set.Source.Kind = "dir"
	return set, nil
}

// readCIFARPath finds the CIFAR files at path: a .tar.gz, a folder of .bin
// files, or a folder holding either.
func readCIFARPath(info Info, path string, isDir, legacy bool) (*Set, error) {
	v := cifar.CIFAR10
	if info.format == formatCIFAR100 {
		v = cifar.CIFAR100
	}
	var tried []string
	if !isDir {
		return readCIFARFiles(info, v, path, "", legacy)
	}
	for _, d := range []string{path, filepath.Join(path, v.Folder)} {
		if _, err := os.Stat(filepath.Join(d, v.Train[0])); err == nil {
			return readCIFARFiles(info, v, "", d, legacy)
		}
		tried = append(tried, filepath.Join(d, v.Train[0]))
	}
	if tgz := filepath.Join(path, v.Tarball); fileExists(tgz) {
		return readCIFARFiles(info, v, tgz, "", legacy)
	}
	tried = append(tried, filepath.Join(path, v.Tarball))
	return nil, fmt.Errorf("%s: found none of %s", info.Name, strings.Join(tried, ", "))
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// readCIFARFiles reads from a tarball (tgz set) or a folder of .bin files.
func readCIFARFiles(info Info, v cifar.Variant, tgz, dir string, legacy bool) (*Set, error) {
	var train, test *cifar.Images
	var files []string
	var err error
	if tgz != "" {
		train, test, err = v.ReadTarGzFile(tgz)
		files = []string{tgz}
	} else {
		train, test, err = v.ReadDir(dir)
		for _, n := range append(append([]string{}, v.Train...), v.Test...) {
			files = append(files, filepath.Join(dir, n))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	conv := func(im *cifar.Images) *Images {
		labels := make([]int32, im.N)
		for i, l := range im.Labels {
			labels[i] = int32(l)
		}
		return &Images{N: im.N, C: 3, H: 32, W: 32, U8: im.Pixels, Labels: labels}
	}
	set := &Set{Info: info, Legacy: legacy, Train: conv(train), Test: conv(test)}
	if set.Source.Files, err = hashFiles(files); err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	return set, set.check()
}

// readFiles reads IDX or SVHN files, given the local path of each published
// file name.
func readFiles(info Info, paths map[string]string, legacy bool, p Progress) (*Set, error) {
	set := &Set{Info: info, Legacy: legacy}
	var err error
	p.Start("read "+info.Name, len(info.Files))
	defer p.Finish()
	switch info.format {
	case formatIDX:
		fs := info.Files
		if set.Train, err = readIDXSplit(info, paths[fs[0].Name], paths[fs[1].Name]); err != nil {
			return nil, err
		}
		p.Advance(2)
		if set.Test, err = readIDXSplit(info, paths[fs[2].Name], paths[fs[3].Name]); err != nil {
			return nil, err
		}
		p.Advance(2)
	case formatSVHN:
		if set.Train, err = readSVHN(info, paths[info.Files[0].Name]); err != nil {
			return nil, err
		}
		p.Advance(1)
		if set.Test, err = readSVHN(info, paths[info.Files[1].Name]); err != nil {
			return nil, err
		}
		p.Advance(1)
	default:
		return nil, fmt.Errorf("%s: not an IDX or MAT dataset", info.Name)
	}
	var files []string
	for _, f := range info.Files {
		files = append(files, paths[f.Name])
	}
	if set.Source.Files, err = hashFiles(files); err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	return set, set.check()
}

// readIDXSplit reads one split's image and label files and pads the images.
func readIDXSplit(info Info, imagesPath, labelsPath string) (*Images, error) {
	x, err := idx.ReadFile(imagesPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	if len(x.Dims) != 3 || x.Dims[1] != info.RawSize || x.Dims[2] != info.RawSize {
		return nil, fmt.Errorf("%s: %s: images have dimensions %v, want [N %d %d]", info.Name, imagesPath, x.Dims, info.RawSize, info.RawSize)
	}
	y, err := idx.ReadFile(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	if len(y.Dims) != 1 {
		return nil, fmt.Errorf("%s: %s: labels have dimensions %v, want [N]", info.Name, labelsPath, y.Dims)
	}
	n := x.Dims[0]
	if y.Dims[0] != n {
		return nil, fmt.Errorf("%s: %s holds %d images but %s holds %d labels", info.Name, imagesPath, n, labelsPath, y.Dims[0])
	}
	labels := make([]int32, n)
	for i, l := range y.Data {
		if int(l) >= info.Classes {
			return nil, fmt.Errorf("%s: %s: label %d of image %d is outside 0…%d", info.Name, labelsPath, l, i, info.Classes-1)
		}
		labels[i] = int32(l)
	}
	return &Images{
		N: n, C: 1, H: info.Size, W: info.Size,
		U8:     padImages(x.Data, n, 1, info.RawSize, info.Pad()),
		Labels: labels,
	}, nil
}

// readSVHN reads one SVHN .mat file: X uint8 [32,32,3,N] and y [N,1] with
// labels 1–10, where 10 means the digit 0 (mapped to 0, as torchvision does).
func readSVHN(info Info, path string) (*Images, error) {
	f, err := matv5.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	X, err := f.Get("X")
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", info.Name, path, err)
	}
	y, err := f.Get("y")
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", info.Name, path, err)
	}
	px, ok := X.Data.([]uint8)
	if !ok || len(X.Dims) != 4 || X.Dims[0] != 32 || X.Dims[1] != 32 || X.Dims[2] != 3 {
		return nil, fmt.Errorf("%s: %s: X is %s%v, want uint8[32 32 3 N]", info.Name, path, X.Class, X.Dims)
	}
	n := X.Dims[3]
	if y.Len() != n || len(y.Dims) != 2 || (y.Dims[0] != n && y.Dims[1] != n) {
		return nil, fmt.Errorf("%s: %s: y is %s%v, want [%d 1] to match X's %d images", info.Name, path, y.Class, y.Dims, n, n)
	}
	labels := make([]int32, n)
	for i, v := range y.Float64s() {
		if v != math.Trunc(v) || v < 0 || v > 10 {
			return nil, fmt.Errorf("%s: %s: label %v of image %d is not an integer in 0…10", info.Name, path, v, i)
		}
		labels[i] = int32(v) % 10
	}
	// X[h,w,c,n] sits at h + 32w + 1024c + 3072n (column-major); the models
	// take [n,c,h,w] row-major, i.e. torchvision's transpose(3, 2, 0, 1).
	out := make([]uint8, len(px))
	for p := 0; p < n*3; p++ {
		src := px[p*1024 : (p+1)*1024]
		dst := out[p*1024 : (p+1)*1024]
		for h := 0; h < 32; h++ {
			for w := 0; w < 32; w++ {
				dst[h*32+w] = src[h+32*w]
			}
		}
	}
	return &Images{N: n, C: 3, H: 32, W: 32, U8: out, Labels: labels}, nil
}

// hashFiles records the size and SHA-256 of each file.
func hashFiles(paths []string) ([]SourceFile, error) {
	out := make([]SourceFile, len(paths))
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[i] = SourceFile{Name: filepath.Base(p), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	return out, nil
}

// NoNetworkHint is appended to the error of a download that could not reach
// its server.
const NoNetworkHint = "without a network, use source: dir with a local copy of the files"

// Download fetches a dataset's published files from their official addresses
// into c.Dir (resuming partial downloads, verifying the published checksums)
// and reads them. When no server can be reached it fails at once with one
// line naming the address and suggesting source: dir.
func Download(ctx context.Context, info Info, c *download.Client, legacy bool, p Progress) (*Set, error) {
	if p == nil {
		p = noProgress{}
	}
	paths := map[string]string{}
	urls := map[string]string{}
	for _, f := range info.Files {
		cc := *c
		cc.Progress = p
		path, err := cc.Fetch(ctx, f)
		if err != nil {
			var ue *download.UnreachableError
			if errors.As(err, &ue) {
				hint := NoNetworkHint
				if info.Name == "FashionMNIST" {
					hint += " (e.g. path: /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist)"
				}
				return nil, fmt.Errorf("%s: %v; %s", info.Name, ue, hint)
			}
			return nil, fmt.Errorf("%s: %w", info.Name, err)
		}
		paths[f.Name] = path
		urls[f.Name] = f.URLs[0]
	}
	var set *Set
	var err error
	switch info.format {
	case formatIDX, formatSVHN:
		set, err = readFiles(info, paths, legacy, p)
	default:
		set, err = readCIFARPath(info, paths[info.Files[0].Name], false, legacy)
	}
	if err != nil {
		return nil, err
	}
	set.Source.Kind = "url"
	for i := range set.Source.Files {
		f := info.Files[i]
		set.Source.Files[i].Name = f.Name
		set.Source.Files[i].URL = urls[f.Name]
		set.Source.Files[i].MD5 = f.MD5
	}
	return set, nil
}

// ReadNPZ reads a dataset from an .npz archive made by any tool. It holds
// images x and labels y (or x_train and y_train), and optionally x_test and
// y_test; without them the test split repeats the training split
// (Meta.Test.SameAsTrain). Images are either
//
//   - uint8 raw pixels, [N,H,W] (one channel) or [N,C,H,W], of the dataset's
//     published size (padded here) or already padded size, preprocessed like
//     the named dataset; or
//   - float32 [N,C,Size,Size], already normalised, taken as they are (e.g.
//     the PyTorch fixture's subset.npz).
//
// Labels may have any integer dtype and must lie in 0…classes−1.
//
// For the Custom dataset, x holds examples of any shape and numeric dtype,
// kept as they are (float32), and the classes are the labels found.
func ReadNPZ(info Info, path string, legacy bool) (*Set, error) {
	ar, err := npz.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	get := func(names ...string) *npz.Array {
		for _, n := range names {
			if a, ok := ar.Arrays[n]; ok {
				return a
			}
		}
		return nil
	}
	x, y := get("x", "x_train"), get("y", "y_train")
	if x == nil || y == nil {
		return nil, fmt.Errorf("%s: %s: want arrays x and y (or x_train and y_train), have %s", info.Name, path, strings.Join(ar.Names, ", "))
	}
	images := func(x, y *npz.Array, name string) (*Images, error) { return npzImages(info, x, y, name, legacy) }
	set := &Set{Info: info, Legacy: legacy}
	if info.IsCustom() {
		// Custom's classes are the labels found: it has no legacy count.
		images, set.Legacy = customImages, false
	}
	if set.Train, err = images(x, y, "x"); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", info.Name, path, err)
	}
	xt, yt := get("x_test"), get("y_test")
	switch {
	case xt != nil && yt != nil:
		if set.Test, err = images(xt, yt, "x_test"); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", info.Name, path, err)
		}
	case xt != nil || yt != nil:
		return nil, fmt.Errorf("%s: %s: has only one of x_test and y_test", info.Name, path)
	default:
		set.Test, set.TestIsTrain = set.Train, true
	}
	if info.IsCustom() {
		if err := finishCustom(set); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", info.Name, path, err)
		}
	}
	if set.Source.Files, err = hashFiles([]string{path}); err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, err)
	}
	set.Source.Kind = "npz"
	if err := set.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

func npzImages(info Info, x, y *npz.Array, name string, legacy bool) (*Images, error) {
	shape := x.Shape
	if len(shape) == 3 && info.Channels == 1 {
		shape = []int{shape[0], 1, shape[1], shape[2]}
	}
	if len(shape) != 4 || shape[1] != info.Channels || shape[2] != shape[3] {
		return nil, fmt.Errorf("%s has shape %v, want [N,%d,H,W] with H = W", name, x.Shape, info.Channels)
	}
	n, side := shape[0], shape[2]
	im := &Images{N: n, C: info.Channels, H: info.Size, W: info.Size}
	switch d := x.Data.(type) {
	case []uint8:
		switch side {
		case info.RawSize:
			im.U8 = padImages(d, n, info.Channels, info.RawSize, info.Pad())
		case info.Size:
			im.U8 = d
		default:
			return nil, fmt.Errorf("%s has %d×%d images, want %d×%d (raw) or %d×%d (padded)", name, side, side, info.RawSize, info.RawSize, info.Size, info.Size)
		}
	case []float32:
		if side != info.Size {
			return nil, fmt.Errorf("%s is float32 with %d×%d images; normalised images must be %d×%d", name, side, side, info.Size, info.Size)
		}
		im.F32 = d
	default:
		dt, _ := x.DType()
		return nil, fmt.Errorf("%s has dtype %s, want uint8 (raw pixels) or float32 (normalised)", name, dt)
	}
	if len(y.Shape) != 1 || y.Shape[0] != n {
		return nil, fmt.Errorf("labels for %s have shape %v, want [%d]", name, y.Shape, n)
	}
	ys, err := y.Int64s()
	if err != nil {
		return nil, fmt.Errorf("labels for %s: %w", name, err)
	}
	classes := info.ClassesFor(legacy)
	im.Labels = make([]int32, n)
	for i, v := range ys {
		if v < 0 || v >= int64(classes) {
			return nil, fmt.Errorf("label %d of image %d (%s) is outside 0…%d", v, i, name, classes-1)
		}
		im.Labels[i] = int32(v)
	}
	return im, nil
}
