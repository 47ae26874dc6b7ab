package analysis

import (
	"fmt"
	"math"
	"slices"
)

// Paired compares a method with a baseline run with the same seeds (the
// same initial weights, shuffles and probes), which cancels most of the
// rerun-to-rerun noise that the pooled std of each method carries: per
// seed, the other method's test error minus the baseline's, each averaged
// over the last k epochs, in percentage points; then the mean of those
// differences, their sample standard deviation and the standard error of
// the mean (std/√N).
type Paired struct {
	Seeds  []int64   `json:"seeds"`
	Diffs  []float64 `json:"per_seed"`
	Mean   float64   `json:"mean"`
	Std    float64   `json:"std"`
	StdErr float64   `json:"stderr"`
	N      int       `json:"n"`
}

// PairedTestError compares other with base over the seeds both ran (at
// least two, so that a spread exists), each run's test error averaged over
// its last k epochs.
func PairedTestError(base, other map[int64]Accuracies, k int) (Paired, error) {
	var p Paired
	for s := range other {
		if _, ok := base[s]; ok {
			p.Seeds = append(p.Seeds, s)
		}
	}
	slices.Sort(p.Seeds)
	if len(p.Seeds) < 2 {
		return p, fmt.Errorf("%d seeds shared with the baseline, want at least 2", len(p.Seeds))
	}
	lastErr := func(a Accuracies, seed int64) (float64, error) {
		n := len(a.Test)
		if n < k {
			return 0, fmt.Errorf("seed %d: %d epochs, fewer than the last %d", seed, n, k)
		}
		sum := 0.0
		for _, acc := range a.Test[n-k:] {
			sum += 100 * (1 - acc)
		}
		return sum / float64(k), nil
	}
	for _, s := range p.Seeds {
		b, err := lastErr(base[s], s)
		if err != nil {
			return p, err
		}
		o, err := lastErr(other[s], s)
		if err != nil {
			return p, err
		}
		p.Diffs = append(p.Diffs, o-b)
		p.Mean += o - b
	}
	p.N = len(p.Diffs)
	p.Mean /= float64(p.N)
	ss := 0.0
	for _, d := range p.Diffs {
		ss += (d - p.Mean) * (d - p.Mean)
	}
	p.Std = math.Sqrt(ss / float64(p.N-1))
	p.StdErr = p.Std / math.Sqrt(float64(p.N))
	return p, nil
}
