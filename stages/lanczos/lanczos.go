// Package lanczos is the lanczos stage kind: the spectral density, top
// eigenvalues and trace of one Hessian operator — the full network's or one
// layer's — of a snapshot's weights on the seed's per-class data subset.
//
//	spectrum:
//	  kind: lanczos
//	  needs: {weights: snap, data: data}
//	  with: {layer: conv1.weight, subset: {per_class: 10, seed: 0}, top_k: 3, trace_probes: 200}
//
// The Hessian is that of the mean cross-entropy over the subset (package
// hessian's ModelHessian), in batch-norm eval mode by default (the seed's
// mode bug, SEED-SPEC §8.1, is not reproduced; bn_mode: train uses batch
// statistics). The density is the seed's LanczosLoop with its constants
// (SEED-SPEC §4.3) as defaults. It writes spectrum.npz and summary.json as
// docs/ARTIFACTS.md describes.
//
// # Random streams
//
// Every random vector (the range run's and each probe's start, the top-k
// start, each Hutchinson probe) comes from its own stream of package
// hessian, all seeded by one 64-bit stream seed that StreamSeed derives
// from the seed param, the digest of the weights artifact and the layer.
// So every stage instance draws independent vectors — two epochs of one
// layer, or the full network and one of its layers, never share a start
// vector (the seed drew a fresh one at every call) — while rerunning an
// instance draws the same ones. summary.json records the stream seed.
//
// # Reuse
//
// Because probe p of a run is the same whatever the number of probes, a
// stage whose only change from a cached one is probes, trace_probes or
// top_k reuses what that artifact computed (stage.Kind.Reuse): the range
// run and the first probes' Lanczos tridiagonals (lanczos_alpha,
// lanczos_beta), the first Hutchinson samples (trace_samples) and, for the
// same top_k, the top-k result; it computes the rest, and writes the files
// a run from nothing writes. A changed top_k is recomputed: a larger K
// continues a Krylov space whose basis is not kept, and a smaller one
// stops at another step.
package lanczos

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/hessian"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/nn"
	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/lanczos/summary"
	"github.com/hessian-spectra/runner/stages/snapshot"
	"github.com/hessian-spectra/runner/stages/snapshot/snapmeta"
	"golang.org/x/sys/unix"
)

// version is the kind's implementation version: bump it when the artifact
// changes meaning or layout.
//
//	v2: the wall time and backend moved out of summary.json (into
//	run/run.json), so that digests cover results only.
//	v3: random streams seeded per instance (StreamSeed) instead of by the
//	seed param alone; spectrum.npz keeps each recurrence (bounds_*,
//	lanczos_*, trace_samples, top_residuals) and summary.json the stream
//	seed and the top-k run's length, so that more probes reuse them.
const version = 3

// Kind is the lanczos stage kind.
var Kind = &stage.Kind{
	Name:    "lanczos",
	Version: version,
	Doc:     "spectral density (the seed's stochastic Lanczos quadrature), top eigenvalues and Hutchinson trace of the full or one layer's loss Hessian on the per-class subset",
	Params: []stage.Param{
		{Name: "layer", Type: stage.String, Default: hessian.FullTarget,
			Doc: "full (every trainable parameter, biases and batch norm included) or a parameter name such as conv1.weight (that tensor's Hessian, all others fixed)"},
		{Name: "subset", Type: stage.Object, Default: map[string]any{}, Doc: "the seed's per-class subset of the training split",
			Fields: []stage.Param{
				{Name: "per_class", Type: stage.Int, Default: 10, Min: stage.Bound(1), Doc: "images of each class"},
				{Name: "seed", Type: stage.Int, Default: 0, Min: stage.Bound(0), Max: stage.Bound(math.MaxUint32), Doc: "numpy seed reset before each class's pick"},
			}},
		{Name: "batch_size", Type: stage.Int, Default: 128, Min: stage.Bound(1), Max: stage.Bound(1 << 20),
			Doc: "subset images per graph execution (the seed's loader batch); matters for results only with bn_mode: train"},
		{Name: "bn_mode", Type: stage.String, Default: "eval", Enum: []string{"eval", "train"},
			Doc: "batch norm with running statistics (eval) or each batch's statistics (train)"},
		{Name: "loss", Type: stage.String, Enum: []string{"cross_entropy", "mse"},
			Doc: "the loss whose Hessian is taken, averaged over the subset: cross_entropy of the logits (when left out) or mse, the mean squared difference from one-hot labels (PyTorch's MSELoss)"},
		{Name: "dtype", Type: stage.String, Default: "float32", Enum: []string{"float32", "float64"},
			Doc: "precision of the whole graph; weights and data are converted at load"},
		{Name: "steps", Type: stage.Int, Default: 128, Min: stage.Bound(2), Max: stage.Bound(maxSteps), Doc: "Lanczos steps per density probe (the seed's poly_deg)"},
		{Name: "bound_steps", Type: stage.Int, Default: 64, Min: stage.Bound(1), Max: stage.Bound(maxSteps), Doc: "Lanczos steps of the range run (init_poly_deg)"},
		{Name: "grid", Type: stage.Int, Default: 1024, Min: stage.Bound(2), Max: stage.Bound(1 << 20), Doc: "density grid points (poly_points)"},
		{Name: "kappa", Type: stage.Float, Default: 1.25, Min: stage.Bound(1.000001), Doc: "kernel width constant: σ = h/√(8 ln kappa)"},
		{Name: "margin", Type: stage.Float, Default: 0.05, Min: stage.Bound(0), Doc: "widening of [lb, ub] on each side, as a fraction of ub − lb (spectrum_margin)"},
		{Name: "probes", Type: stage.Int, Default: 1, Min: stage.Bound(1), Max: stage.Bound(10_000), Doc: "independent density runs averaged (the seed: 1)"},
		{Name: "reorthogonalize", Type: stage.String, Default: "none", Enum: []string{"none", "full"},
			Doc: "none: the seed's three-term recurrence; full: Gram–Schmidt against every Lanczos vector (memory: steps vectors)"},
		{Name: "top_k", Type: stage.Int, Default: 0, Min: stage.Bound(0), Max: stage.Bound(maxSteps), Doc: "largest eigenvalues to find (0: none)"},
		{Name: "top_k_tol", Type: stage.Float, Default: 1e-6, Min: stage.Bound(1e-15), Max: stage.Bound(0.1),
			Doc: "relative residual at which a top eigenvalue counts as converged"},
		{Name: "trace_probes", Type: stage.Int, Default: 0, Min: stage.Bound(0), Max: stage.Bound(1_000_000), Doc: "Hutchinson probes for the trace (0: no trace)"},
		{Name: "trace_distribution", Type: stage.String, Default: "rademacher", Enum: []string{"rademacher", "gaussian"},
			Doc: "law of the trace probes' entries"},
		{Name: "seed", Type: stage.Int, Default: 0, Min: stage.Bound(0),
			Doc: "with the weights' digest and the layer, seeds every random start vector and probe (StreamSeed)"},
	},
	Inputs: []stage.Input{
		{Name: "weights", Doc: "a snapshot artifact: weights.npz and meta.json (model, in_channels, classes, epoch)", Kinds: []string{"snapshot"}},
		{Name: "data", Doc: "a fetch artifact; its training split gives the subset", Kinds: []string{"fetch"}},
	},
	Check: check,
	Reuse: &stage.Reuse{Params: []string{"probes", "trace_probes", "top_k"}, Plan: planReuse},
	Run:   run,
}

// maxSteps bounds the Lanczos steps and top_k: 10,000 steps already take
// 800 MB for the tridiagonal eigenvectors alone.
const maxSteps = 10_000

// check finds at plan time what would otherwise fail after the training
// upstream: a layer the model lacks, more eigenvalues than the layer has,
// and a stage whose vectors and arrays would not fit in this machine's
// memory.
func check(p *stage.Planned) []error {
	name, params, layers, ok := plannedParams(p.Input("weights"))
	if !ok {
		return nil
	}
	layer := p.Params.String("layer")
	dim := 0
	for _, e := range params {
		dim += e.Size()
	}
	if layer != hessian.FullTarget {
		i := slices.IndexFunc(params, func(e models.Entry) bool { return e.Name == layer })
		if i < 0 {
			return []error{stage.ParamErrorf("layer", "%s has no parameter %q%s; its layers: %s, or full",
				name, layer, stage.DidYouMean(layer, paramNames(params)), strings.Join(layers, ", "))}
		}
		dim = params[i].Size()
	}
	var errs []error
	if k := p.Params.Int("top_k"); k > dim {
		errs = append(errs, stage.ParamErrorf("top_k", "%d exceeds the dimension %d of layer %s", k, dim, layer))
	}
	if need, have := memoryNeed(p.Params, dim), machineMemory(); have > 0 && need > have*8/10 {
		errs = append(errs, fmt.Errorf("needs about %s of memory for its vectors and arrays (layer %s: dimension %d), more than 80%% of this machine's %s; lower steps, probes, grid or reorthogonalize",
			bytesText(need), layer, dim, bytesText(have)))
	}
	return errs
}

// memoryNeed estimates the bytes a stage holds at once besides the model's
// graph: the Lanczos vectors of the recurrences run in lockstep (all steps
// of each with full reorthogonalisation), the tridiagonal eigenvectors,
// the top-k and trace vectors, and the density arrays.
func memoryNeed(p stage.Params, dim int) float64 {
	steps := float64(max(p.Int("steps"), p.Int("bound_steps")))
	width := float64(hessian.LockstepWidth(dim))
	perVector := float64(dim) * 8
	vectors := 4.0
	if p.String("reorthogonalize") == "full" {
		vectors += steps
	}
	need := width * vectors * perVector
	need += steps * steps * 8                                       // Ritz eigenvectors of one tridiagonal
	need += float64(p.Int("top_k")+4) * perVector * 2               // top-k basis and workspace
	need += float64(p.Int("grid")) * float64(p.Int("probes")+4) * 8 // density grid, per probe and summaries
	return need
}

// machineMemory returns this machine's physical memory in bytes, 0 when
// unknown.
func machineMemory() float64 {
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) != nil {
		return 0
	}
	return float64(info.Totalram) * float64(info.Unit)
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", b/(1<<10))
}

func paramNames(params []models.Entry) []string {
	var names []string
	for _, e := range params {
		names = append(names, e.Name)
	}
	return names
}

// plannedParams returns the name, trainable parameters and layers of the
// model a weights input will hold, when its params tell at plan time: a
// native model, or an imported ONNX model (opened here).
func plannedParams(w *stage.Planned) (name string, params []models.Entry, layers []string, ok bool) {
	if om, ok := snapshot.PlannedONNX(w); ok {
		return fmt.Sprintf("the ONNX model %s", filepath.Base(om.Path())), om.Params(), om.Layers(), true
	}
	m, ok := snapshot.PlannedModel(w)
	if !ok {
		return "", nil, nil, false
	}
	return m.Name(), m.Params(), m.Layers(), true
}

func run(ctx context.Context, e *stage.Env) error {
	start := time.Now()
	in, err := readInputs(e)
	if err != nil {
		return err
	}
	defer in.net.release()
	layer := e.Params.String("layer")
	h, width, err := operator(e, in, layer)
	if err != nil {
		return err
	}
	defer h.Close()
	loss, err := h.Loss(ctx)
	if err != nil {
		return err
	}
	e.Logf("layer %s: dimension %d; mean loss %.17g", layer, h.Dim(0), loss)
	stream := StreamSeed(e.Params.Int("seed"), in.weights.Digest, layer)
	req, r, err := estimate(ctx, e, h, width, layer, stream)
	if err != nil {
		return err
	}
	seconds := time.Since(start).Seconds()
	s := summarize(e, in, h.Dim(0), loss, req, r, stream)
	e.Logf("lb %.10g, ub %.10g; %d Hessian-vector products in %.1f s", s.LB, s.UB, s.HVPs, seconds)
	if err := npz.WriteFile(filepath.Join(e.OutDir, summary.SpectrumFile), spectrumArrays(r, req.Density.Steps)); err != nil {
		return err
	}
	return summary.Write(e.OutDir, s)
}

// inputs is what a stage reads: the weights' snapshot, loaded as a network
// in the stage's dtype, and the per-class subset of the data's training
// split.
type inputs struct {
	weights stage.Artifact
	meta    *snapmeta.Meta
	data    datasets.Meta
	subset  *datasets.Split
	net     *network
}

// readInputs reads the stage's inputs and logs what they are.
func readInputs(e *stage.Env) (*inputs, error) {
	p := e.Params
	wa, err := e.Input("weights")
	if err != nil {
		return nil, err
	}
	da, err := e.Input("data")
	if err != nil {
		return nil, err
	}
	in := &inputs{weights: wa}
	if in.meta, err = snapmeta.Read(wa.Dir); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	split, dmeta, err := datasets.LoadSplit(da.Dir, "train")
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	in.data = dmeta
	sub := p.Object("subset")
	perClass, subSeed := sub.Int("per_class"), sub.Int("seed")
	if in.subset, _, err = split.Subset(perClass, uint32(subSeed)); err != nil {
		return nil, fmt.Errorf("%s training split: %w", dmeta.Dataset, err)
	}
	dtype := dtypes.Float32
	if p.String("dtype") == "float64" {
		dtype = dtypes.Float64
	}
	if in.net, err = loadNetwork(wa.Dir, in.meta, dtype, p.String("bn_mode") == "train", in.subset, dmeta); err != nil {
		return nil, err
	}
	for _, n := range in.net.notes {
		e.Logf("%s", n)
	}
	e.Logf("%s (%s) on %d %s training images (%d per class, seed %d), bn_mode %s, %s",
		in.meta.Model, epochText(in.meta.Epoch), in.subset.N, dmeta.Dataset, perClass, subSeed, p.String("bn_mode"), p.String("dtype"))
	return in, nil
}

// operator opens the backend and returns the Hessian of the stage's loss
// with respect to layer on the subset, and how many recurrences advance in
// lockstep.
func operator(e *stage.Env, in *inputs, layer string) (*hessian.ModelHessian, int, error) {
	be, err := backend.Open(e.Backend)
	if err != nil {
		return nil, 0, err
	}
	e.SetRunInfo("backend", backend.Resolve(e.Backend))
	c := in.net.c
	if e.Params.Has("loss") && e.Params.String("loss") == "mse" {
		c.Loss = nn.MeanSquaredError
	}
	target, err := c.Target(layer)
	if err != nil {
		return nil, 0, fmt.Errorf("layer %q: %s has no such parameter (its layers: %s; or full)", layer, in.meta.Model, strings.Join(in.net.layers, ", "))
	}
	data := hessian.Data{X: in.subset.X, Shape: in.subset.ExampleShape(), Y: in.subset.Y}
	// Up to width recurrences advance in lockstep, their products computed
	// by one graph execution that shares the forward and first backward
	// pass. The width changes speed and memory, not results, so it is no
	// param.
	width := hessian.LockstepWidth(target.Dim(c))
	h, err := hessian.NewModelHessian(be, c, data, []hessian.Target{target},
		hessian.ModelHessianOptions{BatchSize: e.Params.Int("batch_size"), VectorsPerPass: width})
	if err != nil {
		return nil, 0, fmt.Errorf("%s on %s: %w", in.meta.Model, in.data.Dataset, err)
	}
	return h, width, nil
}

// estimate runs the estimates the params ask for, every random vector drawn
// from streams seeded by stream, reusing what the stage's prior computed.
func estimate(ctx context.Context, e *stage.Env, h *hessian.ModelHessian, width int, layer string, stream uint64) (hessian.Request, hessian.Result, error) {
	req, err := request(e.Params, stream)
	if err != nil {
		return req, hessian.Result{}, err
	}
	if e.Prior != nil {
		req.Prior, err = readPrior(e.Prior, e.Params)
		if err != nil {
			// A prior that cannot be read costs time, not correctness.
			e.Logf("not reusing %s (%s): %v", e.Prior.Stage, e.Prior.How, err)
			req.Prior = nil
		}
	}
	if req.TopK != nil && req.TopK.K > h.Dim(0) {
		return req, hessian.Result{}, fmt.Errorf("top_k %d exceeds the dimension %d of layer %s", req.TopK.K, h.Dim(0), layer)
	}
	res, err := hessian.Run(ctx, h, []hessian.Request{req}, hessian.RunOptions{
		MaxBatch: width,
		Progress: &named{p: e.Progress, what: "lanczos " + layer},
	})
	if err != nil {
		return req, hessian.Result{}, fmt.Errorf("layer %s: %w", layer, err)
	}
	if req.Prior != nil {
		e.Logf("%s: reused %d of the %d Hessian-vector products from %s", e.Prior.How, reusedProducts(req), res[0].Applications, e.Prior.Stage)
	}
	return req, res[0], nil
}

// summarize builds summary.json's content and logs the top eigenvalues and
// the trace.
func summarize(e *stage.Env, in *inputs, dim int, loss float64, req hessian.Request, r hessian.Result, stream uint64) summary.Summary {
	p := e.Params
	sub := p.Object("subset")
	s := summary.Summary{
		Layer: p.String("layer"), Dim: dim, Model: in.meta.Model, Dataset: in.data.Dataset, Epoch: in.meta.Epoch,
		Loss: loss, HVPs: r.Applications,
		LB: r.Density.LB, UB: r.Density.UB, Probes: req.Density.Probes, Steps: req.Density.Steps,
		DType: p.String("dtype"), BNMode: p.String("bn_mode"),
		Subset:     summary.Subset{PerClass: sub.Int("per_class"), Seed: sub.Int("seed"), N: in.subset.N},
		StreamSeed: fmt.Sprintf("%016x", stream),
	}
	if p.Has("loss") {
		s.LossFunction = p.String("loss")
	}
	if r.TopK != nil {
		s.TopEigenvalues = r.TopK.Values
		s.TopKSteps, s.TopKConverged = r.TopK.Steps, &r.TopK.Converged
		e.Logf("top %d eigenvalues %v, residuals %v, %d steps, converged %v", len(r.TopK.Values), r.TopK.Values, r.TopK.Residuals, r.TopK.Steps, r.TopK.Converged)
	}
	if r.Trace != nil {
		s.Trace = &r.Trace.Estimate
		s.TraceStdErr = json.RawMessage("null")
		if !math.IsNaN(r.Trace.StdErr) {
			s.TraceStdErr, _ = json.Marshal(r.Trace.StdErr)
		}
		e.Logf("trace %.10g ± %.3g (%d probes)", r.Trace.Estimate, r.Trace.StdErr, len(r.Trace.Samples))
	}
	return s
}

// StreamSeed derives the seed of an instance's random streams from its
// seed param, the digest of its weights artifact and its layer: the first
// 8 bytes (big-endian) of SHA-256("lanczos streams\x00" seed "\x00"
// digest "\x00" layer), seed in decimal.
func StreamSeed(seed int, weightsDigest, layer string) uint64 {
	sum := sha256.Sum256([]byte(fmt.Sprintf("lanczos streams\x00%d\x00%s\x00%s", seed, weightsDigest, layer)))
	return binary.BigEndian.Uint64(sum[:8])
}

// request builds the estimates' options from the params, every stream
// seeded by seed.
func request(p stage.Params, seed uint64) (hessian.Request, error) {
	reorth, err := hessian.ParseReorthogonalization(p.String("reorthogonalize"))
	if err != nil {
		return hessian.Request{}, err
	}
	d := hessian.DefaultDensityOptions()
	d.Steps, d.BoundsSteps, d.Points = p.Int("steps"), p.Int("bound_steps"), p.Int("grid")
	d.Kappa, d.Margin, d.Probes = p.Float("kappa"), p.Float("margin"), p.Int("probes")
	d.Reorthogonalize, d.Seed = reorth, seed
	req := hessian.Request{Density: &d}
	if k := p.Int("top_k"); k > 0 {
		req.TopK = &hessian.TopKOptions{K: k, Tol: p.Float("top_k_tol"), Seed: seed}
	}
	if n := p.Int("trace_probes"); n > 0 {
		dist, err := hessian.ParseDistribution(p.String("trace_distribution"))
		if err != nil {
			return hessian.Request{}, err
		}
		req.Trace = &hessian.TraceOptions{Probes: n, Distribution: dist, Seed: seed}
	}
	return req, nil
}

// spectrumArrays lists the arrays of spectrum.npz: the grid and the density
// (the seed's names), the band, each probe's Ritz values and weights
// ([probes, steps]; a run stopped early by a breakdown is padded with NaN
// values of weight 0) and the top eigenvalues.
func spectrumArrays(r hessian.Result, steps int) []npz.Named {
	d := r.Density
	vec := func(name string, v []float64) npz.Named {
		return npz.Named{Name: name, Array: &npz.Array{Shape: []int{len(v)}, Data: v}}
	}
	values := make([]float64, 0, len(d.Probes)*steps)
	weights := make([]float64, 0, len(d.Probes)*steps)
	for _, rz := range d.Probes {
		values = append(values, rz.Values...)
		weights = append(weights, rz.Weights...)
		for range steps - len(rz.Values) {
			values = append(values, math.NaN())
			weights = append(weights, 0)
		}
	}
	out := []npz.Named{
		vec("eigval", d.Grid),
		vec("eigval_density", d.Mean),
		vec("density_std", d.Std),
		{Name: "ritz_values", Array: &npz.Array{Shape: []int{len(d.Probes), steps}, Data: values}},
		{Name: "ritz_weights", Array: &npz.Array{Shape: []int{len(d.Probes), steps}, Data: weights}},
	}
	if d.Bounds != nil {
		out = append(out, vec("bounds_alpha", d.Bounds.Alpha), vec("bounds_beta", d.Bounds.Beta))
	}
	if len(d.Runs) > 0 {
		alpha := make([]float64, 0, len(d.Runs)*steps)
		beta := make([]float64, 0, len(d.Runs)*steps)
		for _, t := range d.Runs {
			alpha, beta = append(alpha, t.Alpha...), append(beta, t.Beta...)
			for range steps - len(t.Alpha) {
				alpha, beta = append(alpha, math.NaN()), append(beta, math.NaN())
			}
		}
		out = append(out,
			npz.Named{Name: "lanczos_alpha", Array: &npz.Array{Shape: []int{len(d.Runs), steps}, Data: alpha}},
			npz.Named{Name: "lanczos_beta", Array: &npz.Array{Shape: []int{len(d.Runs), steps}, Data: beta}})
	}
	if r.TopK != nil {
		out = append(out, vec("top_eigenvalues", r.TopK.Values), vec("top_residuals", r.TopK.Residuals))
	}
	if r.Trace != nil {
		out = append(out, vec("trace_samples", r.Trace.Samples))
	}
	return out
}

// named passes progress on under the stage's own name. The total is the
// number of products hessian.Run knows in advance, or 0 (unknown: a count
// without a bar) when a top-k search takes an open-ended number.
type named struct {
	p    stage.Progress
	what string
}

func (n *named) Start(_ string, total int) { n.p.Start(n.what, total) }
func (n *named) Advance(k int)             { n.p.Advance(k) }
func (n *named) Finish()                   { n.p.Finish() }

// epochText describes a snapshot's epoch for the log.
func epochText(epoch *int) string {
	if epoch == nil {
		return "imported weights"
	}
	return fmt.Sprintf("epoch %d", *epoch)
}
