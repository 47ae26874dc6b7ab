package onnxmodel

import (
	"os"
	"testing"

	"github.com/hessian-spectra/runner/internal/corrupt"
)

// TestCorruptONNX is the corpus of damaged ONNX files: truncations must be
// refused, and single bit flips (which may leave a valid model) must not
// panic; every error is one line naming the file.
func TestCorruptONNX(t *testing.T) {
	var ty corrupt.Tally
	for _, name := range []string{"mlp.onnx", "zoo32.onnx"} {
		good, err := os.ReadFile(fixtures + name)
		if err != nil {
			t.Fatal(err)
		}
		cases := append(corrupt.Truncations(good, 8, 64, 200), corrupt.Case{Name: "empty"}, corrupt.Case{Name: "text", Data: []byte("not a model")})
		ty.RejectFiles(t, ".onnx", cases, func(path string) error {
			_, err := Open(path)
			return err
		})
		step := max(1, len(good)/150) // about 150 bytes spread over the file, 8 flips each
		dir := t.TempDir()
		for i := 0; i < len(good); i += step {
			for _, c := range corrupt.BitFlips(good, i, i+1) {
				path := dir + "/flipped.onnx"
				if err := os.WriteFile(path, c.Data, 0o644); err != nil {
					t.Fatal(err)
				}
				ty.Survive(t, name+": "+c.Name, func() error {
					_, err := Open(path)
					return err
				})
			}
		}
	}
	ty.Log(t, "onnxmodel.Open")
}
