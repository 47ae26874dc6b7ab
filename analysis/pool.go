// Package analysis computes the numbers behind the runner's tables and
// comparisons: statistics pooled over reruns, distances between layer and
// full-network spectral densities, and the rule that picks a peak epoch.
package analysis

import (
	"fmt"
	"math"
)

// Stat is a mean and a population standard deviation over N values.
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	N    int     `json:"n"`
}

// Pool returns the mean and population standard deviation (divisor N, as
// numpy's default) of all values of all slices taken together. It fails when
// there are no values or a value is not finite.
func Pool(groups ...[]float64) (Stat, error) {
	var n int
	var sum float64
	for gi, g := range groups {
		for i, v := range g {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return Stat{}, fmt.Errorf("pool: value %d of group %d is %v", i, gi, v)
			}
			sum += v
			n++
		}
	}
	if n == 0 {
		return Stat{}, fmt.Errorf("pool: no values")
	}
	mean := sum / float64(n)
	var ss float64
	for _, g := range groups {
		for _, v := range g {
			d := v - mean
			ss += d * d
		}
	}
	return Stat{Mean: mean, Std: math.Sqrt(ss / float64(n)), N: n}, nil
}

// Accuracies is one rerun's per-epoch accuracies, fractions in [0, 1], epoch
// by epoch from the first.
type Accuracies struct {
	Train []float64
	Test  []float64
}

// Penalization summarises reruns of one training method as the seed's
// plot_penalization does (SEED-SPEC §6.4): the last K epochs of every rerun
// are pooled, and mean and population std are taken over all reruns×K values.
// Errors and the gap are in percent (percentage points for the gap).
type Penalization struct {
	// TestError is 100·(1 − test accuracy).
	TestError Stat `json:"test_error"`
	// TrainError is 100·(1 − train accuracy).
	TrainError Stat `json:"train_error"`
	// Gap is 100·(train accuracy − test accuracy), the generalisation gap.
	Gap Stat `json:"gap"`
	// Reruns is the number of reruns pooled; K the epochs kept from each.
	Reruns int `json:"reruns"`
	K      int `json:"last_k"`
}

// PoolLastK pools the last k epochs of every rerun. Every rerun must have at
// least k epochs and as many train as test accuracies.
func PoolLastK(runs []Accuracies, k int) (Penalization, error) {
	if k < 1 {
		return Penalization{}, fmt.Errorf("last k = %d, want at least 1", k)
	}
	if len(runs) == 0 {
		return Penalization{}, fmt.Errorf("no reruns to pool")
	}
	var trainErr, testErr, gap [][]float64
	for r, run := range runs {
		if len(run.Train) != len(run.Test) {
			return Penalization{}, fmt.Errorf("rerun %d: %d train accuracies but %d test accuracies", r, len(run.Train), len(run.Test))
		}
		n := len(run.Train)
		if n < k {
			return Penalization{}, fmt.Errorf("rerun %d has %d epochs, fewer than the last %d to pool", r, n, k)
		}
		tr, te, gp := make([]float64, k), make([]float64, k), make([]float64, k)
		for i := 0; i < k; i++ {
			a, b := run.Train[n-k+i], run.Test[n-k+i]
			tr[i] = 100 * (1 - a)
			te[i] = 100 * (1 - b)
			gp[i] = 100 * (a - b)
		}
		trainErr, testErr, gap = append(trainErr, tr), append(testErr, te), append(gap, gp)
	}
	var p Penalization
	var err error
	if p.TestError, err = Pool(testErr...); err != nil {
		return Penalization{}, fmt.Errorf("test error: %w", err)
	}
	if p.TrainError, err = Pool(trainErr...); err != nil {
		return Penalization{}, fmt.Errorf("train error: %w", err)
	}
	if p.Gap, err = Pool(gap...); err != nil {
		return Penalization{}, fmt.Errorf("gap: %w", err)
	}
	p.Reruns, p.K = len(runs), k
	return p, nil
}
