package analysis

import (
	"math"
	"strings"
	"testing"
)

func TestPairedTestError(t *testing.T) {
	// Seed 0: baseline test acc .90 .92 (error 9 on average), other .95 .95
	// (5): −4. Seed 1: baseline .94 .96 (5), other .95 .95 (5): 0. Seed 2 is
	// the baseline's alone. Mean −2, sample std √8, stderr √8/√2 = 2.
	base := map[int64]Accuracies{
		0: {Train: []float64{0, 0, 0}, Test: []float64{0.1, 0.90, 0.92}},
		1: {Train: []float64{0, 0, 0}, Test: []float64{0.1, 0.94, 0.96}},
		2: {Train: []float64{0, 0, 0}, Test: []float64{0.1, 0.5, 0.5}},
	}
	other := map[int64]Accuracies{
		0: {Train: []float64{0, 0, 0}, Test: []float64{0.1, 0.95, 0.95}},
		1: {Train: []float64{0, 0, 0}, Test: []float64{0.1, 0.95, 0.95}},
	}
	p, err := PairedTestError(base, other, 2)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if p.N != 2 || len(p.Seeds) != 2 || p.Seeds[0] != 0 || !near(p.Diffs[0], -4) || !near(p.Diffs[1], 0) ||
		!near(p.Mean, -2) || !near(p.Std, math.Sqrt(8)) || !near(p.StdErr, 2) {
		t.Errorf("paired = %+v", p)
	}
	if _, err := PairedTestError(base, map[int64]Accuracies{0: other[0]}, 2); err == nil || !strings.Contains(err.Error(), "1 seeds shared") {
		t.Errorf("one shared seed: %v", err)
	}
	if _, err := PairedTestError(base, other, 4); err == nil || !strings.Contains(err.Error(), "fewer than the last 4") {
		t.Errorf("too few epochs: %v", err)
	}
}
