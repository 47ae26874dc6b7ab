// Package trainmeta defines a train artifact's meta.json (docs/ARTIFACTS.md)
// in one place: the train stage writes it with Write; the snapshot stage
// and the tables and figures (analysis/records) read it with Read.
//
// It imports no GoMLX, so that its readers stay light: records, the plot and
// the aggregate stages build without the numerical stack.
package trainmeta

import (
	"path/filepath"

	"github.com/hessian-spectra/runner/internal/jsonfile"
)

// File is the name of the file in the artifact.
const File = "meta.json"

// Meta is the content of meta.json. The fields are written in this order;
// the train stage's digests depend on it.
type Meta struct {
	Model      string `json:"model"`       // the architecture, e.g. "LeNet"
	Dataset    string `json:"dataset"`     // the fetch artifact's dataset
	InChannels int    `json:"in_channels"` // the model's input channels
	Classes    int    `json:"classes"`     // the model's outputs
	ParamCount int    `json:"param_count"` // its trainable parameters
	Epochs     int    `json:"epochs"`      // epochs trained
	// Seed is the seed param. The train stage always writes it; it is nil
	// when a meta.json written otherwise lacks it, and tables then do not
	// pair runs by seed.
	Seed  *int64 `json:"seed"`
	DType string `json:"dtype"` // "float32" or "float64"
	// Params are the stage's resolved params (a stage.Params when written;
	// JSON values when read).
	Params map[string]any `json:"params"`
}

// Write writes m as dir's meta.json (package jsonfile's form).
func Write(dir string, m Meta) error {
	return jsonfile.Write(filepath.Join(dir, File), m)
}

// Read reads dir's meta.json. A missing file is an error that satisfies
// errors.Is(err, fs.ErrNotExist).
func Read(dir string) (*Meta, error) { return jsonfile.Read[Meta](filepath.Join(dir, File)) }
