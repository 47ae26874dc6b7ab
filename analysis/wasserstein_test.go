package analysis

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// sortedMeanAbs is the equal-size formula (1/n) Σ |sort(a)_i − sort(b)_i|.
func sortedMeanAbs(a, b []float64) float64 {
	sa, sb := append([]float64(nil), a...), append([]float64(nil), b...)
	sort.Float64s(sa)
	sort.Float64s(sb)
	var s float64
	for i := range sa {
		s += math.Abs(sa[i] - sb[i])
	}
	return s / float64(len(sa))
}

// replicate repeats every value of a k times: the same empirical distribution.
func replicate(a []float64, k int) []float64 {
	var out []float64
	for _, v := range a {
		for range k {
			out = append(out, v)
		}
	}
	return out
}

func TestSampleW1(t *testing.T) {
	for _, c := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{0}, []float64{1}, 1},
		{[]float64{0, 1}, []float64{0}, 0.5},
		{[]float64{3, 1, 2}, []float64{1, 2, 3}, 0},
		{[]float64{0, 0, 1}, []float64{0, 1, 1}, 1.0 / 3},
	} {
		got, err := SampleW1(c.a, c.b)
		if err != nil || !near(got, c.want, 1e-15) {
			t.Errorf("SampleW1(%v, %v) = %v, %v; want %v", c.a, c.b, got, err, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 20 {
		n, m := 1+rng.IntN(40), 1+rng.IntN(40)
		if trial%2 == 0 {
			m = n
		}
		a, b := make([]float64, n), make([]float64, m)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		for i := range b {
			b[i] = 0.5 + 2*rng.Float64()
		}
		// Replicating to a common size keeps both distributions and makes
		// the sorted-difference formula exact.
		want := sortedMeanAbs(replicate(a, m), replicate(b, n))
		got, err := SampleW1(a, b)
		if err != nil || !near(got, want, 1e-12) {
			t.Errorf("trial %d (n=%d, m=%d): SampleW1 = %v, %v; want %v", trial, n, m, got, err, want)
		}
	}
	if _, err := SampleW1(nil, []float64{1}); err == nil {
		t.Error("empty sample: no error")
	}
	if _, err := SampleW1([]float64{math.Inf(1)}, []float64{1}); err == nil {
		t.Error("infinite value: no error")
	}
}

func TestSeedTransform(t *testing.T) {
	e := math.E
	// Zeros take the smallest positive value 1; logs 0 0 1 2; scaled 0 0 ½ 1;
	// sum 1.5.
	got, err := SeedTransform([]float64{0, 1, e, e * e})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 0, 1.0 / 3, 2.0 / 3}
	for i := range want {
		if !near(got[i], want[i], 1e-15) {
			t.Fatalf("SeedTransform = %v, want %v", got, want)
		}
	}
	for name, p := range map[string][]float64{
		"all zero": {0, 0, 0},
		"constant": {2, 2, 2},
		"NaN":      {1, math.NaN()},
	} {
		if _, err := SeedTransform(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSeedDistance(t *testing.T) {
	e := math.E
	// τ(1, e, e²) = (0, 1/3, 2/3); τ(1, 1, e) = (0, 0, 1).
	// Sorted differences 0, 1/3, 1/3 → mean 2/9.
	got, err := SeedDistance([]float64{1, e, e * e}, []float64{1, 1, e})
	if err != nil || !near(got, 2.0/9, 1e-15) {
		t.Errorf("SeedDistance = %v, %v; want 2/9", got, err)
	}
	// Invariant under scaling a density: τ only sees log-differences.
	p := []float64{0.1, 0.5, 3, 0, 7}
	q := []float64{1, 5, 30, 0, 70}
	got, err = SeedDistance(p, q)
	if err != nil || !near(got, 0, 1e-15) {
		t.Errorf("SeedDistance(p, 10p) = %v, %v; want 0", got, err)
	}
}

// gaussian returns n grid points on [lo, hi] and the N(mu, sigma²) density.
func gaussian(mu, sigma, lo, hi float64, n int) (x, p []float64) {
	x, p = make([]float64, n), make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*float64(i)/float64(n-1)
		z := (x[i] - mu) / sigma
		p[i] = math.Exp(-z*z/2) / (sigma * math.Sqrt(2*math.Pi))
	}
	return x, p
}

// w1Gauss is the closed form W1(N(μ1,σ1²), N(μ2,σ2²)) = E|m + sZ| with
// m = μ1−μ2, s = |σ1−σ2| (the quantile coupling is optimal in one dimension):
// s·√(2/π)·exp(−m²/2s²) + m·(1 − 2Φ(−m/s)).
func w1Gauss(mu1, s1, mu2, s2 float64) float64 {
	m, s := mu1-mu2, math.Abs(s1-s2)
	if s == 0 {
		return math.Abs(m)
	}
	phi := 0.5 * math.Erfc(m/s/math.Sqrt2) // Φ(−m/s)
	return s*math.Sqrt(2/math.Pi)*math.Exp(-m*m/(2*s*s)) + m*(1-2*phi)
}

func TestDensityW1Gaussians(t *testing.T) {
	for _, c := range []struct {
		mu1, s1, mu2, s2 float64
	}{
		{0, 1, 1, 1},      // shift: |μ1 − μ2|
		{-3, 0.5, 4, 0.5}, // disjoint supports
		{0, 1, 0, 2},      // scale: |σ1 − σ2|·√(2/π)
		{1, 1, -0.5, 3},   // both
		{2, 1.5, 2, 1.5},  // identical
	} {
		// Different grids: ±8σ around each mean, different point counts.
		x1, p1 := gaussian(c.mu1, c.s1, c.mu1-8*c.s1, c.mu1+8*c.s1, 1024)
		x2, p2 := gaussian(c.mu2, c.s2, c.mu2-8*c.s2, c.mu2+9*c.s2, 777)
		want := w1Gauss(c.mu1, c.s1, c.mu2, c.s2)
		got, err := DensityW1(x1, p1, x2, p2)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got, want, 1e-3*math.Max(c.s1, c.s2)) {
			t.Errorf("W1(N(%v,%v²), N(%v,%v²)) = %v, want %v", c.mu1, c.s1, c.mu2, c.s2, got, want)
		}
		back, _ := DensityW1(x2, p2, x1, p1)
		if !near(got, back, 1e-12) {
			t.Errorf("not symmetric: %v vs %v", got, back)
		}
	}
}

func TestDensityW1Scale(t *testing.T) {
	// Density values are normalised on their own grid: scaling one changes
	// nothing.
	x, p := gaussian(0, 1, -8, 8, 512)
	q := make([]float64, len(p))
	for i := range p {
		q[i] = 1e6 * p[i]
	}
	got, err := DensityW1(x, p, x, q)
	if err != nil || !near(got, 0, 1e-12) {
		t.Errorf("W1(p, 1e6·p) = %v, %v; want 0", got, err)
	}
}

func TestDensityW1Errors(t *testing.T) {
	x := []float64{0, 1, 2}
	p := []float64{1, 1, 1}
	for name, c := range map[string][2][]float64{
		"length mismatch": {x, {1, 1}},
		"decreasing grid": {{0, 2, 1}, p},
		"no mass":         {x, {0, -1, 0}},
		"one point":       {{0}, {1}},
	} {
		if _, err := DensityW1(c[0], c[1], x, p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
