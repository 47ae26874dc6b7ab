// Package train is the train stage kind: one model trained with one seed on a
// fetch artifact, with PyTorch's SGD or Adam, MultiStepLR and optional
// Hessian-trace regularisation, written as a train artifact (docs/ARTIFACTS.md).
//
//	train:
//	  kind: train
//	  needs: {data: data}
//	  with: {model: LeNet, lr: 0.01, momentum: 0.9, batch_size: 256, epochs: 50, seed: 0}
//	htr:
//	  kind: train
//	  needs: {data: data}
//	  with: {model: LeNet, lr: 0.01, momentum: 0, epochs: 400, milestones: [250, 350],
//	         htr: {gamma: 1e-3, start_epoch: 15, freq: 50, probes: 10}}
//
// Defaults follow the seed's eigenspectrum runs (SGD, momentum 0.9, batch 256,
// constant rate); its HTR scripts used momentum 0, which a spec then states.
// Reruns are separate instances with different seeds (a matrix over seed),
// not a loop in the stage. The numerics live in package train.
//
// A stage whose only change from a cached one is its length (epochs, and
// milestones at or after the shorter length, or snapshot_every) builds on
// it (stage.Kind.Reuse): a longer run continues from the cached run's last
// epoch (train.Extend), a shorter one takes the cached run's first epochs
// without training (train.Derive); the files are those of a run from
// nothing.
//
// The artifact's meta.json is defined in package trainmeta, through which
// the snapshot stage and the tables read it.
package train

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/fetch"
	"github.com/hessian-spectra/runner/stages/train/trainmeta"
	trainlib "github.com/hessian-spectra/runner/train"
)

// version is the kind's implementation version: bump it when the artifact
// changes meaning or layout.
//
//	v2: timings.csv moved to run/ and the backend out of meta.json (into
//	run/run.json), so that digests cover results only.
const version = 2

// Kind is the train stage kind.
var Kind = &stage.Kind{
	Name:    "train",
	Version: version,
	Doc:     "trains one model with one seed (SGD or Adam, MultiStepLR, optional L2 and Hessian-trace regularisation); metrics.csv and checkpoints",
	Params: []stage.Param{
		{Name: "model", Type: stage.String, Required: true, Enum: models.Names(),
			Doc: "the architecture; input channels and classes come from the data"},
		{Name: "optimizer", Type: stage.String, Default: trainlib.NameSGD, Enum: []string{trainlib.NameSGD, trainlib.NameAdam},
			Doc: "PyTorch's SGD or Adam"},
		{Name: "lr", Type: stage.Float, Required: true, Min: stage.Bound(0), MinExclusive: true,
			Doc: "initial learning rate (the seed's -lr)"},
		{Name: "momentum", Type: stage.Float, Default: 0.9, Min: stage.Bound(0),
			Doc: "SGD momentum: 0.9 as the seed's eigenspectrum runs; its HTR scripts used 0"},
		{Name: "dampening", Type: stage.Float, Default: 0.0,
			Doc: "SGD dampening (PyTorch's; the seed's 0)"},
		{Name: "nesterov", Type: stage.Bool, Default: false,
			Doc: "Nesterov momentum (needs momentum > 0 and dampening 0)"},
		{Name: "weight_decay", Type: stage.Float, Default: 0.0, Min: stage.Bound(0),
			Doc: "coupled L2 on every parameter, biases and batch norm included (the seed's -l2)"},
		{Name: "betas", Type: stage.List, Elem: stage.Float, Default: []float64{0.9, 0.999}, Min: stage.Bound(0), Max: stage.Bound(1),
			Doc: "Adam's (β₁, β₂)"},
		{Name: "eps", Type: stage.Float, Default: 1e-8, Min: stage.Bound(0),
			Doc: "Adam's ε, added outside the square root"},
		{Name: "batch_size", Type: stage.Int, Default: 256, Min: stage.Bound(1), Max: stage.Bound(1 << 20),
			Doc: "training batch (the seed's -b); the last partial batch is kept"},
		{Name: "epochs", Type: stage.Int, Required: true, Min: stage.Bound(1), Max: stage.Bound(100_000),
			Doc: "training epochs (the seed's -n)"},
		{Name: "milestones", Type: stage.List, Elem: stage.Int, Default: []int{}, Min: stage.Bound(0),
			Doc: "MultiStepLR milestones, 0-based epoch indices (none: constant rate)"},
		{Name: "lr_gamma", Type: stage.Float, Default: 0.1, Min: stage.Bound(0),
			Doc: "MultiStepLR factor (the seed's --lr_gamma / --step_gamma)"},
		{Name: "seed", Type: stage.Int, Default: 0, Min: stage.Bound(0), Max: stage.Bound(1<<32 - 1),
			Doc: "drives the initialisation, the shuffling and the HTR probes"},
		{Name: "htr", Type: stage.Object, Doc: "Hessian-trace regularisation (SEED-SPEC §5); absent or gamma 0: off",
			Fields: []stage.Param{
				{Name: "gamma", Type: stage.Float, Default: 1e-3, Min: stage.Bound(0), Doc: "coefficient of the trace penalty (the seed's -gamma)"},
				{Name: "start_epoch", Type: stage.Int, Default: 15, Min: stage.Bound(0),
					Doc: "first penalised epoch, 0-based (the seed's -sp)"},
				{Name: "freq", Type: stage.Int, Default: 50, Min: stage.Bound(1),
					Doc: "penalise steps whose 0-based index within the epoch is a multiple of freq (the seed's -freq)"},
				{Name: "probes", Type: stage.Int, Default: 10, Min: stage.Bound(1), Max: stage.Bound(10_000),
					Doc: "Hutchinson probe vectors per penalised step (the seed's -hi)"},
				{Name: "distribution", Type: stage.String, Default: trainlib.Rademacher, Enum: []string{trainlib.Rademacher, trainlib.Gaussian},
					Doc: "probe entries: ±1 (the seed's) or standard normal (its later Regularization scripts)"},
				{Name: "params", Type: stage.List, Elem: stage.String, Default: []string{trainlib.AllParams},
					Doc: "tensors the trace covers: all (the seed's), weights (the conv and linear weights), or parameter names; a union"},
			}},
		{Name: "snapshot_every", Type: stage.Int, Default: 1, Min: stage.Bound(0),
			Doc: "checkpoint the initialisation and every N epochs (0: only the last epoch)"},
		{Name: "eval_batch_size", Type: stage.Int, Default: 500, Min: stage.Bound(1), Max: stage.Bound(1 << 20),
			Doc: "batch of the per-epoch evaluations (changes no result beyond float rounding)"},
		{Name: "dtype", Type: stage.String, Default: "float32", Enum: []string{"float32", "float64"},
			Doc: "precision of weights, optimizer state and data"},
		{Name: "legacy", Type: stage.Bool, Default: false,
			Doc: "reproduce the seed's eval-mode bug: batch norm frozen (running statistics) from the second epoch on"},
	},
	Inputs: []stage.Input{{Name: "data", Doc: "a fetch artifact", Kinds: []string{"fetch"}}},
	Check:  check,
	Reuse:  &stage.Reuse{Params: []string{"epochs", "milestones", "snapshot_every"}, Plan: planReuse},
	Run:    run,
}

// planReuse is the kind's Reuse.Plan. A cached run of N epochs that agrees
// with the wanted run of M in every other param serves when both have the
// same learning rates over their first min(N, M) epochs (the same
// milestones below it) and it checkpointed every epoch ≤ min(N, M) the
// wanted run keeps: a shorter run is extended (the cost is the epochs left
// to train), a longer one gives the shorter artifact without training.
func planReuse(from, to stage.Params) (stage.ReusePlan, bool) {
	n, m := from.Int("epochs"), to.Int("epochs")
	if !trainlib.SameSchedule(from.Ints("milestones"), to.Ints("milestones"), min(n, m)) {
		return stage.ReusePlan{}, false
	}
	f := trainlib.Finished{Epochs: n, SnapshotEvery: from.Int("snapshot_every")}
	if !f.Covers(m, to.Int("snapshot_every")) {
		return stage.ReusePlan{}, false
	}
	if n >= m {
		return stage.ReusePlan{How: fmt.Sprintf("derived from cached run of %d epochs", n)}, true
	}
	return stage.ReusePlan{How: fmt.Sprintf("extends cached run of %d epochs by %d", n, m-n), Cost: float64(m - n)}, true
}

// PlannedModel returns the model a train instance trains, as its params and
// its data's tell at plan time; ok is false when p is not a train instance
// or its data is not known before it runs.
func PlannedModel(p *stage.Planned) (*models.Model, bool) {
	if p == nil || p.Kind.Name != "train" || !p.Params.Has("model") {
		return nil, false
	}
	info, classes, ok := fetch.Planned(p.Input("data"))
	if !ok {
		return nil, false
	}
	m, err := models.New(p.Params.String("model"), info.Channels, classes)
	return m, err == nil
}

// check finds at plan time what would otherwise fail when the stage starts
// (after its data is fetched): an HTR params list naming tensors the model
// lacks, Nesterov without momentum, Adam's betas.
func check(p *stage.Planned) []error {
	m, ok := PlannedModel(p)
	if !ok {
		return nil
	}
	if _, err := Config(p.Params, m); err != nil {
		return []error{err}
	}
	return nil
}

// Config turns resolved params into a training configuration for m and
// validates it.
func Config(p stage.Params, m *models.Model) (trainlib.Config, error) {
	opt := trainlib.Optimizer{Name: p.String("optimizer"), LR: p.Float("lr"), WeightDecay: p.Float("weight_decay")}
	if opt.Name == trainlib.NameAdam {
		betas := p.Floats("betas")
		if len(betas) != 2 {
			return trainlib.Config{}, fmt.Errorf("param betas: want two values (β₁, β₂), got %d", len(betas))
		}
		opt.Beta1, opt.Beta2 = betas[0], betas[1]
		opt.Eps = p.Float("eps")
	} else {
		opt.Momentum, opt.Dampening, opt.Nesterov = p.Float("momentum"), p.Float("dampening"), p.Bool("nesterov")
	}
	cfg := trainlib.Config{
		Model:         m,
		DType:         dtypes.Float32,
		Optimizer:     opt,
		Schedule:      trainlib.MultiStepLR{Milestones: p.Ints("milestones"), Gamma: p.Float("lr_gamma")},
		BatchSize:     p.Int("batch_size"),
		EvalBatchSize: p.Int("eval_batch_size"),
		Epochs:        p.Int("epochs"),
		Seed:          uint32(p.Int("seed")),
		SnapshotEvery: p.Int("snapshot_every"),
		Legacy:        p.Bool("legacy"),
	}
	if p.String("dtype") == "float64" {
		cfg.DType = dtypes.Float64
	}
	if p.Has("htr") {
		h := p.Object("htr")
		cfg.HTR = trainlib.HTR{Gamma: h.Float("gamma"), StartEpoch: h.Int("start_epoch"), Freq: h.Int("freq"),
			Probes: h.Int("probes"), Distribution: h.String("distribution"), Params: h.Strings("params")}
		if cfg.HTR.Enabled() {
			if _, err := cfg.HTR.Select(m); err != nil {
				return cfg, err
			}
		}
	}
	return cfg, cfg.Validate()
}

func run(ctx context.Context, e *stage.Env) error {
	p := e.Params
	in, err := e.Input("data")
	if err != nil {
		return err
	}
	data, err := datasets.Load(in.Dir)
	if err != nil {
		return fmt.Errorf("input data (%s): %w", in.Stage, err)
	}
	meta := data.Meta
	m, err := models.New(p.String("model"), meta.Channels, meta.Classes)
	if err != nil {
		return err
	}
	if meta.Height != models.InputSize || meta.Width != models.InputSize {
		return fmt.Errorf("input data (%s): %s images are %d×%d, the models take %d×%d",
			in.Stage, meta.Dataset, meta.Height, meta.Width, models.InputSize, models.InputSize)
	}
	cfg, err := Config(p, m)
	if err != nil {
		return err
	}
	seed := int64(p.Int("seed"))
	writeMeta := func() error {
		return trainmeta.Write(e.OutDir, trainmeta.Meta{Model: m.Name(), Dataset: meta.Dataset, InChannels: m.InChannels(),
			Classes: m.Classes(), ParamCount: m.ParamCount(), Epochs: cfg.Epochs, Seed: &seed, DType: p.String("dtype"),
			Params: p})
	}
	if pr := e.Prior; pr != nil {
		// A cached run that differs in length (Kind.Reuse): the same files
		// with less or no training.
		f := trainlib.Finished{Dir: pr.Dir, RunDir: filepath.Join(pr.Dir, artifacts.RunDirName), Epochs: pr.Params.Int("epochs"),
			SnapshotEvery: pr.Params.Int("snapshot_every")}
		switch {
		case f.Epochs >= cfg.Epochs:
			err := trainlib.Derive(f, cfg, trainlib.Output{Dir: e.OutDir, RunDir: e.RunDir})
			if err == nil {
				e.Logf("%s (%s): its first %d epochs, no training", pr.How, pr.Stage, cfg.Epochs)
				return writeMeta()
			}
			e.Logf("cannot derive from %s (%v): training from nothing", pr.Stage, err)
		case e.Scratch == "":
		default:
			if err := trainlib.Extend(e.Scratch, f, cfg, data.Train.N); err != nil {
				e.Logf("cannot extend %s (%v): training from nothing", pr.Stage, err)
			} else {
				e.Logf("%s (%s): continues from its state after epoch %d", pr.How, pr.Stage, f.Epochs)
			}
		}
	}
	name := backend.Resolve(e.Backend)
	b, err := backend.Open(name)
	if err != nil {
		return err
	}
	e.Logf("backend %s; data %s from %s", name, meta.Dataset, in.Stage)
	e.SetRunInfo("backend", name)
	t, err := trainlib.New(b, cfg, nil)
	if err != nil {
		return err
	}
	if _, err := trainlib.Run(ctx, t, data, trainlib.Output{Dir: e.OutDir, RunDir: e.RunDir, Scratch: e.Scratch, Log: e.Log, Progress: e.Progress}); err != nil {
		return err
	}
	return writeMeta()
}
