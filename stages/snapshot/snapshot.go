// Package snapshot is the snapshot stage kind: one set of weights, either one
// epoch's checkpoint out of a train artifact or a PyTorch-layout state_dict
// .npz imported from anywhere, written as weights.npz with a meta.json
// (docs/ARTIFACTS.md).
//
//	snap:   {kind: snapshot, needs: {train: train}, with: {epoch: 10}}
//	import: {kind: snapshot, with: {path: testdata/lenet-fmnist/weights.npz,
//	                                model: LeNet, in_channels: 1, classes: 10}}
//
// An import is checked against the model: every parameter and batch-norm
// buffer present with PyTorch's shape, nothing else; the error names every
// mismatch.
package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	trainlib "github.com/hessian-spectra/runner/train"
)

// version is the kind's implementation version: bump it when the artifact
// changes meaning or layout.
const version = 1

// Artifact file names.
const (
	WeightsFile = "weights.npz"
	MetaFile    = "meta.json"
)

// Kind is the snapshot stage kind.
var Kind = &stage.Kind{
	Name:    "snapshot",
	Version: version,
	Light:   true,
	Doc:     "one epoch's weights out of a training run, or an imported PyTorch-layout state_dict .npz",
	Params: []stage.Param{
		{Name: "epoch", Type: stage.Int, Min: stage.Bound(0),
			Doc: "with input train: the checkpoint to take (0 = initialisation, N = after N epochs)"},
		{Name: "path", Type: stage.Path,
			Doc: "without input train: a state_dict .npz in PyTorch names and layouts to import"},
		{Name: "model", Type: stage.String, Enum: models.Names(),
			Doc: "the imported weights' architecture (with path)"},
		{Name: "in_channels", Type: stage.Int, Min: stage.Bound(1),
			Doc: "the imported model's input channels (with path)"},
		{Name: "classes", Type: stage.Int, Min: stage.Bound(1),
			Doc: "the imported model's outputs (with path)"},
	},
	Inputs: []stage.Input{{Name: "train", Optional: true, Doc: "a train artifact (with epoch)"}},
	Run:    run,
}

// Meta is the artifact's meta.json.
type Meta struct {
	Model      string `json:"model"`
	InChannels int    `json:"in_channels"`
	Classes    int    `json:"classes"`
	// Epoch is the checkpoint's epoch; nil for an import.
	Epoch *int `json:"epoch"`
	// Source is the training run's stage id, or the imported file's name.
	Source string `json:"source"`
}

func run(ctx context.Context, e *stage.Env) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: snapshot failed: %v", e.ID, r)
		}
	}()
	p := e.Params
	_, hasTrain := e.Inputs["train"]
	hasTrain = hasTrain && len(e.Inputs["train"]) > 0
	var meta Meta
	switch {
	case hasTrain && p.Has("path"):
		return fmt.Errorf("%s: give either input train (with epoch) or path (an import), not both", e.ID)
	case hasTrain:
		if !p.Has("epoch") {
			return fmt.Errorf("%s: input train needs param epoch (the checkpoint to take)", e.ID)
		}
		for _, n := range []string{"model", "in_channels", "classes"} {
			if p.Has(n) {
				return fmt.Errorf("%s: param %s is only for imports (path); the training run knows its model", e.ID, n)
			}
		}
		meta, err = extract(e)
	case p.Has("path"):
		if p.Has("epoch") {
			return fmt.Errorf("%s: param epoch needs input train; an import (path) has no epoch", e.ID)
		}
		meta, err = importFile(e)
	default:
		return fmt.Errorf("%s: nothing to snapshot: give input train with param epoch, or param path with model, in_channels and classes", e.ID)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	js, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", e.ID, err)
	}
	return writeFile(filepath.Join(e.OutDir, MetaFile), append(js, '\n'))
}

// trainMeta is what extract reads of a train artifact's meta.json.
type trainMeta struct {
	Model      string `json:"model"`
	InChannels int    `json:"in_channels"`
	Classes    int    `json:"classes"`
}

// extract copies one epoch's checkpoint out of the train input.
func extract(e *stage.Env) (Meta, error) {
	in, err := e.Input("train")
	if err != nil {
		return Meta{}, err
	}
	epoch := e.Params.Int("epoch")
	b, err := os.ReadFile(filepath.Join(in.Dir, MetaFile))
	if err != nil {
		return Meta{}, fmt.Errorf("input train (%s) is not a train artifact: %w", in.Stage, err)
	}
	var tm trainMeta
	if err := json.Unmarshal(b, &tm); err != nil {
		return Meta{}, fmt.Errorf("input train (%s): %s: %w", in.Stage, MetaFile, err)
	}
	epochs, err := trainlib.Checkpoints(in.Dir)
	if err != nil {
		return Meta{}, fmt.Errorf("input train (%s): %w", in.Stage, err)
	}
	if !slices.Contains(epochs, epoch) {
		return Meta{}, fmt.Errorf("input train (%s) has no checkpoint of epoch %d; it has %s (see its snapshot_every)",
			in.Stage, epoch, list(epochs))
	}
	if err := copyFile(trainlib.CheckpointPath(in.Dir, epoch), filepath.Join(e.OutDir, WeightsFile)); err != nil {
		return Meta{}, err
	}
	e.Logf("epoch %d of %s (%s)", epoch, in.Stage, tm.Model)
	return Meta{Model: tm.Model, InChannels: tm.InChannels, Classes: tm.Classes, Epoch: &epoch, Source: in.Stage}, nil
}

// list formats epochs for an error message.
func list(epochs []int) string {
	if len(epochs) == 0 {
		return "no checkpoints"
	}
	s := make([]string, len(epochs))
	for i, ep := range epochs {
		s[i] = fmt.Sprint(ep)
	}
	return "epochs " + strings.Join(s, ", ")
}

// importFile reads a state_dict .npz, checks it against the model, and writes
// it in canonical form (our names, order and num_batches_tracked), keeping
// its float precision.
func importFile(e *stage.Env) (Meta, error) {
	p := e.Params
	for _, n := range []string{"model", "in_channels", "classes"} {
		if !p.Has(n) {
			return Meta{}, fmt.Errorf("importing %s needs param %s", p.String("path"), n)
		}
	}
	m, err := models.New(p.String("model"), p.Int("in_channels"), p.Int("classes"))
	if err != nil {
		return Meta{}, err
	}
	path := p.String("path")
	ar, err := npz.ReadFile(path)
	if err != nil {
		return Meta{}, err
	}
	dtype := dtypes.Float32
	for _, a := range ar.Arrays {
		if _, ok := a.Data.([]float64); ok {
			dtype = dtypes.Float64
		}
	}
	w, err := m.FromArchive(ar, dtype)
	if err != nil {
		return Meta{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := w.WriteFile(filepath.Join(e.OutDir, WeightsFile)); err != nil {
		return Meta{}, err
	}
	e.Logf("imported %s: %s, %d input channels, %d classes, %s", path, m.Name(), m.InChannels(), m.Classes(), dtype)
	return Meta{Model: m.Name(), InChannels: m.InChannels(), Classes: m.Classes(), Source: filepath.Base(path)}, nil
}

// copyFile copies src to dst through a temporary file renamed into place.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// writeFile writes b to path through a temporary file renamed into place.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
