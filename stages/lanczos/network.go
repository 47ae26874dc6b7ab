package lanczos

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/models/onnxmodel"
	"github.com/hessian-spectra/runner/stages/snapshot/snapmeta"
)

// network is a snapshot's model at its weights, checked against the data
// subset, ready for package hessian.
type network struct {
	c       *hessian.Classifier
	layers  []string // for messages: the model's valid layers
	notes   []string // for the log
	release func()
}

// loadNetwork reads the snapshot in dir — a native model, or an ONNX import
// (meta.Model onnxmodel.ModelName) — in dtype, with batch norm in training
// mode when train is set. An ONNX model is checked against the data here
// (its output size is known only by building its graph); every classifier
// is checked against the subset by hessian.NewModelHessian.
func loadNetwork(dir string, meta *snapmeta.Meta, dtype dtypes.DType, train bool, subset *datasets.Split, dmeta datasets.Meta) (*network, error) {
	if meta.Model == onnxmodel.ModelName {
		return loadONNX(dir, meta, dtype, train, subset, dmeta)
	}
	m, err := models.New(meta.Model, meta.InChannels, meta.Classes)
	if err != nil {
		return nil, fmt.Errorf("weights %s: %w", filepath.Join(dir, snapmeta.File), err)
	}
	w, err := m.ReadWeights(filepath.Join(dir, snapmeta.WeightsFile), dtype)
	if err != nil {
		return nil, err
	}
	// hessian.NewModelHessian checks the subset against the classifier:
	// the images' shape, a logit for every label.
	return &network{c: hessian.ModelClassifier(w, train), layers: m.Layers(), release: func() { _ = w.Finalize() }}, nil
}

// loadONNX reads an ONNX import: the graph, then the snapshot's weights.
func loadONNX(dir string, meta *snapmeta.Meta, dtype dtypes.DType, train bool, subset *datasets.Split, dmeta datasets.Meta) (*network, error) {
	if meta.Graph == "" {
		return nil, fmt.Errorf("weights %s: an ONNX snapshot without a graph file", filepath.Join(dir, snapmeta.File))
	}
	m, err := onnxmodel.Open(filepath.Join(dir, meta.Graph))
	if err != nil {
		return nil, err
	}
	if err := m.CheckData(subset.ExampleShape(), dmeta.Classes); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", meta.Source, dmeta.Dataset, err)
	}
	w, err := m.ReadWeights(filepath.Join(dir, snapmeta.WeightsFile), dtype)
	if err != nil {
		return nil, err
	}
	notes := []string{fmt.Sprintf("ONNX model %s: input %s, output %s; layers %s", meta.Source, m.InputString(), m.OutputString(), strings.Join(m.Layers(), ", "))}
	return &network{c: w.Classifier(train), layers: m.Layers(), notes: notes, release: func() { _ = w.Finalize() }}, nil
}
