package analysis

import (
	"math"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestPool(t *testing.T) {
	// 1, 2, 3, 4 pooled from two groups: mean 2.5, population variance 1.25.
	s, err := Pool([]float64{1, 2}, []float64{3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 4 || !near(s.Mean, 2.5, 1e-15) || !near(s.Std, math.Sqrt(1.25), 1e-15) {
		t.Errorf("Pool = %+v, want mean 2.5, std √1.25, n 4", s)
	}
	if _, err := Pool(); err == nil {
		t.Error("Pool of nothing: no error")
	}
	if _, err := Pool([]float64{1, math.NaN()}); err == nil {
		t.Error("Pool with NaN: no error")
	}
}

func TestPoolLastK(t *testing.T) {
	// Two reruns of 3 epochs; k = 2 keeps epochs 2 and 3.
	runs := []Accuracies{
		{Train: []float64{0.5, 0.95, 0.97}, Test: []float64{0.4, 0.90, 0.92}},
		{Train: []float64{0.6, 0.99, 0.99}, Test: []float64{0.5, 0.94, 0.96}},
	}
	p, err := PoolLastK(runs, 2)
	if err != nil {
		t.Fatal(err)
	}
	// test acc 0.90 0.92 0.94 0.96: mean 0.93, deviations ±0.01, ±0.03
	// → population std √((9+1+1+9)/4)·0.01 = √5·0.01.
	if !near(p.TestError.Mean, 7, 1e-9) || !near(p.TestError.Std, math.Sqrt(5), 1e-9) {
		t.Errorf("test error = %+v, want 7 ± √5", p.TestError)
	}
	// train acc 0.95 0.97 0.99 0.99: mean 0.975, deviations −.025 −.005 .015 .015
	// → variance (6.25+0.25+2.25+2.25)/4 = 2.75 (in 1e-4).
	if !near(p.TrainError.Mean, 2.5, 1e-9) || !near(p.TrainError.Std, math.Sqrt(2.75), 1e-9) {
		t.Errorf("train error = %+v, want 2.5 ± √2.75", p.TrainError)
	}
	// gaps 5 5 5 3 (points): mean 4.5, deviations .5 .5 .5 −1.5 → variance 0.75.
	if !near(p.Gap.Mean, 4.5, 1e-9) || !near(p.Gap.Std, math.Sqrt(0.75), 1e-9) {
		t.Errorf("gap = %+v, want 4.5 ± √0.75", p.Gap)
	}
	if p.Reruns != 2 || p.K != 2 || p.TestError.N != 4 {
		t.Errorf("reruns %d, k %d, n %d; want 2, 2, 4", p.Reruns, p.K, p.TestError.N)
	}
}

func TestPoolLastKErrors(t *testing.T) {
	for name, c := range map[string]struct {
		runs []Accuracies
		k    int
		want string
	}{
		"too few epochs": {[]Accuracies{{Train: []float64{1}, Test: []float64{1}}}, 2, "fewer than"},
		"ragged":         {[]Accuracies{{Train: []float64{1, 1}, Test: []float64{1}}}, 1, "train accuracies"},
		"no reruns":      {nil, 1, "no reruns"},
		"k zero":         {[]Accuracies{{Train: []float64{1}, Test: []float64{1}}}, 0, "at least 1"},
	} {
		_, err := PoolLastK(c.runs, c.k)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}
