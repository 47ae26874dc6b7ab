package train

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/internal/corrupt"
	"github.com/hessian-spectra/runner/npz"
)

// savedState writes the resumable state of a trainer with cfg after epoch
// 1 and 3 steps into a scratch dir (no training: the optimizer state is
// its zeros, and only the files matter here), and returns the dir.
func savedState(t *testing.T, cfg Config) string {
	t.Helper()
	tr := newTrainer(t, cfg)
	tr.steps = 3
	scratch := t.TempDir()
	if err := tr.saveResume(scratch, 1); err != nil {
		t.Fatal(err)
	}
	return scratch
}

// copyDir copies the files of a scratch dir into a new temporary dir.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return out
}

// hugeShapeNPZ is an archive whose conv1.weight announces 2⁴⁰ float32s
// and holds 16 bytes.
func hugeShapeNPZ(t *testing.T) []byte {
	t.Helper()
	h := "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }\n"
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("conv1.weight.npy")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("\x93NUMPY\x01\x00"))
	w.Write([]byte{byte(len(h)), 0})
	w.Write([]byte(h))
	w.Write(make([]byte, 16))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCorruptResumeState is the corpus of damaged resumable state: the
// weights (truncated, bit flips, missing or extra tensors, wrong shapes
// or dtypes), the optimizer state (missing or extra slots, wrong shapes,
// dtypes or step count) and resume.json. Each must be refused with a
// one-line error naming the file, no panic, and the trainer left as it was;
// the undamaged state must restore.
func TestCorruptResumeState(t *testing.T) {
	for name, opt := range map[string]Optimizer{"sgd": SGD(0.05, 0.9), "adam": Adam(1e-3)} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Model: lenet(t), Optimizer: opt, Epochs: 3, BatchSize: 64, Seed: 5}
			scratch := savedState(t, cfg)
			dir := filepath.Join(scratch, resumeDir)
			weights, optim := CheckpointPath(dir, 1), OptimizerPath(dir, 1)

			tr := newTrainer(t, cfg)
			if err := tr.restore(dir, 1, 3); err != nil || tr.Steps() != 3 {
				t.Fatalf("the undamaged state: %v (steps %d)", err, tr.Steps())
			}

			// rel returns a path of the state relative to the scratch dir.
			rel := func(path string) string {
				r, err := filepath.Rel(scratch, path)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			wb, _ := os.ReadFile(weights)
			ob, _ := os.ReadFile(optim)
			wa, err := npz.ReadFile(weights)
			if err != nil {
				t.Fatal(err)
			}
			oa, err := npz.ReadFile(optim)
			if err != nil {
				t.Fatal(err)
			}
			// rewrite returns a damage that writes the archive ar, edited by f,
			// to path.
			rewrite := func(path string, ar *npz.Archive, f func(map[string]*npz.Array) []string) func(string) error {
				return func(d string) error {
					arrays := map[string]*npz.Array{}
					for n, a := range ar.Arrays {
						arrays[n] = a
					}
					names := f(arrays)
					if names == nil {
						names = ar.Names
					}
					var out []npz.Named
					for _, n := range names {
						if a, ok := arrays[n]; ok {
							out = append(out, npz.Named{Name: n, Array: a})
						}
					}
					return npz.WriteFile(filepath.Join(d, rel(path)), out)
				}
			}
			raw := func(path string, b []byte) func(string) error {
				return func(d string) error { return os.WriteFile(filepath.Join(d, rel(path)), b, 0o644) }
			}
			f64 := func(a *npz.Array) *npz.Array { return &npz.Array{Shape: a.Shape, Data: a.Float64s()} }
			slot := "conv1.weight.momentum_buffer"
			if name == "adam" {
				slot = "conv1.weight.exp_avg"
			}
			cases := map[string]func(string) error{
				"weights: missing conv1.weight": rewrite(weights, wa, func(m map[string]*npz.Array) []string { delete(m, "conv1.weight"); return nil }),
				"weights: extra tensor": rewrite(weights, wa, func(m map[string]*npz.Array) []string {
					m["conv9.weight"] = &npz.Array{Shape: []int{1}, Data: []float32{0}}
					return append(wa.Names, "conv9.weight")
				}),
				"weights: fc3.weight transposed": rewrite(weights, wa, func(m map[string]*npz.Array) []string {
					a := m["fc3.weight"]
					m["fc3.weight"] = &npz.Array{Shape: []int{a.Shape[1], a.Shape[0]}, Data: a.Data}
					return nil
				}),
				"weights: all float64 for a float32 run": rewrite(weights, wa, func(m map[string]*npz.Array) []string {
					for n, a := range m {
						m[n] = f64(a)
					}
					return nil
				}),
				"weights: one tensor float64": rewrite(weights, wa, func(m map[string]*npz.Array) []string { m["fc1.bias"] = f64(m["fc1.bias"]); return nil }),
				"weights: int64 bias": rewrite(weights, wa, func(m map[string]*npz.Array) []string {
					m["fc1.bias"] = &npz.Array{Shape: []int{120}, Data: make([]int64, 120)}
					return nil
				}),
				"weights: bool bias": rewrite(weights, wa, func(m map[string]*npz.Array) []string {
					m["fc1.bias"] = &npz.Array{Shape: []int{120}, Data: make([]bool, 120)}
					return nil
				}),
				"weights: huge shape header": raw(weights, hugeShapeNPZ(t)),
				"weights: missing file":      func(d string) error { return os.Remove(filepath.Join(d, rel(weights))) },
				"optimizer: missing slot":    rewrite(optim, oa, func(m map[string]*npz.Array) []string { delete(m, slot); return nil }),
				"optimizer: extra array": rewrite(optim, oa, func(m map[string]*npz.Array) []string {
					m["lr"] = &npz.Array{Data: []float64{0.1}}
					return append(oa.Names, "lr")
				}),
				"optimizer: slot of another shape": rewrite(optim, oa, func(m map[string]*npz.Array) []string {
					m[slot] = &npz.Array{Shape: []int{6, 25}, Data: make([]float32, 150)}
					return nil
				}),
				"optimizer: slot float64": rewrite(optim, oa, func(m map[string]*npz.Array) []string { m[slot] = f64(m[slot]); return nil }),
				"optimizer: missing file": func(d string) error { return os.Remove(filepath.Join(d, rel(optim))) },
			}
			if name == "adam" {
				cases["optimizer: step 2 of 3"] = rewrite(optim, oa, func(m map[string]*npz.Array) []string { m["step"] = &npz.Array{Data: []int64{2}}; return nil })
				cases["optimizer: step float"] = rewrite(optim, oa, func(m map[string]*npz.Array) []string { m["step"] = &npz.Array{Data: []float64{3}}; return nil })
				cases["optimizer: step a vector"] = rewrite(optim, oa, func(m map[string]*npz.Array) []string {
					m["step"] = &npz.Array{Shape: []int{1}, Data: []int64{3}}
					return nil
				})
				cases["optimizer: no step"] = rewrite(optim, oa, func(m map[string]*npz.Array) []string { delete(m, "step"); return nil })
			}
			for _, c := range corrupt.Truncations(wb, 30, len(wb)-22) {
				cases["weights: "+c.Name] = raw(weights, c.Data)
			}
			for _, c := range corrupt.Truncations(ob, 30, len(ob)-22) {
				cases["optimizer: "+c.Name] = raw(optim, c.Data)
			}

			var must, may corrupt.Tally
			for cname, damage := range cases {
				d := copyDir(t, scratch)
				if err := damage(d); err != nil {
					t.Fatalf("%s: %v", cname, err)
				}
				tr := newTrainer(t, cfg)
				err := must.Reject(t, cname, func() error { return tr.restore(filepath.Join(d, resumeDir), 1, 3) })
				if err == nil {
					continue
				}
				if !strings.Contains(err.Error(), filepath.Join(d, resumeDir)) {
					t.Errorf("%s: error %q does not name the file", cname, err)
				}
				if tr.Steps() != 0 {
					t.Errorf("%s: a failed restore changed the trainer (steps %d)", cname, tr.Steps())
				}
			}
			// Bit flips in the weights archive's first member header and in
			// the middle of the optimizer archive: no panic, whatever comes.
			// One copy of the state, each file put back after its flip. (The
			// same archive format for both optimizers: flipped once.)
			d := copyDir(t, scratch)
			for _, f := range []struct {
				path  string
				orig  []byte
				flips []corrupt.Case
			}{{weights, wb, corrupt.BitFlips(wb, 0, 30)}, {optim, ob, corrupt.BitFlips(ob, len(ob)/2, len(ob)/2+4)}} {
				if name != "sgd" {
					break
				}
				for _, c := range f.flips {
					if err := raw(f.path, c.Data)(d); err != nil {
						t.Fatal(err)
					}
					tr := newTrainer(t, cfg)
					may.Survive(t, c.Name, func() error { return tr.restore(filepath.Join(d, resumeDir), 1, 3) })
				}
				if err := raw(f.path, f.orig)(d); err != nil {
					t.Fatal(err)
				}
			}

			// resume.json.
			for cname, content := range map[string]string{
				"empty":          "",
				"not JSON":       "epoch 1",
				"a list":         "[1, 3]",
				"epoch 0":        `{"epoch": 0, "steps": 3}`,
				"negative steps": `{"epoch": 1, "steps": -3}`,
				"epoch a string": `{"epoch": "1", "steps": 3}`,
				"huge":           `{"epoch": 1, "steps": 3, "pad": "` + strings.Repeat("x", 1<<20) + `"}`,
				"newlines":       "{\n\"epoch\":\n",
			} {
				d := copyDir(t, scratch)
				if err := os.WriteFile(filepath.Join(d, resumeFile), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				err := must.Reject(t, "resume.json: "+cname, func() error { _, _, err := loadResume(d); return err })
				if err != nil && !strings.Contains(err.Error(), filepath.Join(d, resumeFile)) {
					t.Errorf("resume.json %s: error %q does not name the file", cname, err)
				}
			}
			must.Log(t, fmt.Sprintf("resume state (%s), must refuse", name))
			if may.Cases > 0 {
				may.Log(t, fmt.Sprintf("resume state (%s), bit flips", name))
			}
		})
	}
}

// TestReadCheckpointAnyFloat reads a float64 checkpoint for a run of
// unknown dtype (as a snapshot would), and refuses it for a float32 run.
func TestReadCheckpointAnyFloat(t *testing.T) {
	m := lenet(t)
	w, err := m.Init(1, dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.npz")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(m, path, dtypes.InvalidDType)
	if err != nil || got.DType != dtypes.Float64 {
		t.Fatalf("ReadCheckpoint: %v, %v; want float64 weights", got, err)
	}
	if _, err := ReadCheckpoint(m, path, dtypes.Float32); err == nil || !strings.Contains(err.Error(), "weights are Float64, the run is Float32") {
		t.Errorf("float32 run: %v", err)
	}
}
