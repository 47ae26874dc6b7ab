package records

import (
	"encoding/json"
	"fmt"
	"os"
)

// DistanceSummary is the summary.json of an aggregate stage with table
// distances: per run, the layer-versus-full distances of both metrics. The
// plot stage draws the match_distros figures from it.
type DistanceSummary struct {
	Table string `json:"table"`
	Title string `json:"title"`
	// Peak is the rule that chose each run's peak epoch: "min_total",
	// "seed" or "fixed" (with Epoch).
	Peak struct {
		Rule  string `json:"rule"`
		Epoch int    `json:"epoch,omitempty"`
	} `json:"peak"`
	Runs []RunDistances `json:"runs"`
}

// RunDistances holds one run's distances.
type RunDistances struct {
	Label   string `json:"label"`
	Key     string `json:"key"`
	Model   string `json:"model"`
	Dataset string `json:"dataset"`
	// Layers in depth order, their relative depths i/(L−1), and the
	// epochs compared (completed epochs, from 1).
	Layers    []string  `json:"layers"`
	Positions []float64 `json:"positions"`
	Epochs    []int     `json:"epochs"`
	// Seed is the seed's metric (W1 between value histograms of the
	// τ-transformed log-densities); W1 the Wasserstein-1 distance between
	// the densities on the eigenvalue axis.
	Seed MetricDistances `json:"seed_metric"`
	W1   MetricDistances `json:"w1"`
}

// MetricDistances is one metric's distances for one run.
type MetricDistances struct {
	// PerEpoch[l][e] is d(layer l, epoch e).
	PerEpoch [][]float64 `json:"per_epoch"`
	// Total is D(l) = Σ_e d(l, e); TotalNorm is Total / max_l Total.
	Total     []float64 `json:"total"`
	TotalNorm []float64 `json:"total_norm"`
	// EpochTotal is Σ_l d(l, e) per epoch.
	EpochTotal []float64 `json:"epoch_total"`
	// PeakEpoch is e*; AtPeak is d(l, e*) and AtPeakNorm that over its max.
	PeakEpoch  int       `json:"peak_epoch"`
	AtPeak     []float64 `json:"at_peak"`
	AtPeakNorm []float64 `json:"at_peak_norm"`
}

// ReadDistanceSummary reads the summary.json of a distances table and checks
// that every run's arrays match its layers.
func ReadDistanceSummary(path string) (*DistanceSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s DistanceSummary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Table != "distances" {
		return nil, fmt.Errorf("%s: table %q, want distances (is this a distances aggregate?)", path, s.Table)
	}
	for _, r := range s.Runs {
		n := len(r.Layers)
		for _, m := range []MetricDistances{r.Seed, r.W1} {
			if len(r.Positions) != n || len(m.TotalNorm) != n || len(m.AtPeakNorm) != n {
				return nil, fmt.Errorf("%s: run %s has %d layers but %d positions, %d totals, %d peak values", path, r.Label, n, len(r.Positions), len(m.TotalNorm), len(m.AtPeakNorm))
			}
		}
	}
	return &s, nil
}
