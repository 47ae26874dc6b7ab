// Command mksample cuts the committed FashionMNIST sample
// (testdata/fashion-mnist-sample) out of the real dataset: the first -train
// training and first -test test images with their labels, written as the
// four standard IDX files, gzipped without a name or timestamp so the same
// input gives the same bytes.
//
// The committed sample was made from Debian's dataset-fashion-mnist with
//
//	go run ./datasets/internal/mksample -src /usr/share/datasets/fashion-mnist \
//	    -train 4000 -test 1000 -out testdata/fashion-mnist-sample
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hessian-spectra/runner/datasets/idx"
)

func main() {
	src := flag.String("src", "/usr/share/datasets/fashion-mnist", "folder with the four FashionMNIST IDX files")
	out := flag.String("out", "testdata/fashion-mnist-sample", "output folder")
	nTrain := flag.Int("train", 4000, "training images to keep (the first ones)")
	nTest := flag.Int("test", 1000, "test images to keep (the first ones)")
	flag.Parse()
	if err := run(*src, *out, *nTrain, *nTest); err != nil {
		fmt.Fprintln(os.Stderr, "mksample:", err)
		os.Exit(1)
	}
}

func run(src, out string, nTrain, nTest int) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		for _, kind := range []string{"images-idx3-ubyte", "labels-idx1-ubyte"} {
			name := split.prefix + "-" + kind + ".gz"
			a, err := idx.ReadFile(filepath.Join(src, name))
			if err != nil {
				return err
			}
			if split.n > a.Dims[0] {
				return fmt.Errorf("%s holds %d items, fewer than %d", name, a.Dims[0], split.n)
			}
			dims := append([]int{split.n}, a.Dims[1:]...)
			per := len(a.Data) / a.Dims[0]
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			if err := idx.Write(zw, dims, a.Data[:split.n*per]); err != nil {
				return err
			}
			if err := zw.Close(); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, name), buf.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
