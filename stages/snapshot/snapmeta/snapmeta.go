// Package snapmeta defines a snapshot artifact's layout (docs/ARTIFACTS.md)
// in one place: its file names and its meta.json, which the snapshot stage
// writes with Write and the lanczos stage reads with Read.
//
// It imports no GoMLX, so that its readers stay light.
package snapmeta

import (
	"path/filepath"

	"github.com/hessian-spectra/runner/internal/jsonfile"
)

// The files of a snapshot artifact.
const (
	// File is meta.json.
	File = "meta.json"
	// WeightsFile holds the weights: a state_dict in PyTorch names and
	// layouts, or an ONNX model's parameters by initializer name.
	WeightsFile = "weights.npz"
	// GraphFile is the ONNX graph an import of an ONNX model keeps beside
	// its weights: the file itself, external data inlined.
	GraphFile = "model.onnx"
)

// Meta is the content of meta.json. The fields are written in this order;
// the snapshot stage's digests depend on it.
type Meta struct {
	// Model is the architecture ("LeNet", …), or "ONNX" (onnxmodel's
	// ModelName) for an imported ONNX model.
	Model string `json:"model"`
	// InChannels is the model's input channels (0 for an ONNX model whose
	// input is not [C, H, W]).
	InChannels int `json:"in_channels"`
	// Classes is the model's outputs (0 when an ONNX model leaves it open).
	Classes int `json:"classes"`
	// Epoch is the checkpoint's epoch; nil for an import.
	Epoch *int `json:"epoch"`
	// Source is the training run's stage id, or the imported file's name.
	Source string `json:"source"`
	// InputShape is the shape of one example an ONNX model takes (-1 where
	// the file leaves it open); absent for the native models.
	InputShape []int `json:"input_shape,omitempty"`
	// Graph is the artifact's ONNX file (GraphFile) for an ONNX import.
	Graph string `json:"graph,omitempty"`
}

// Write writes m as dir's meta.json (package jsonfile's form).
func Write(dir string, m Meta) error {
	return jsonfile.Write(filepath.Join(dir, File), m)
}

// Read reads dir's meta.json. A missing file is an error that satisfies
// errors.Is(err, fs.ErrNotExist).
func Read(dir string) (*Meta, error) { return jsonfile.Read[Meta](filepath.Join(dir, File)) }
