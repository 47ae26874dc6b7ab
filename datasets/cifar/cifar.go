// Package cifar reads the binary versions of CIFAR-10 and CIFAR-100
// (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz): fixed-size records of
// label bytes followed by a 32×32 RGB image, from the extracted .bin files or
// straight from the tarball.
//
// A CIFAR-10 record is 1 label byte (0–9) and 3072 pixel bytes; a CIFAR-100
// record is a coarse label byte (0–19), a fine label byte (0–99) and 3072
// pixel bytes. The pixels are the red plane, then green, then blue, each 32
// rows of 32 bytes: already channel-major, the [3,32,32] layout the models
// take. For CIFAR-100 this package returns the fine labels, as torchvision
// does.
package cifar

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/hessian-spectra/runner/internal/bounded"
)

// ImageBytes is the size of one image: 3 channels of 32×32 bytes.
const ImageBytes = 3 * 32 * 32

// MaxRecords bounds the records of one .bin file: the largest published
// one, CIFAR-100's train.bin, holds 50000. A larger file or archive member
// is refused before it is read.
const MaxRecords = 50000

// maxArchiveBytes bounds the decompressed size of a .tar.gz (1 GiB): the
// published ones expand to about 180 MB. Reading stops with an error past
// it, so a decompression bomb costs bounded time as well as bounded memory.
// A variable so that tests can lower it.
var maxArchiveBytes int64 = 1 << 30

// Variant describes one of the two datasets' binary layout.
type Variant struct {
	// Name is "CIFAR10" or "CIFAR100".
	Name string
	// LabelBytes is the number of label bytes before each image.
	LabelBytes int
	// LabelIndex is the position of the label this package returns among
	// the label bytes (the fine label for CIFAR-100).
	LabelIndex int
	// Classes bounds the labels: each must be below it.
	Classes int
	// Folder is the folder the tarball extracts to.
	Folder string
	// Tarball is the published archive's file name.
	Tarball string
	// Train and Test are the .bin files of each split, in order.
	Train, Test []string
}

// The two published variants.
var (
	CIFAR10 = Variant{
		Name: "CIFAR10", LabelBytes: 1, LabelIndex: 0, Classes: 10,
		Folder: "cifar-10-batches-bin", Tarball: "cifar-10-binary.tar.gz",
		Train: []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
		Test:  []string{"test_batch.bin"},
	}
	CIFAR100 = Variant{
		Name: "CIFAR100", LabelBytes: 2, LabelIndex: 1, Classes: 100,
		Folder: "cifar-100-binary", Tarball: "cifar-100-binary.tar.gz",
		Train: []string{"train.bin"},
		Test:  []string{"test.bin"},
	}
)

// RecordBytes is the size of one record.
func (v Variant) RecordBytes() int { return v.LabelBytes + ImageBytes }

// maxFileBytes is the size of a .bin file of MaxRecords records.
func (v Variant) maxFileBytes() int64 { return int64(MaxRecords) * int64(v.RecordBytes()) }

// tooLarge is the error for a .bin file or member of size bytes.
func (v Variant) tooLarge(size int64) error {
	return fmt.Errorf("%d bytes, more than the %d of %d %s records (the most a published file holds)", size, v.maxFileBytes(), MaxRecords, v.Name)
}

// Images holds decoded records.
type Images struct {
	// N is the number of images.
	N int
	// Pixels holds N×3×32×32 bytes, image-major then channel, row, column.
	Pixels []uint8
	// Labels holds N labels, each below the variant's Classes.
	Labels []uint8
}

// Decode decodes one .bin file's content. It fails when the size is not a
// whole number of records (a truncated file) or a label is out of range.
func (v Variant) Decode(b []byte) (*Images, error) {
	rec := v.RecordBytes()
	if len(b) == 0 {
		return nil, errors.New("empty file, want records")
	}
	if len(b)%rec != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %d-byte %s records (%d records and %d bytes over: truncated?)",
			len(b), rec, v.Name, len(b)/rec, len(b)%rec)
	}
	n := len(b) / rec
	im := &Images{N: n, Pixels: make([]uint8, n*ImageBytes), Labels: make([]uint8, n)}
	for i := 0; i < n; i++ {
		r := b[i*rec : (i+1)*rec]
		for j := 0; j < v.LabelBytes; j++ {
			limit := v.Classes
			if v.LabelBytes == 2 && j == 0 {
				limit = 20 // CIFAR-100 coarse labels
			}
			if int(r[j]) >= limit {
				return nil, fmt.Errorf("record %d: label byte %d is %d, want below %d", i, j, r[j], limit)
			}
		}
		im.Labels[i] = r[v.LabelIndex]
		copy(im.Pixels[i*ImageBytes:], r[v.LabelBytes:])
	}
	return im, nil
}

// ReadFile reads and decodes one .bin file of at most MaxRecords records.
// Errors name the file.
func (v Variant) ReadFile(name string) (*Images, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > v.maxFileBytes() {
		return nil, fmt.Errorf("%s: %w", name, v.tooLarge(st.Size()))
	}
	b, err := bounded.ReadFull(f, st.Size())
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("file shrank to %d bytes while read", len(b))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	im, err := v.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return im, nil
}

// Concat joins images in order.
func Concat(parts ...*Images) *Images {
	out := &Images{}
	for _, p := range parts {
		out.N += p.N
		out.Pixels = append(out.Pixels, p.Pixels...)
		out.Labels = append(out.Labels, p.Labels...)
	}
	return out
}

// ReadDir reads the train and test splits from a folder holding the
// extracted .bin files. A missing file is an error naming it.
func (v Variant) ReadDir(dir string) (train, test *Images, err error) {
	read := func(names []string) (*Images, error) {
		parts := make([]*Images, len(names))
		for i, n := range names {
			if parts[i], err = v.ReadFile(filepath.Join(dir, n)); err != nil {
				return nil, err
			}
		}
		return Concat(parts...), nil
	}
	if train, err = read(v.Train); err != nil {
		return nil, nil, err
	}
	if test, err = read(v.Test); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// ReadTarGz reads the train and test splits from the published .tar.gz,
// without extracting it: each .bin file is matched by its base name wherever
// it sits in the archive, and must appear once. Errors name the archive and
// the member. A member of more than MaxRecords records is refused before it
// is read, and the decompressed archive is read through a limit (1 GiB), so
// that a decompression bomb is an error.
func (v Variant) ReadTarGz(r io.Reader, archive string) (train, test *Images, err error) {
	gzr, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: gzip: %w", archive, err)
	}
	zr := bounded.LimitReader(gzr, maxArchiveBytes, "the decompressed archive")
	want := map[string]bool{}
	for _, n := range append(append([]string{}, v.Train...), v.Test...) {
		want[n] = true
	}
	found := map[string]*Images{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", archive, truncated(err))
		}
		base := path.Base(h.Name)
		if h.Typeflag != tar.TypeReg || !want[base] {
			continue
		}
		if found[base] != nil {
			return nil, nil, fmt.Errorf("%s: %s: a second %s in the archive", archive, bounded.Name(h.Name), base)
		}
		if h.Size > v.maxFileBytes() {
			return nil, nil, fmt.Errorf("%s: %s: %w", archive, bounded.Name(h.Name), v.tooLarge(h.Size))
		}
		b, err := bounded.ReadFull(tr, h.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", archive, bounded.Name(h.Name), truncated(err))
		}
		if found[base], err = v.Decode(b); err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", archive, bounded.Name(h.Name), err)
		}
	}
	// Read to the end of the gzip stream so that its CRC is checked.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", archive, truncated(err))
	}
	collect := func(names []string) (*Images, error) {
		parts := make([]*Images, len(names))
		for i, n := range names {
			if parts[i] = found[n]; parts[i] == nil {
				return nil, fmt.Errorf("%s: no %s in the archive (want %s/%s)", archive, n, v.Folder, n)
			}
		}
		return Concat(parts...), nil
	}
	if train, err = collect(v.Train); err != nil {
		return nil, nil, err
	}
	if test, err = collect(v.Test); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// truncated rewords the errors of a premature end of the archive.
func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return errors.New("archive ends early (truncated)")
	}
	return err
}

// ReadTarGzFile reads the splits from the .tar.gz at name.
func (v Variant) ReadTarGzFile(name string) (train, test *Images, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return v.ReadTarGz(f, name)
}
