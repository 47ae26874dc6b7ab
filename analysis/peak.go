package analysis

import (
	"fmt"
	"math"
	"strings"
)

// Distances is one metric of one run: D[l][e] is the distance between layer
// Layers[l]'s density and the full-network density at epoch Epochs[e]. Layers
// are in depth order; epochs increase and count completed epochs (1 = after
// the first).
type Distances struct {
	Layers []string
	Epochs []int
	D      [][]float64
}

// check reports a Distances whose shape does not match its labels.
func (d *Distances) check() error {
	if len(d.Layers) == 0 || len(d.Epochs) == 0 {
		return fmt.Errorf("distances: %d layers and %d epochs, want at least one of each", len(d.Layers), len(d.Epochs))
	}
	if len(d.D) != len(d.Layers) {
		return fmt.Errorf("distances: %d rows for %d layers", len(d.D), len(d.Layers))
	}
	for l, row := range d.D {
		if len(row) != len(d.Epochs) {
			return fmt.Errorf("distances: layer %s has %d values for %d epochs", d.Layers[l], len(row), len(d.Epochs))
		}
	}
	return nil
}

// LayerTotals returns D(l) = Σ_e d(l, e) for each layer, the seed's
// "throughout training" distance.
func (d *Distances) LayerTotals() []float64 {
	out := make([]float64, len(d.D))
	for l, row := range d.D {
		for _, v := range row {
			out[l] += v
		}
	}
	return out
}

// EpochTotals returns Σ_l d(l, e) for each epoch, the per-epoch total the
// seed computes but never uses.
func (d *Distances) EpochTotals() []float64 {
	out := make([]float64, len(d.Epochs))
	for _, row := range d.D {
		for e, v := range row {
			out[e] += v
		}
	}
	return out
}

// AtEpoch returns d(l, epoch) for each layer.
func (d *Distances) AtEpoch(epoch int) ([]float64, error) {
	for e, ep := range d.Epochs {
		if ep == epoch {
			out := make([]float64, len(d.D))
			for l := range d.D {
				out[l] = d.D[l][e]
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("no distances at epoch %d (have epochs %d–%d)", epoch, d.Epochs[0], d.Epochs[len(d.Epochs)-1])
}

// Normalize returns v divided by its largest value, as the seed's figures
// plot distances. When the largest value is not positive (all distances
// zero), it returns zeros.
func Normalize(v []float64) []float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	out := make([]float64, len(v))
	if !(m > 0) {
		return out
	}
	for i, x := range v {
		out[i] = x / m
	}
	return out
}

// Positions returns the relative depth i/(n−1) of each of n layers, the x
// axis of the seed's match_distros figures (0 for a single layer).
func Positions(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		if n > 1 {
			out[i] = float64(i) / float64(n-1)
		}
	}
	return out
}

// Peak-epoch rules, the values of PeakRule.Rule.
const (
	// PeakMinTotal picks the epoch whose total distance over layers is
	// smallest (the earliest on ties): the argmin of the seed's unused
	// per-epoch total, which its name for the hard-coded epochs,
	// min_dist_epoch, suggests.
	PeakMinTotal = "min_total"
	// PeakSeed uses the seed's hard-coded epoch for the run's model and
	// dataset (see SeedPeakEpoch).
	PeakSeed = "seed"
	// PeakFixed uses PeakRule.Epoch for every run.
	PeakFixed = "fixed"
)

// PeakRule says how the peak epoch e* of a run is chosen.
type PeakRule struct {
	// Rule is PeakMinTotal, PeakSeed or PeakFixed.
	Rule string
	// Epoch is the epoch PeakFixed uses (completed epochs, from 1).
	Epoch int
}

// Pick returns the peak epoch of a run whose distances are d. model and
// dataset name the run for PeakSeed. The epoch returned is one of d.Epochs.
func (r PeakRule) Pick(d *Distances, model, dataset string) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	var e int
	switch r.Rule {
	case PeakMinTotal:
		tot := d.EpochTotals()
		best := 0
		for i, v := range tot {
			if v < tot[best] {
				best = i
			}
		}
		return d.Epochs[best], nil
	case PeakSeed:
		if model == "" || dataset == "" {
			return 0, fmt.Errorf("the seed's peak epochs are per model and dataset, and this run's are not both known (model %q, dataset %q)", model, dataset)
		}
		var ok bool
		if e, ok = SeedPeakEpoch(model, dataset); !ok {
			return 0, fmt.Errorf("the seed has no peak epoch for %s+%s (it has LeNet, VGG11_bn and ResNet18 on MNIST, FashionMNIST, SVHN and CIFAR10)", model, dataset)
		}
	case PeakFixed:
		e = r.Epoch
	default:
		return 0, fmt.Errorf("unknown peak rule %q (want %s, %s or %s)", r.Rule, PeakMinTotal, PeakSeed, PeakFixed)
	}
	if _, err := d.AtEpoch(e); err != nil {
		return 0, fmt.Errorf("peak rule %s: %w", r.Rule, err)
	}
	return e, nil
}

// seedPeak holds the seed's hard-coded peak epochs (SEED-SPEC §6.3), 0-based
// as the seed writes them: epoch e there describes the weights after e+1
// epochs.
var seedPeak = map[string]int{
	"lenet+fashionmnist":    33,
	"lenet+mnist":           18,
	"lenet+svhn":            20,
	"lenet+cifar10":         44,
	"vgg11_bn+mnist":        21,
	"vgg11_bn+fashionmnist": 6,
	"vgg11_bn+svhn":         28,
	"vgg11_bn+cifar10":      19,
	"resnet18+mnist":        19,
	"resnet18+fashionmnist": 25,
	"resnet18+svhn":         11,
	"resnet18+cifar10":      26,
}

// SeedPeakEpoch returns the seed's hard-coded peak epoch for a model and
// dataset (names compared without regard to case), converted to this
// runner's count of completed epochs: the seed's 0-based epoch e becomes
// e+1. It reports false for a pair the seed does not list.
func SeedPeakEpoch(model, dataset string) (int, bool) {
	e, ok := seedPeak[strings.ToLower(model+"+"+dataset)]
	if !ok {
		return 0, false
	}
	return e + 1, true
}
