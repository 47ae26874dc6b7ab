package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
	gshapes "github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/models"
)

// Probe distributions.
const (
	Rademacher = "rademacher"
	Gaussian   = "gaussian"
)

// Keywords of HTR.Params.
const (
	// AllParams selects every trainable tensor (the seed's choice).
	AllParams = "all"
	// WeightParams selects the valid layers: the weight of every conv and
	// linear module (models.Model.Layers).
	WeightParams = "weights"
)

// HTR is the seed's Hessian-trace regularisation (SEED-SPEC §5). On step s
// (0-based within the epoch) of epoch e (0-based) it is applied when
// e ≥ StartEpoch and s mod Freq = 0; the step then minimises
//
//	L_B(θ) + Gamma · (1/K) Σₖ ⟨zₖ, H zₖ⟩,   H = ∇²_S L_B(θ),
//
// where L_B is the mini-batch loss, S the selected parameter tensors, and the
// K = Probes vectors zₖ are drawn over S (Rademacher ±1 or standard normal).
// The second term is the Hutchinson estimate of tr H over S (the diagonal
// block of the Hessian for S); its gradient is a third derivative of L_B.
// Gamma = 0 switches HTR off.
type HTR struct {
	// Gamma is the penalty's coefficient (the seed's -gamma, 1e-3).
	Gamma float64
	// StartEpoch is the first 0-based epoch penalised (the seed's -sp, 15).
	StartEpoch int
	// Freq: steps whose 0-based index within the epoch is a multiple of Freq
	// are penalised (the seed's -freq, 50).
	Freq int
	// Probes is the number of Hutchinson vectors (the seed's -hi, 10).
	Probes int
	// Distribution is Rademacher (the seed's LayerHessians scripts) or
	// Gaussian (its later Regularization scripts).
	Distribution string
	// Params selects the tensors the trace covers: parameter names, or the
	// keywords AllParams and WeightParams; several entries make a union.
	// Empty means AllParams.
	Params []string
}

// SeedHTR returns the seed's default HTR flags: γ 1e-3 from epoch 15, every
// 50th step, 10 Rademacher probes over all parameters.
func SeedHTR() HTR {
	return HTR{Gamma: 1e-3, StartEpoch: 15, Freq: 50, Probes: 10, Distribution: Rademacher, Params: []string{AllParams}}
}

// Enabled reports whether the penalty is on at all.
func (h HTR) Enabled() bool { return h.Gamma != 0 }

// Active reports whether step (0-based within the epoch) of epoch (0-based)
// is penalised.
func (h HTR) Active(epoch, step int) bool {
	return h.Enabled() && epoch >= h.StartEpoch && h.Freq > 0 && step%h.Freq == 0
}

// Validate checks the settings (when HTR is enabled).
func (h HTR) Validate() error {
	if !h.Enabled() {
		return nil
	}
	switch {
	case math.IsNaN(h.Gamma) || math.IsInf(h.Gamma, 0):
		return fmt.Errorf("train: htr gamma %v: want a finite number", h.Gamma)
	case h.StartEpoch < 0:
		return fmt.Errorf("train: htr start_epoch %d: want ≥ 0", h.StartEpoch)
	case h.Freq < 1:
		return fmt.Errorf("train: htr freq %d: want ≥ 1", h.Freq)
	case h.Probes < 1:
		return fmt.Errorf("train: htr probes %d: want ≥ 1", h.Probes)
	case h.Distribution != Rademacher && h.Distribution != Gaussian:
		return fmt.Errorf("train: htr distribution %q: want %s or %s", h.Distribution, Rademacher, Gaussian)
	}
	return nil
}

// Select returns the positions in m.Params() of the tensors Params selects,
// in Params order. Unknown names are an error that lists the valid ones.
func (h HTR) Select(m *models.Model) ([]int, error) {
	entries := m.Params()
	chosen := make([]bool, len(entries))
	sel := h.Params
	if len(sel) == 0 {
		sel = []string{AllParams}
	}
	var unknown []string
	for _, s := range sel {
		switch s {
		case AllParams:
			for i := range chosen {
				chosen[i] = true
			}
		case WeightParams:
			for _, l := range m.Layers() {
				chosen[m.ParamIndex(l)] = true
			}
		default:
			i := m.ParamIndex(s)
			if i < 0 {
				unknown = append(unknown, fmt.Sprintf("%q", s))
				continue
			}
			chosen[i] = true
		}
	}
	if len(unknown) > 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name
		}
		return nil, fmt.Errorf("train: htr params: %s has no parameter %s (want %s, %s or some of: %s)",
			m.Name(), strings.Join(unknown, ", "), AllParams, WeightParams, strings.Join(names, ", "))
	}
	var idx []int
	for i, c := range chosen {
		if c {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

// probeStream is the salt of the probes' random stream, so that no other use
// of the seed draws the same numbers.
const probeStream = 0x4854525f70726f62 // "HTR_prob"

// drawProbes returns the Hutchinson vectors of one penalised step, probe-major
// (out[k·len(shapes)+j] is probe k over tensor j), drawn from a generator
// keyed by (seed, epoch, step) alone, so that the same step gets the same
// probes on every backend and whatever happened before.
func drawProbes(h HTR, seed uint64, epoch, step int, shapes [][]int, dtype dtypes.DType) []*tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed^probeStream, uint64(epoch)<<32|uint64(uint32(step))))
	out := make([]*tensors.Tensor, 0, h.Probes*len(shapes))
	for range h.Probes {
		for _, shape := range shapes {
			t := tensors.FromShape(gshapes.Make(dtype, shape...))
			if dtype == dtypes.Float64 {
				tensors.MustMutableFlatData(t, func(v []float64) { fillProbe(rng, h.Distribution, v) })
			} else {
				tensors.MustMutableFlatData(t, func(v []float32) { fillProbe(rng, h.Distribution, v) })
			}
			out = append(out, t)
		}
	}
	return out
}

// fillProbe fills v with independent draws: ±1 with probability ½ each
// (Rademacher, 64 signs per random word) or standard normal (Gaussian).
func fillProbe[T float32 | float64](rng *rand.Rand, distribution string, v []T) {
	if distribution == Gaussian {
		for i := range v {
			v[i] = T(rng.NormFloat64())
		}
		return
	}
	for i := 0; i < len(v); i += 64 {
		bits := rng.Uint64()
		for j := i; j < min(i+64, len(v)); j++ {
			v[j] = T(1 - 2*int(bits&1))
			bits >>= 1
		}
	}
}

// hutchinson builds (1/K) Σₖ ⟨zₖ, ∇_S⟨∇_S loss, zₖ⟩⟩ for the tensors sel and
// the probes z (probe-major, len(sel) per probe): the Hutchinson estimate of
// the trace of the Hessian block of sel. The graph keeps every derivative, so
// the result can be differentiated again.
func hutchinson(loss *Node, sel []*Node, z []*Node) *Node {
	k := len(z) / len(sel)
	g := Gradient(loss, sel...)
	var sum *Node
	for p := range k {
		zp := z[p*len(sel) : (p+1)*len(sel)]
		hz := Gradient(dot(g, zp), sel...)
		t := dot(zp, hz)
		if sum == nil {
			sum = t
		} else {
			sum = Add(sum, t)
		}
	}
	return DivScalar(sum, float64(k))
}

// dot is Σᵢ⟨aᵢ, bᵢ⟩ over parallel lists of tensors.
func dot(a, b []*Node) *Node {
	var s *Node
	for i := range a {
		t := ReduceAllSum(Mul(a[i], b[i]))
		if s == nil {
			s = t
		} else {
			s = Add(s, t)
		}
	}
	return s
}

// shapesOf returns the PyTorch shapes of the parameters at idx.
func shapesOf(m *models.Model, idx []int) [][]int {
	entries := m.Params()
	out := make([][]int, len(idx))
	for i, j := range idx {
		out[i] = slices.Clone(entries[j].Shape)
	}
	return out
}
