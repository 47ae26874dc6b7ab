package records

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/lanczos/summary"
)

// FullLayer is the layer name of the full-network Hessian's spectrum.
const FullLayer = "full"

// Spectrum is a spectral density on its eigenvalue grid, with the per-point
// standard deviation over probes (all zeros, or nil when the file has none,
// for a single probe).
type Spectrum struct {
	Grid    []float64
	Density []float64
	Std     []float64
}

// ReadSpectrum reads eigval, eigval_density and, when present, density_std
// from a spectrum.npz and checks that they have one length and finite values
// on an increasing grid.
func ReadSpectrum(path string) (*Spectrum, error) {
	ar, err := npz.ReadFile(path)
	if err != nil {
		return nil, err
	}
	get := func(name string) ([]float64, error) {
		a, err := ar.Get(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return a.Float64s(), nil
	}
	s := &Spectrum{}
	if s.Grid, err = get("eigval"); err != nil {
		return nil, err
	}
	if s.Density, err = get("eigval_density"); err != nil {
		return nil, err
	}
	if _, ok := ar.Arrays["density_std"]; ok {
		if s.Std, err = get("density_std"); err != nil {
			return nil, err
		}
	}
	n := len(s.Grid)
	if n < 2 || len(s.Density) != n || (s.Std != nil && len(s.Std) != n) {
		return nil, fmt.Errorf("%s: eigval has %d values, eigval_density %d, density_std %d; want one length ≥ 2", path, n, len(s.Density), len(s.Std))
	}
	for i := range n {
		if bad(s.Grid[i]) || bad(s.Density[i]) || (s.Std != nil && bad(s.Std[i])) {
			return nil, fmt.Errorf("%s: value %d is not finite", path, i)
		}
		if i > 0 && s.Grid[i] <= s.Grid[i-1] {
			return nil, fmt.Errorf("%s: eigval is not increasing at %d (%g after %g)", path, i, s.Grid[i], s.Grid[i-1])
		}
	}
	return s, nil
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// HasBand reports whether the spectrum has a non-zero standard deviation
// somewhere, i.e. came from more than one probe.
func (s *Spectrum) HasBand() bool {
	for _, v := range s.Std {
		if v != 0 {
			return true
		}
	}
	return false
}

// SpectrumRef locates one spectrum: the artifact, its layer and its epoch.
type SpectrumRef struct {
	Artifact stage.Artifact
	Layer    string
	Epoch    int
}

// Load reads the referenced spectrum.npz.
func (r SpectrumRef) Load() (*Spectrum, error) {
	s, err := ReadSpectrum(filepath.Join(r.Artifact.Dir, summary.SpectrumFile))
	if err != nil {
		return nil, fmt.Errorf("spectrum of %s: %w", r.Artifact.Stage, err)
	}
	return s, nil
}

// SpectraRun is the spectra of one training run: every layer's and the full
// network's spectrum at each epoch, indexed but not loaded.
type SpectraRun struct {
	// Key identifies the run: the lanczos stage's name plus its matrix
	// values other than layer and epoch, e.g. "spectrum" or
	// "spectrum[model=LeNet]".
	Key string
	// Label names the run for people: "Model+Dataset" where both are known,
	// made unique among the runs of one index.
	Label          string
	Model, Dataset string
	// Layers are the layers other than full, in order of first appearance
	// in the inputs, which is the spec's matrix order: list layers from
	// input to output there, and this is depth order.
	Layers []string
	// Epochs are the epochs seen for any layer, increasing.
	Epochs []int
	refs   map[string]map[int]SpectrumRef
}

// Ref returns the spectrum of layer (or FullLayer) at epoch.
func (r *SpectraRun) Ref(layer string, epoch int) (SpectrumRef, bool) {
	ref, ok := r.refs[layer][epoch]
	return ref, ok
}

// HasFull reports whether the run has full-network spectra.
func (r *SpectraRun) HasFull() bool { return len(r.refs[FullLayer]) > 0 }

// Complete checks that the full network and every layer have a spectrum at
// every epoch of the run, naming what is missing.
func (r *SpectraRun) Complete() error {
	var missing []string
	for _, l := range append([]string{FullLayer}, r.Layers...) {
		var eps []string
		for _, e := range r.Epochs {
			if _, ok := r.refs[l][e]; !ok {
				eps = append(eps, fmt.Sprint(e))
			}
		}
		if len(eps) > 0 {
			missing = append(missing, fmt.Sprintf("%s at epoch %s", l, strings.Join(eps, ", ")))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("run %s: no spectrum for %s", r.Label, strings.Join(missing, "; "))
	}
	return nil
}

// IndexSpectra reads the summary.json of each lanczos artifact and groups the
// spectra by run, in order of first appearance. Layer, epoch, model and
// dataset come from summary.json, else from the artifact's matrix values of
// the same names; a spectrum without a layer or an epoch, or two spectra for
// one run, layer and epoch, are errors.
func IndexSpectra(arts []stage.Artifact) ([]*SpectraRun, error) {
	var runs []*SpectraRun
	byKey := map[string]*SpectraRun{}
	for _, a := range arts {
		sum, err := summary.Read(a.Dir)
		if err != nil {
			return nil, fmt.Errorf("lanczos artifact %s: %w", a.Stage, err)
		}
		layer := sum.Layer
		if layer == "" {
			layer = matrixString(a.Matrix, "layer")
		}
		if layer == "" {
			return nil, fmt.Errorf("lanczos artifact %s: summary.json names no layer and the stage has no matrix value \"layer\"", a.Stage)
		}
		var epoch int
		if sum.Epoch != nil {
			epoch = *sum.Epoch
		} else if epoch, err = matrixInt(a.Matrix, "epoch"); err != nil {
			return nil, fmt.Errorf("lanczos artifact %s: summary.json has no epoch and %w", a.Stage, err)
		}
		model, dataset := sum.Model, sum.Dataset
		if model == "" {
			model = matrixString(a.Matrix, "model")
		}
		if dataset == "" {
			dataset = matrixString(a.Matrix, "dataset")
		}
		key := runKey(a)
		run := byKey[key]
		if run == nil {
			run = &SpectraRun{Key: key, Model: model, Dataset: dataset, refs: map[string]map[int]SpectrumRef{}}
			byKey[key] = run
			runs = append(runs, run)
		}
		if run.Model != model || run.Dataset != dataset {
			return nil, fmt.Errorf("lanczos artifact %s: model %q, dataset %q, but other spectra of run %s have %q, %q", a.Stage, model, dataset, key, run.Model, run.Dataset)
		}
		if run.refs[layer] == nil {
			run.refs[layer] = map[int]SpectrumRef{}
			if layer != FullLayer {
				run.Layers = append(run.Layers, layer)
			}
		}
		if prev, dup := run.refs[layer][epoch]; dup {
			return nil, fmt.Errorf("lanczos artifacts %s and %s are both layer %s at epoch %d of run %s", prev.Artifact.Stage, a.Stage, layer, epoch, key)
		}
		run.refs[layer][epoch] = SpectrumRef{Artifact: a, Layer: layer, Epoch: epoch}
	}
	for _, run := range runs {
		seen := map[int]bool{}
		for _, byEpoch := range run.refs {
			for e := range byEpoch {
				if !seen[e] {
					seen[e] = true
					run.Epochs = append(run.Epochs, e)
				}
			}
		}
		sort.Ints(run.Epochs)
	}
	label(runs)
	return runs, nil
}

// runKey is the stage name plus the matrix values other than layer and epoch.
func runKey(a stage.Artifact) string {
	var kv []string
	for k, v := range a.Matrix {
		if k != "layer" && k != "epoch" {
			kv = append(kv, fmt.Sprintf("%s=%v", k, v))
		}
	}
	sort.Strings(kv)
	key := StageName(a.Stage)
	if len(kv) > 0 {
		key += "[" + strings.Join(kv, ",") + "]"
	}
	return key
}

// label names each run "Model+Dataset" (or by its key when either is
// unknown) and appends the key where two runs would share a label.
func label(runs []*SpectraRun) {
	count := map[string]int{}
	for _, r := range runs {
		switch {
		case r.Model != "" && r.Dataset != "":
			r.Label = r.Model + "+" + r.Dataset
		case r.Model != "":
			r.Label = r.Model + " (" + r.Key + ")"
		default:
			r.Label = r.Key
		}
		count[r.Label]++
	}
	for _, r := range runs {
		if count[r.Label] > 1 && r.Label != r.Key {
			r.Label += " (" + r.Key + ")"
		}
	}
}

func matrixInt(m map[string]any, key string) (int, error) {
	v, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("the stage has no matrix value %q", key)
	}
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x == math.Trunc(x) {
			return int(x), nil
		}
	}
	return 0, fmt.Errorf("matrix value %s=%v is not an integer", key, v)
}
