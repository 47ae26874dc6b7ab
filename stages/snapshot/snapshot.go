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
//
// A path to an ONNX model (an .onnx file, or a folder holding one with its
// external data) imports that network instead (package onnxmodel, onnx.go):
// its graph, its weights by initializer name, model "ONNX" in meta.json. It
// is checked when the spec is read: every op converted, external data
// present.
//
//	import: {kind: snapshot, with: {path: testdata/onnx/lenet.onnx}}
//
// The artifact's file names and meta.json are defined in package snapmeta,
// which the stages reading snapshots use.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/internal/atomicfile"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/snapshot/snapmeta"
	trainstage "github.com/hessian-spectra/runner/stages/train"
	"github.com/hessian-spectra/runner/stages/train/trainmeta"
	trainlib "github.com/hessian-spectra/runner/train"
)

// version is the kind's implementation version: bump it when the artifact
// changes meaning or layout.
const version = 1

// Kind is the snapshot stage kind.
var Kind = &stage.Kind{
	Name:    "snapshot",
	Version: version,
	Light:   true,
	Doc:     "one epoch's weights out of a training run, an imported PyTorch-layout state_dict .npz, or an imported ONNX model",
	Params: []stage.Param{
		{Name: "epoch", Type: stage.Int, Min: stage.Bound(0),
			Doc: "with input train: the checkpoint to take (0 = initialisation, N = after N epochs)"},
		{Name: "path", Type: stage.Path,
			Doc: "without input train: a state_dict .npz in PyTorch names and layouts to import, or an ONNX model (.onnx, or a folder holding one and its external data)"},
		{Name: "model", Type: stage.String, Enum: models.Names(),
			Doc: "the imported weights' architecture (with path)"},
		{Name: "in_channels", Type: stage.Int, Min: stage.Bound(1),
			Doc: "the imported model's input channels (with path)"},
		{Name: "classes", Type: stage.Int, Min: stage.Bound(1),
			Doc: "the imported model's outputs (with path)"},
	},
	Inputs: []stage.Input{{Name: "train", Optional: true, Doc: "a train artifact (with epoch)", Kinds: []string{"train"}}},
	Check:  check,
	Run:    run,
}

// check finds at plan time what run would reject after the training: the
// wrong combination of params, and an epoch the training never
// checkpoints (it checkpoints epoch 0 and every snapshot_every-th epoch,
// and always its last).
func check(p *stage.Planned) []error {
	if err := paramsProblem(p.Params, p.Input("train") != nil); err != nil {
		return []error{err}
	}
	if isONNX(p.Params) {
		if _, err := openONNX(p.Params); err != nil {
			return []error{&stage.ParamError{Param: "path", Err: err}}
		}
		return nil
	}
	tr := p.Input("train")
	if tr == nil || !tr.Params.Has("epochs") {
		return nil
	}
	epoch, epochs, every := p.Params.Int("epoch"), tr.Params.Int("epochs"), tr.Params.Int("snapshot_every")
	if !slices.Contains(trainlib.CheckpointEpochs(epochs, every), epoch) {
		return []error{stage.ParamErrorf("epoch", "input train (%s) will have no checkpoint of epoch %d: it trains %d epochs with snapshot_every %d and keeps %s",
			tr.ID, epoch, epochs, every, list(trainlib.CheckpointEpochs(epochs, every)))}
	}
	return nil
}

// paramsProblem says what is wrong with the combination of params given,
// for a snapshot with or without input train.
func paramsProblem(p stage.Params, hasTrain bool) error {
	switch {
	case hasTrain && p.Has("path"):
		return errors.New("give either input train (with epoch) or path (an import), not both")
	case hasTrain:
		if !p.Has("epoch") {
			return errors.New("input train needs param epoch (the checkpoint to take)")
		}
		for _, n := range []string{"model", "in_channels", "classes"} {
			if p.Has(n) {
				return stage.ParamErrorf(n, "only for imports (path); the training run knows its model")
			}
		}
	case p.Has("path"):
		if p.Has("epoch") {
			return stage.ParamErrorf("epoch", "needs input train; an import (path) has no epoch")
		}
		if isONNX(p) {
			for _, n := range []string{"model", "in_channels", "classes"} {
				if p.Has(n) {
					return stage.ParamErrorf(n, "for state_dict imports only; an ONNX model (%s) defines its own network", filepath.Base(p.String("path")))
				}
			}
			return nil
		}
		for _, n := range []string{"model", "in_channels", "classes"} {
			if !p.Has(n) {
				return fmt.Errorf("importing %s needs param %s", p.String("path"), n)
			}
		}
	default:
		return errors.New("nothing to snapshot: give input train with param epoch, or param path with model, in_channels and classes (or path alone, an ONNX model)")
	}
	return nil
}

// PlannedModel returns the model a snapshot instance will hold, as params
// tell at plan time: an import's, or its training run's; ok is false when p
// is not a snapshot instance or the model is not known before it runs.
func PlannedModel(p *stage.Planned) (*models.Model, bool) {
	if p == nil || p.Kind.Name != "snapshot" {
		return nil, false
	}
	if tr := p.Input("train"); tr != nil {
		return trainstage.PlannedModel(tr)
	}
	if !p.Params.Has("model") || !p.Params.Has("in_channels") || !p.Params.Has("classes") {
		return nil, false
	}
	m, err := models.New(p.Params.String("model"), p.Params.Int("in_channels"), p.Params.Int("classes"))
	return m, err == nil
}

func run(ctx context.Context, e *stage.Env) error {
	p := e.Params
	hasTrain := len(e.Inputs["train"]) > 0
	if err := paramsProblem(p, hasTrain); err != nil {
		return err
	}
	var meta snapmeta.Meta
	var err error
	switch {
	case hasTrain:
		meta, err = extract(e)
	case isONNX(p):
		meta, err = importONNX(e)
	default:
		meta, err = importFile(e)
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return snapmeta.Write(e.OutDir, meta)
}

// extract copies one epoch's checkpoint out of the train input.
func extract(e *stage.Env) (snapmeta.Meta, error) {
	in, err := e.Input("train")
	if err != nil {
		return snapmeta.Meta{}, err
	}
	epoch := e.Params.Int("epoch")
	tm, err := trainmeta.Read(in.Dir)
	if err != nil {
		return snapmeta.Meta{}, fmt.Errorf("input train (%s) is not a train artifact: %w", in.Stage, err)
	}
	epochs, err := trainlib.Checkpoints(in.Dir)
	if err != nil {
		return snapmeta.Meta{}, fmt.Errorf("input train (%s): %w", in.Stage, err)
	}
	if !slices.Contains(epochs, epoch) {
		return snapmeta.Meta{}, fmt.Errorf("input train (%s) has no checkpoint of epoch %d; it has %s (see its snapshot_every)",
			in.Stage, epoch, list(epochs))
	}
	// Check the checkpoint against the model before passing it on: a
	// damaged or foreign file fails here, naming itself, not in a later
	// stage. The bytes are copied as they are.
	src := trainlib.CheckpointPath(in.Dir, epoch)
	m, err := models.New(tm.Model, tm.InChannels, tm.Classes)
	if err != nil {
		return snapmeta.Meta{}, fmt.Errorf("input train (%s): %s: %w", in.Stage, trainmeta.File, err)
	}
	w, err := trainlib.ReadCheckpoint(m, src, dtypes.InvalidDType)
	if err != nil {
		return snapmeta.Meta{}, fmt.Errorf("input train (%s): checkpoint of epoch %d: %w", in.Stage, epoch, err)
	}
	_ = w.Finalize()
	if err := atomicfile.CopyFile(filepath.Join(e.OutDir, snapmeta.WeightsFile), src, 0o644); err != nil {
		return snapmeta.Meta{}, err
	}
	e.Logf("epoch %d of %s (%s)", epoch, in.Stage, tm.Model)
	return snapmeta.Meta{Model: tm.Model, InChannels: tm.InChannels, Classes: tm.Classes, Epoch: &epoch, Source: in.Stage}, nil
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
func importFile(e *stage.Env) (snapmeta.Meta, error) {
	p := e.Params
	m, err := models.New(p.String("model"), p.Int("in_channels"), p.Int("classes"))
	if err != nil {
		return snapmeta.Meta{}, err
	}
	path := p.String("path")
	ar, err := npz.ReadFile(path)
	if err != nil {
		return snapmeta.Meta{}, err
	}
	dtype := archiveDType(ar)
	w, err := m.FromArchive(ar, dtype)
	if err != nil {
		return snapmeta.Meta{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := w.WriteFile(filepath.Join(e.OutDir, snapmeta.WeightsFile)); err != nil {
		return snapmeta.Meta{}, err
	}
	e.Logf("imported %s: %s, %d input channels, %d classes, %s", path, m.Name(), m.InChannels(), m.Classes(), dtype)
	return snapmeta.Meta{Model: m.Name(), InChannels: m.InChannels(), Classes: m.Classes(), Source: filepath.Base(path)}, nil
}

// archiveDType is the precision of a state_dict: float64 when any array is.
func archiveDType(ar *npz.Archive) dtypes.DType {
	for _, a := range ar.Arrays {
		if _, ok := a.Data.([]float64); ok {
			return dtypes.Float64
		}
	}
	return dtypes.Float32
}
