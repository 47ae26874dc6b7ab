package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"github.com/hessian-spectra/runner/models/onnxmodel"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/snapshot/snapmeta"
)

// isONNX reports whether the snapshot imports an ONNX model: param path
// names one (package onnxmodel's IsModelPath).
func isONNX(p stage.Params) bool {
	return p.Has("path") && onnxmodel.IsModelPath(p.String("path"))
}

// openONNX opens the ONNX model param path names (package onnxmodel's Open
// checks every op, the inputs, outputs and external data), refusing
// external data files the cache key would not cover.
func openONNX(p stage.Params) (*onnxmodel.Model, error) {
	path := p.String("path")
	m, err := onnxmodel.Open(path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil && !st.IsDir() && len(m.External()) > 0 {
		return nil, fmt.Errorf("%s keeps weights in external files (%s): give path the folder holding the model and its data files, so that the cache key covers them",
			path, strings.Join(m.External(), ", "))
	}
	return m, nil
}

// PlannedONNX returns the ONNX model a snapshot instance will import, as
// its params tell at plan time; ok is false when p is not an ONNX import
// (or the model cannot be opened, which the snapshot's own check reports).
func PlannedONNX(p *stage.Planned) (*onnxmodel.Model, bool) {
	if p == nil || p.Kind.Name != "snapshot" || p.Input("train") != nil || !isONNX(p.Params) {
		return nil, false
	}
	m, err := openONNX(p.Params)
	return m, err == nil
}

// importONNX imports an ONNX model: the graph (snapmeta.GraphFile), its
// weights by initializer name in the file's precision (snapmeta.WeightsFile),
// and what the import found worth a look in the log.
func importONNX(e *stage.Env) (snapmeta.Meta, error) {
	m, err := openONNX(e.Params)
	if err != nil {
		return snapmeta.Meta{}, err
	}
	b, err := m.Marshal()
	if err != nil {
		return snapmeta.Meta{}, fmt.Errorf("%s: %w", m.Path(), err)
	}
	if err := atomicfile.WriteFile(filepath.Join(e.OutDir, snapmeta.GraphFile), b, 0o644); err != nil {
		return snapmeta.Meta{}, err
	}
	w, err := m.Weights(m.FileDType())
	if err != nil {
		return snapmeta.Meta{}, err
	}
	if err := w.WriteFile(filepath.Join(e.OutDir, snapmeta.WeightsFile)); err != nil {
		return snapmeta.Meta{}, err
	}
	e.Logf("imported %s (%s, ONNX opset %d): input %s, output %s, %d parameters in %d tensors, %d batch-norm statistics, %s",
		m.Path(), m.Producer(), m.Opset(), m.InputString(), m.OutputString(), paramCount(m), len(m.Params()), len(m.Buffers()), m.FileDType())
	e.Logf("layers (Conv, Gemm and MatMul weights): %s", strings.Join(m.Layers(), ", "))
	for _, n := range m.Notes() {
		e.Logf("note: %s", n)
	}
	meta := snapmeta.Meta{Model: onnxmodel.ModelName, Classes: max(m.Classes(), 0), Source: filepath.Base(m.Path()),
		InputShape: m.InputShape(), Graph: snapmeta.GraphFile}
	if s := m.InputShape(); len(s) == 3 {
		meta.InChannels = s[0]
	}
	return meta, nil
}

func paramCount(m *onnxmodel.Model) int {
	n := 0
	for _, e := range m.Params() {
		n += e.Size()
	}
	return n
}
