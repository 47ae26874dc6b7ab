package onnxmodel

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/onnx-gomlx/onnx"
)

// TestOpenNamesAndKinds checks how initializers become parameters, running
// statistics and layers, and that PyTorch's de-duplicated initializers
// (Identity nodes) become tensors of their own.
func TestOpenNamesAndKinds(t *testing.T) {
	m := open(t, "example/epoch0.onnx")
	var params, buffers []string
	for _, e := range m.Params() {
		params = append(params, e.Name)
	}
	for _, e := range m.Buffers() {
		buffers = append(buffers, e.Name)
	}
	wantParams := []string{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias", "conv3.weight", "bn3.weight", "bn3.bias", "fc.weight", "fc.bias"}
	wantBuffers := []string{"bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var", "bn3.running_mean", "bn3.running_var"}
	if !slices.Equal(params, wantParams) {
		t.Errorf("params %v, want %v", params, wantParams)
	}
	if !slices.Equal(buffers, wantBuffers) {
		t.Errorf("buffers %v, want %v", buffers, wantBuffers)
	}
	if want := []string{"conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"}; !slices.Equal(m.Layers(), want) {
		t.Errorf("layers %v, want %v", m.Layers(), want)
	}
	zoo := open(t, "zoo32.onnx")
	if want := []string{"conv1.weight", "conv2.weight", "conv3.weight", "proj.weight", "head.weight"}; !slices.Equal(zoo.Layers(), want) {
		t.Errorf("zoo layers %v, want %v", zoo.Layers(), want)
	}
	if got := m.InputShape(); !slices.Equal(got, []int{1, 32, 32}) {
		t.Errorf("input shape %v", got)
	}
	if m.Classes() != 10 || m.InputString() != "x [batch, 1, 32, 32]" || m.OutputString() != "logits [batch, 10]" {
		t.Errorf("classes %d, input %q, output %q", m.Classes(), m.InputString(), m.OutputString())
	}
	notes := strings.Join(m.Notes(), "\n")
	if !strings.Contains(notes, "8 initializers were exported as Identity copies") {
		t.Errorf("notes %q, want the 8 untied initializers", notes)
	}
	// bn2.weight is its own tensor, equal to bn1.weight's value.
	w, err := m.Weights(dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	a := tensors.MustCopyFlatData[float64](w.Params[m.ParamIndex("bn1.weight")])
	b := tensors.MustCopyFlatData[float64](w.Params[m.ParamIndex("bn2.weight")])
	if !slices.Equal(a, b) || w.Params[m.ParamIndex("bn1.weight")] == w.Params[m.ParamIndex("bn2.weight")] {
		t.Errorf("bn2.weight should be a copy of bn1.weight")
	}
}

// TestOpenWarnsOfGeneratedNames: exported in PyTorch's default EVAL mode,
// batch norm is folded into the convolutions, which lose their names.
func TestOpenWarnsOfGeneratedNames(t *testing.T) {
	m := open(t, "folded.onnx")
	notes := strings.Join(m.Notes(), "\n")
	if !strings.Contains(notes, "machine-generated names (onnx::Conv_") || !strings.Contains(notes, "TrainingMode.PRESERVE") {
		t.Errorf("notes %q, want a warning about generated names with the export fix", notes)
	}
}

// TestCheckData checks the one-line errors for data the model does not
// take.
func TestCheckData(t *testing.T) {
	m := open(t, "lenet.onnx")
	if err := m.CheckData([]int{1, 32, 32}, 10); err != nil {
		t.Errorf("FashionMNIST: %v", err)
	}
	for _, tc := range []struct {
		example []int
		classes int
		want    string
	}{
		{[]int{3, 32, 32}, 10, "does not take the data's examples of shape [3 32 32]"},
		{[]int{1, 28, 28}, 10, "does not take the data's examples of shape [1 28 28]"},
		{[]int{1, 32, 32}, 100, "the model has 10 outputs but the data has 100 classes"},
	} {
		err := m.CheckData(tc.example, tc.classes)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v, %d classes: got %v, want one line with %q", tc.example, tc.classes, err, tc.want)
		}
	}
}

// TestExternalData reads a model whose weights are in a file of their own,
// and names that file when it is missing.
func TestExternalData(t *testing.T) {
	src, err := onnx.ReadFile(fixtures + "lenet.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var blob []byte
	for _, init := range src.Proto.Graph.Initializer {
		if init.Name != "fc1.weight" && init.Name != "fc2.weight" {
			continue
		}
		entries := reflect.ValueOf(&init.ExternalData).Elem()
		add := func(k, v string) {
			e := reflect.New(entries.Type().Elem().Elem())
			e.Elem().FieldByName("Key").SetString(k)
			e.Elem().FieldByName("Value").SetString(v)
			entries.Set(reflect.Append(entries, e))
		}
		add("location", "weights.bin")
		add("offset", strconv.Itoa(len(blob)))
		add("length", strconv.Itoa(len(init.RawData)))
		blob = append(blob, init.RawData...)
		init.RawData, init.DataLocation = nil, 1
	}
	if err := src.SaveToFile(filepath.Join(dir, "net.onnx")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.External(); !slices.Equal(got, []string{"weights.bin"}) {
		t.Errorf("external %v", got)
	}
	ref := open(t, "lenet.onnx")
	w, _ := m.Weights(dtypes.Float32)
	rw, _ := ref.Weights(dtypes.Float32)
	for i, e := range m.Params() {
		if !reflect.DeepEqual(tensors.MustCopyFlatData[float32](w.Params[i]), tensors.MustCopyFlatData[float32](rw.Params[i])) {
			t.Errorf("%s differs from the self-contained file's", e.Name)
		}
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	inlined := filepath.Join(t.TempDir(), "inlined.onnx")
	if err := os.WriteFile(inlined, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if m2, err := Open(inlined); err != nil || len(m2.External()) != 0 {
		t.Errorf("re-serialised model: %v, external %v", err, m2.External())
	}

	if err := os.Remove(filepath.Join(dir, "weights.bin")); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	if err == nil || !strings.Contains(err.Error(), `initializer "fc1.weight": its data is in the external file`) || !strings.Contains(err.Error(), "weights.bin, which is missing") {
		t.Errorf("got %v, want an error naming the missing weights.bin", err)
	}
}
