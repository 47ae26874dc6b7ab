// Package npz reads and writes NumPy's .npy arrays and .npz archives, so that
// every numeric output of the runner loads with numpy.load and PyTorch-made
// files load here.
//
// Supported dtypes: float32, float64, int64, int32, uint8 and bool, little- or
// big-endian on read, little-endian on write, C or Fortran order on read, C
// order on write. Archives are read stored or deflated (np.savez and
// np.savez_compressed) and written stored, with a fixed timestamp, so the same
// arrays always give the same bytes — and the same artifact digest.
package npz

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// Array is an n-dimensional array in C (row-major) order. Data is one of
// []float32, []float64, []int64, []int32, []uint8 or []bool, with as many
// elements as the product of Shape (1 for a scalar, whose Shape is empty).
type Array struct {
	Shape []int
	Data  any
}

// Len returns the number of elements the shape describes, or -1 when a
// dimension is negative or their product overflows an int.
func (a *Array) Len() int {
	n, ok := elements(a.Shape)
	if !ok {
		return -1
	}
	return n
}

// elements returns the product of shape, and false when a dimension is
// negative or the product overflows an int.
func elements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// DType returns the NumPy dtype string of the data, e.g. "<f4".
func (a *Array) DType() (string, error) {
	switch a.Data.(type) {
	case []float32:
		return "<f4", nil
	case []float64:
		return "<f8", nil
	case []int64:
		return "<i8", nil
	case []int32:
		return "<i4", nil
	case []uint8:
		return "|u1", nil
	case []bool:
		return "|b1", nil
	}
	return "", fmt.Errorf("npz: unsupported data type %T", a.Data)
}

// Float32s returns the data as float32, converting from any numeric dtype.
func (a *Array) Float32s() []float32 {
	if x, ok := a.Data.([]float32); ok {
		return x
	}
	f := a.Float64s()
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return out
}

// Float64s returns the data as float64, converting from any numeric dtype.
func (a *Array) Float64s() []float64 {
	switch x := a.Data.(type) {
	case []float64:
		return x
	case []float32:
		return convert[float32, float64](x)
	case []int64:
		return convert[int64, float64](x)
	case []int32:
		return convert[int32, float64](x)
	case []uint8:
		return convert[uint8, float64](x)
	case []bool:
		out := make([]float64, len(x))
		for i, b := range x {
			if b {
				out[i] = 1
			}
		}
		return out
	}
	return nil
}

// Int64s returns the data as int64, converting from integer dtypes. It
// returns an error for floating-point or boolean data.
func (a *Array) Int64s() ([]int64, error) {
	switch x := a.Data.(type) {
	case []int64:
		return x, nil
	case []int32:
		return convert[int32, int64](x), nil
	case []uint8:
		return convert[uint8, int64](x), nil
	}
	return nil, fmt.Errorf("npz: want integer data, have %T", a.Data)
}

func convert[S, D int32 | int64 | uint8 | float32 | float64](s []S) []D {
	out := make([]D, len(s))
	for i, v := range s {
		out[i] = D(v)
	}
	return out
}

const magic = "\x93NUMPY"

// WriteNPY writes a in .npy format version 1.0.
func WriteNPY(w io.Writer, a *Array) error {
	dt, err := a.DType()
	if err != nil {
		return err
	}
	if a.Len() < 0 {
		return fmt.Errorf("npz: shape %v has a negative dimension or too many elements", a.Shape)
	}
	if n := dataLen(a.Data); n != a.Len() {
		return fmt.Errorf("npz: shape %v holds %d elements, data has %d", a.Shape, a.Len(), n)
	}
	shape := make([]string, len(a.Shape))
	for i, d := range a.Shape {
		shape[i] = strconv.Itoa(d)
	}
	st := strings.Join(shape, ", ")
	if len(a.Shape) == 1 {
		st += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", dt, st)
	// magic(6) + version(2) + len(2) + header + '\n', padded to a multiple of 64.
	total := 10 + len(header) + 1
	pad := (64 - total%64) % 64
	header += strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("npz: header too long (%d bytes)", len(header))
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(magic)
	bw.Write([]byte{1, 0})
	binary.Write(bw, binary.LittleEndian, uint16(len(header)))
	bw.WriteString(header)
	if err := binary.Write(bw, binary.LittleEndian, a.Data); err != nil {
		return fmt.Errorf("npz: writing data: %w", err)
	}
	return bw.Flush()
}

func dataLen(d any) int {
	switch x := d.(type) {
	case []float32:
		return len(x)
	case []float64:
		return len(x)
	case []int64:
		return len(x)
	case []int32:
		return len(x)
	case []uint8:
		return len(x)
	case []bool:
		return len(x)
	}
	return -1
}

// Named pairs an array with its name inside an archive.
type Named struct {
	Name  string
	Array *Array
}

// Write writes arrays as an .npz archive to w, in the given order. Names must
// be unique; ".npy" is appended inside the archive as NumPy does.
func Write(w io.Writer, arrays []Named) error {
	zw := zip.NewWriter(w)
	seen := map[string]bool{}
	for _, na := range arrays {
		if seen[na.Name] {
			return fmt.Errorf("npz: array %q written twice", na.Name)
		}
		seen[na.Name] = true
		fw, err := zw.CreateHeader(&zip.FileHeader{
			Name:     na.Name + ".npy",
			Method:   zip.Store,
			Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			return fmt.Errorf("npz: %s: %w", na.Name, err)
		}
		if err := WriteNPY(fw, na.Array); err != nil {
			return fmt.Errorf("npz: %s: %w", na.Name, err)
		}
	}
	return zw.Close()
}

// WriteFile writes an .npz archive to path, through a temporary file in the
// same directory renamed into place, so a reader never sees half a file.
func WriteFile(path string, arrays []Named) error {
	if err := atomicfile.Write(path, 0o644, false, func(w io.Writer) error { return Write(w, arrays) }); err != nil {
		return fmt.Errorf("npz: writing %s: %w", path, err)
	}
	return nil
}

// Archive is the content of an .npz file: its arrays by name (without the
// .npy suffix) and the names in archive order.
type Archive struct {
	Names  []string
	Arrays map[string]*Array
}

// Get returns the named array or an error that lists the names present.
func (a *Archive) Get(name string) (*Array, error) {
	if x, ok := a.Arrays[name]; ok {
		return x, nil
	}
	names := append([]string(nil), a.Names...)
	sort.Strings(names)
	return nil, fmt.Errorf("npz: no array %q (have %s)", name, strings.Join(names, ", "))
}

// WriteNPYFile writes a to path atomically (temporary file, then rename).
func WriteNPYFile(path string, a *Array) error {
	if err := atomicfile.Write(path, 0o644, false, func(w io.Writer) error { return WriteNPY(w, a) }); err != nil {
		return fmt.Errorf("npy: writing %s: %w", path, err)
	}
	return nil
}
