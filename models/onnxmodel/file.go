package onnxmodel

import (
	binenc "encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/onnx-gomlx/onnx"
	"github.com/x448/float16"
)

// This file turns the ONNX protobuf, as github.com/gomlx/onnx-gomlx parses
// it, into the plain Go values the rest of the package works on (graphNode,
// tensor, attr): the one place that reads the protobuf types, which that
// module keeps in an internal package, so that they are only ever reached
// through its exported Model.Proto field.

// tensor is a tensor of the file: an initializer or a Constant's value.
// Floating-point data of any width is held as float64, integers and
// booleans as int64.
type tensor struct {
	name  string
	dtype dtypes.DType
	shape []int
	f     []float64 // float dtypes
	i     []int64   // integer and boolean dtypes
}

// size is the number of elements.
func (t *tensor) size() int { return sizeOf(t.shape) }

// isFloat reports whether the tensor holds floating-point data.
func (t *tensor) isFloat() bool { return t.dtype.IsFloat() }

// sizeOf is the product of dims (1 for a scalar).
func sizeOf(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// attr is one node attribute; which fields are set depends on kind
// ("INT", "INTS", "FLOAT", "FLOATS", "STRING", "TENSOR", …, as ONNX names
// the attribute types).
type attr struct {
	kind string
	i    int64
	f    float64
	s    string
	is   []int64
	fs   []float64
	t    *tensor
}

// graphNode is one ONNX node.
type graphNode struct {
	op, name, domain string
	in, out          []string
	attrs            map[string]attr
}

// String names the node for messages: its op, and its name or first output.
func (n *graphNode) String() string {
	id := n.name
	if id == "" && len(n.out) > 0 {
		id = n.out[0]
	}
	return fmt.Sprintf("%s node %q", n.op, id)
}

// file is an ONNX file read into plain values.
type file struct {
	path     string
	opset    int64 // of the default domain
	producer string
	nodes    []*graphNode
	inits    []*tensor // initializers in file order
	inputs   []valueInfo
	outputs  []valueInfo
	// external lists the external data files the initializers were read
	// from, relative to the file's folder.
	external []string
	// marshal re-serialises the model with external data inlined.
	marshal func() ([]byte, error)
}

// valueInfo is a graph input or output: its name, element type and
// dimensions, -1 where the file leaves one symbolic (e.g. "batch").
type valueInfo struct {
	name  string
	dtype dtypes.DType
	dims  []int
	names []string // the symbolic names or the dimensions as text
}

// String is the shape as the file declares it, e.g. [batch, 1, 32, 32].
func (v valueInfo) String() string { return "[" + strings.Join(v.names, ", ") + "]" }

// readFile reads and parses the ONNX file at path, with its external data
// (files named relative to path's folder).
func readFile(path string) (*file, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(b, path)
}

// parse converts the bytes of an ONNX file; path names it in messages and
// locates external data.
func parse(b []byte, path string) (f *file, err error) {
	defer func() {
		// onnx-gomlx panics on some malformed inputs.
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: not a readable ONNX model: %v", path, r)
		}
	}()
	m, err := onnx.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an ONNX model: %w", path, firstLine(err))
	}
	if f, err = parseHeader(m, path); err != nil {
		return nil, err
	}
	if err := f.readInitializers(m); err != nil {
		return nil, err
	}
	f.marshal = func() ([]byte, error) {
		var buf strings.Builder
		if err := m.Write(&buf); err != nil {
			return nil, err
		}
		return []byte(buf.String()), nil
	}
	if err := f.readNodes(m); err != nil {
		return nil, err
	}
	info := func(names []string, shapes []onnx.DynamicShape) []valueInfo {
		out := make([]valueInfo, len(names))
		for i, n := range names {
			out[i] = valueInfo{name: n, dtype: shapes[i].DType, dims: slices.Clone(shapes[i].Dimensions), names: slices.Clone(shapes[i].Names)}
			for j, d := range out[i].dims {
				if d < 0 && out[i].names[j] == "" {
					out[i].names[j] = "?"
				}
			}
		}
		return out
	}
	f.inputs = info(m.InputsNames, m.InputsShapes)
	f.outputs = info(m.OutputsNames, m.OutputsShapes)
	return f, nil
}

// parseHeader reads what the model declares about itself (producer,
// operator set) and refuses what the importer does not read: functions,
// sparse initializers.
func parseHeader(m *onnx.Model, path string) (*file, error) {
	p := &m.Proto
	if p.Graph == nil {
		return nil, fmt.Errorf("%s: ONNX model without a graph", path)
	}
	f := &file{path: path, opset: -1, producer: strings.TrimSpace(p.ProducerName + " " + p.ProducerVersion)}
	for _, o := range p.OpsetImport {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			f.opset = o.Version
		}
	}
	if f.opset < 0 {
		return nil, fmt.Errorf("%s: the model imports no version of the standard ONNX operator set", path)
	}
	if len(p.Functions) > 0 {
		return nil, fmt.Errorf("%s: the model defines ONNX functions (%d), which the importer does not inline; export without export_modules_as_functions", path, len(p.Functions))
	}
	if len(p.Graph.SparseInitializer) > 0 {
		return nil, fmt.Errorf("%s: the model has sparse initializers, which the importer does not read", path)
	}
	return f, nil
}

// readInitializers decodes the graph's initializers, reading external data
// from beside the file and inlining it into m, so that the model
// re-serialises self-contained.
func (f *file) readInitializers(m *onnx.Model) error {
	dir := filepath.Dir(f.path)
	externalSeen := map[string]bool{}
	for _, t := range m.Proto.Graph.Initializer {
		ext := map[string]string{}
		for _, e := range t.ExternalData {
			ext[e.Key] = e.Value
		}
		loc, offset, length, isExternal, err := externalRef(t.DataLocation == 1, ext)
		if err != nil {
			return fmt.Errorf("%s: initializer %q: %w", f.path, t.Name, err)
		}
		if isExternal {
			raw, err := readExternal(dir, loc, offset, length)
			if err != nil {
				return fmt.Errorf("%s: initializer %q: %w", f.path, t.Name, err)
			}
			if !externalSeen[loc] {
				externalSeen[loc] = true
				f.external = append(f.external, loc)
			}
			t.RawData, t.ExternalData, t.DataLocation = raw, nil, 0
		}
		v, err := decodeTensor(t.Name, t.DataType, t.Dims, t.RawData, t.FloatData, t.DoubleData, t.Int32Data, t.Int64Data, t.Uint64Data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		f.inits = append(f.inits, v)
	}
	return nil
}

// readNodes converts the graph's nodes with their attributes.
func (f *file) readNodes(m *onnx.Model) error {
	for _, n := range m.Proto.Graph.Node {
		gn := &graphNode{op: n.OpType, name: n.Name, domain: n.Domain, in: n.Input, out: n.Output, attrs: map[string]attr{}}
		for _, a := range n.Attribute {
			at := attr{kind: a.Type.String(), i: a.I, f: decimal32(a.F), s: string(a.S), is: a.Ints}
			for _, x := range a.Floats {
				at.fs = append(at.fs, decimal32(x))
			}
			if a.T != nil {
				if len(a.T.ExternalData) > 0 {
					return fmt.Errorf("%s: %s: a constant stored as external data is not supported", f.path, gn)
				}
				var err error
				if at.t, err = decodeTensor(a.Name, a.T.DataType, a.T.Dims, a.T.RawData, a.T.FloatData, a.T.DoubleData, a.T.Int32Data, a.T.Int64Data, a.T.Uint64Data); err != nil {
					return fmt.Errorf("%s: %s: %w", f.path, gn, err)
				}
			}
			if a.G != nil || len(a.Graphs) > 0 {
				at.kind = "GRAPH"
			}
			gn.attrs[a.Name] = at
		}
		f.nodes = append(f.nodes, gn)
	}
	return nil
}

// decimal32 widens a float attribute — ONNX stores them in single
// precision — to the float64 nearest the shortest decimal that rounds to
// it: 0.1f becomes 0.1, not 0.10000000149011612. Exporters write the
// decimal constants of the source (LeakyReLU's 0.1, batch norm's 1e-5), so
// a float64 computation then uses the same constants as the source model
// run in double precision.
func decimal32(f float32) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return float64(f)
	}
	return v
}

// firstLine keeps the first line of an error (protobuf errors can be long).
func firstLine(err error) error {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(s)
}

// externalRef reads an initializer's external_data entries: the file
// location (relative to the model's folder), the byte offset and the length
// (-1: to the end of the file).
func externalRef(external bool, entries map[string]string) (loc string, offset, length int64, isExternal bool, err error) {
	if !external && len(entries) == 0 {
		return "", 0, 0, false, nil
	}
	loc, length = entries["location"], -1
	for k, p := range map[string]*int64{"offset": &offset, "length": &length} {
		if v, ok := entries[k]; ok {
			if *p, err = strconv.ParseInt(v, 10, 64); err != nil {
				return "", 0, 0, false, fmt.Errorf("external data %s %q: %w", k, v, err)
			}
		}
	}
	if loc == "" {
		return "", 0, 0, false, fmt.Errorf("stored as external data without a location")
	}
	if filepath.IsAbs(loc) || strings.Contains(filepath.ToSlash(filepath.Clean(loc)), "../") || loc == ".." {
		return "", 0, 0, false, fmt.Errorf("external data location %q is outside the model's folder", loc)
	}
	return loc, offset, length, true, nil
}

// readExternal reads length bytes (all to the end for -1) at offset of the
// external data file loc in dir.
func readExternal(dir, loc string, offset, length int64) ([]byte, error) {
	p := filepath.Join(dir, loc)
	fh, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("its data is in the external file %s, which is missing: keep the .onnx file and its data files together in one folder", p)
		}
		return nil, fmt.Errorf("external data: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if length < 0 {
		length = st.Size() - offset
	}
	if offset < 0 || length < 0 || offset+length > st.Size() {
		return nil, fmt.Errorf("external file %s holds %d bytes; the tensor wants %d at offset %d", p, st.Size(), length, offset)
	}
	b := make([]byte, length)
	if _, err := fh.ReadAt(b, offset); err != nil {
		return nil, fmt.Errorf("external file %s: %w", p, err)
	}
	return b, nil
}

// ONNX TensorProto.DataType values the importer reads.
const (
	onnxFloat    = 1
	onnxUint8    = 2
	onnxInt8     = 3
	onnxUint16   = 4
	onnxInt16    = 5
	onnxInt32    = 6
	onnxInt64    = 7
	onnxBool     = 9
	onnxFloat16  = 10
	onnxDouble   = 11
	onnxUint32   = 12
	onnxUint64   = 13
	onnxBFloat16 = 16
)

// decodeTensor converts one TensorProto's data, given field by field (the
// protobuf type cannot be named outside onnx-gomlx).
func decodeTensor(name string, dataType int32, dims []int64, raw []byte, floats []float32, doubles []float64, int32s []int32, int64s []int64, uint64s []uint64) (*tensor, error) {
	t, width, err := emptyTensor(name, dataType, dims)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		return t, t.decodeRaw(dataType, width, raw)
	}
	n := t.size()
	switch {
	case dataType == onnxFloat:
		if err := t.count(len(floats)); err != nil {
			return nil, err
		}
		t.f = make([]float64, n)
		for k, v := range floats {
			t.f[k] = float64(v)
		}
	case dataType == onnxDouble:
		if err := t.count(len(doubles)); err != nil {
			return nil, err
		}
		t.f = slices.Clone(doubles)
	case dataType == onnxInt64:
		if err := t.count(len(int64s)); err != nil {
			return nil, err
		}
		t.i = slices.Clone(int64s)
	case dataType == onnxUint32 || dataType == onnxUint64:
		if err := t.count(len(uint64s)); err != nil {
			return nil, err
		}
		t.i = make([]int64, n)
		for k, v := range uint64s {
			t.i[k] = int64(v)
		}
	default: // int32_data holds int32, int16, int8, uint16, uint8, bool, float16 and bfloat16 bits
		if err := t.count(len(int32s)); err != nil {
			return nil, err
		}
		t.decodeInt32s(dataType, int32s)
	}
	return t, nil
}

// emptyTensor returns an empty tensor of the shape dims and the dtype it holds
// ONNX's dataType in, with the width of one value in raw data.
func emptyTensor(name string, dataType int32, dims []int64) (*tensor, int, error) {
	t := &tensor{name: name}
	for _, d := range dims {
		if d < 0 || d > math.MaxInt32 {
			return nil, 0, fmt.Errorf("tensor %q has dimension %d", name, d)
		}
		t.shape = append(t.shape, int(d))
	}
	width := map[int32]int{onnxFloat: 4, onnxUint8: 1, onnxInt8: 1, onnxUint16: 2, onnxInt16: 2, onnxInt32: 4, onnxInt64: 8,
		onnxBool: 1, onnxFloat16: 2, onnxDouble: 8, onnxUint32: 4, onnxUint64: 8, onnxBFloat16: 2}[dataType]
	if width == 0 {
		return nil, 0, fmt.Errorf("tensor %q has ONNX data type %d, which the importer does not read (float, double, float16, bfloat16, integers and bool are read)", name, dataType)
	}
	switch dataType {
	case onnxFloat:
		t.dtype = dtypes.Float32
	case onnxDouble:
		t.dtype = dtypes.Float64
	case onnxFloat16:
		t.dtype = dtypes.Float16
	case onnxBFloat16:
		t.dtype = dtypes.BFloat16
	case onnxBool:
		t.dtype = dtypes.Bool
	default:
		t.dtype = dtypes.Int64
	}
	return t, width, nil
}

// count checks that the data holds a value per element.
func (t *tensor) count(have int) error {
	if n := t.size(); have != n {
		return fmt.Errorf("tensor %q of shape %v holds %d values, want %d", t.name, t.shape, have, n)
	}
	return nil
}

// decodeRaw decodes raw_data: little-endian values width bytes each.
func (t *tensor) decodeRaw(dataType int32, width int, raw []byte) error {
	n := t.size()
	if err := t.count(len(raw) / width); err != nil || len(raw)%width != 0 {
		return fmt.Errorf("tensor %q of shape %v has %d bytes of data, want %d", t.name, t.shape, len(raw), n*width)
	}
	le := binenc.LittleEndian
	if t.dtype.IsFloat() {
		t.f = make([]float64, n)
	} else {
		t.i = make([]int64, n)
	}
	for k := range n {
		b := raw[k*width:]
		switch dataType {
		case onnxFloat:
			t.f[k] = float64(math.Float32frombits(le.Uint32(b)))
		case onnxDouble:
			t.f[k] = math.Float64frombits(le.Uint64(b))
		case onnxFloat16:
			t.f[k] = float64(float16.Frombits(le.Uint16(b)).Float32())
		case onnxBFloat16:
			t.f[k] = float64(math.Float32frombits(uint32(le.Uint16(b)) << 16))
		case onnxUint8, onnxBool:
			t.i[k] = int64(b[0])
		case onnxInt8:
			t.i[k] = int64(int8(b[0]))
		case onnxUint16:
			t.i[k] = int64(le.Uint16(b))
		case onnxInt16:
			t.i[k] = int64(int16(le.Uint16(b)))
		case onnxInt32:
			t.i[k] = int64(int32(le.Uint32(b)))
		case onnxUint32:
			t.i[k] = int64(le.Uint32(b))
		case onnxInt64:
			t.i[k] = int64(le.Uint64(b))
		case onnxUint64:
			t.i[k] = int64(le.Uint64(b))
		}
	}
	return nil
}

// decodeInt32s decodes int32_data, which holds the small integer types and
// the bits of float16 and bfloat16 values.
func (t *tensor) decodeInt32s(dataType int32, int32s []int32) {
	n := t.size()
	if !t.dtype.IsFloat() {
		t.i = make([]int64, n)
		for k, v := range int32s {
			t.i[k] = int64(v)
		}
		return
	}
	t.f = make([]float64, n)
	for k, v := range int32s {
		if dataType == onnxFloat16 {
			t.f[k] = float64(float16.Frombits(uint16(v)).Float32())
		} else {
			t.f[k] = float64(math.Float32frombits(uint32(v) << 16))
		}
	}
}
