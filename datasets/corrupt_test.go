package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/corrupt"
	"github.com/hessian-spectra/runner/npz"
)

// TestLoadCorpus damages a fetch artifact in every file Load reads — sizes
// in meta.json that disagree with the arrays or are not positive, arrays
// truncated, with huge shapes, the wrong dtype or labels out of range —
// and checks that each gives a one-line error and no panic.
func TestLoadCorpus(t *testing.T) {
	s, err := ReadDir(mustLookup(t, "MNIST"), mnistDir(t), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := s.Write(base); err != nil {
		t.Fatal(err)
	}
	meta, _ := os.ReadFile(filepath.Join(base, MetaFile))
	trainX, _ := os.ReadFile(filepath.Join(base, trainXFile))
	edit := func(old, new string) func(string) error {
		return func(d string) error {
			if !bytes.Contains(meta, []byte(old)) {
				return fmt.Errorf("meta.json has no %q", old)
			}
			return os.WriteFile(filepath.Join(d, MetaFile), bytes.Replace(meta, []byte(old), []byte(new), 1), 0o644)
		}
	}
	writeNPY := func(name string, a *npz.Array) func(string) error {
		return func(d string) error { return npz.WriteNPYFile(filepath.Join(d, name), a) }
	}
	writeRaw := func(name string, b []byte) func(string) error {
		return func(d string) error { return os.WriteFile(filepath.Join(d, name), b, 0o644) }
	}
	cases := map[string]func(string) error{
		"zero channels":    edit(`"channels": 1`, `"channels": 0`),
		"zero height":      edit(`"height": 32`, `"height": 0`),
		"negative width":   edit(`"width": 32`, `"width": -32`),
		"zero classes":     edit(`"classes": 10`, `"classes": 0`),
		"negative train n": edit(`"n": 3`, `"n": -3`),
		"pixels float16":   edit(`"pixels": "uint8"`, `"pixels": "float16"`),
		// Arrays that agree with a meta.json of empty images (a division by
		// zero when normalising, before sizes were checked).
		"images of no pixels": func(d string) error {
			m, err := ReadMeta(d)
			if err != nil {
				return err
			}
			m.Channels, m.Height, m.Width, m.Mean, m.Std = 0, 0, 0, nil, nil
			b, _ := json.Marshal(m)
			if err := os.WriteFile(filepath.Join(d, MetaFile), b, 0o644); err != nil {
				return err
			}
			return npz.WriteNPYFile(filepath.Join(d, trainXFile), &npz.Array{Shape: []int{3, 0, 0, 0}, Data: []uint8{}})
		},
		"meta not json":         writeRaw(MetaFile, []byte("{\"format\":")),
		"meta is a list":        writeRaw(MetaFile, []byte("[1, 2]")),
		"empty meta":            writeRaw(MetaFile, nil),
		"no train_x":            func(d string) error { return os.Remove(filepath.Join(d, trainXFile)) },
		"train_x empty":         writeRaw(trainXFile, nil),
		"train_x huge shape":    writeRaw(trainXFile, []byte("\x93NUMPY\x01\x00\x46\x00{'descr': '|u1', 'fortran_order': False, 'shape': (3000000000000, 1, 32, 32), }\n")),
		"train_x int64 pixels":  writeNPY(trainXFile, &npz.Array{Shape: []int{3, 1, 32, 32}, Data: make([]int64, 3*1024)}),
		"train_x wrong shape":   writeNPY(trainXFile, &npz.Array{Shape: []int{3, 32, 32}, Data: make([]uint8, 3*1024)}),
		"train_y floats":        writeNPY(trainYFile, &npz.Array{Shape: []int{3}, Data: []float64{0, 1, 2}}),
		"train_y negative":      writeNPY(trainYFile, &npz.Array{Shape: []int{3}, Data: []int64{0, -1, 2}}),
		"train_y too few":       writeNPY(trainYFile, &npz.Array{Shape: []int{2}, Data: []int64{0, 1}}),
		"train_y 2-d":           writeNPY(trainYFile, &npz.Array{Shape: []int{3, 1}, Data: []int64{0, 1, 2}}),
		"test_y label too high": writeNPY(testYFile, &npz.Array{Shape: []int{2}, Data: []int64{0, 10}}),
	}
	for _, c := range corrupt.Truncations(trainX, 10, len(trainX)-3*1024, len(trainX)-1024) {
		cases["train_x "+c.Name] = writeRaw(trainXFile, c.Data)
	}
	var ty corrupt.Tally
	for name, damage := range cases {
		d := t.TempDir()
		if err := os.CopyFS(d, os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
		if err := damage(d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err := ty.Reject(t, name, func() error { _, err := Load(d); return err })
		if err != nil && !strings.Contains(err.Error(), d) {
			t.Errorf("%s: error %q does not name the artifact's file", name, err)
		}
	}
	ty.Log(t, "fetch artifact")
}
