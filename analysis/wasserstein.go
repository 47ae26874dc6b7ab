package analysis

import (
	"fmt"
	"math"
	"sort"
)

// SampleW1 returns the Wasserstein-1 distance between the empirical
// distributions of two samples of scalars, each value weighted equally (what
// scipy.stats.wasserstein_distance computes without weights). For samples of
// equal size n it equals (1/n) Σ_i |sort(a)_i − sort(b)_i|. It fails on an
// empty sample or a value that is not finite.
func SampleW1(a, b []float64) (float64, error) {
	if len(a) == 0 || len(b) == 0 {
		return 0, fmt.Errorf("wasserstein: empty sample (%d and %d values)", len(a), len(b))
	}
	for _, s := range [][]float64{a, b} {
		for i, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("wasserstein: value %d is %v", i, v)
			}
		}
	}
	sa := append([]float64(nil), a...)
	sb := append([]float64(nil), b...)
	sort.Float64s(sa)
	sort.Float64s(sb)
	// ∫ |F_a − F_b| over the merged support, as scipy does; both CDFs are
	// steps, constant between consecutive distinct values.
	na, nb := float64(len(sa)), float64(len(sb))
	var i, j int
	var dist float64
	x := math.Min(sa[0], sb[0])
	for i < len(sa) || j < len(sb) {
		var next float64
		switch {
		case j >= len(sb) || (i < len(sa) && sa[i] <= sb[j]):
			next = sa[i]
		default:
			next = sb[j]
		}
		dist += math.Abs(float64(i)/na-float64(j)/nb) * (next - x)
		x = next
		for i < len(sa) && sa[i] == next {
			i++
		}
		for j < len(sb) && sb[j] == next {
			j++
		}
	}
	return dist, nil
}

// SeedTransform is the density transform τ of the seed's match_distros
// (SEED-SPEC §6.3): entries that are not positive are replaced by the
// smallest positive entry (the seed adds it to exact zeros; the SLQ density
// has no negative entries, on which the seed would produce NaN), then the
// natural log is taken, the result min–max scaled to [0, 1] and divided by its
// sum. It fails when no entry is positive or all logs are equal, where τ is
// undefined.
func SeedTransform(p []float64) ([]float64, error) {
	minPos := math.Inf(1)
	for i, v := range p {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("density value %d is %v", i, v)
		}
		if v > 0 && v < minPos {
			minPos = v
		}
	}
	if math.IsInf(minPos, 1) {
		return nil, fmt.Errorf("density has no positive value (%d values)", len(p))
	}
	out := make([]float64, len(p))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range p {
		if v <= 0 {
			v = minPos
		}
		out[i] = math.Log(v)
		lo, hi = math.Min(lo, out[i]), math.Max(hi, out[i])
	}
	if hi == lo {
		return nil, fmt.Errorf("density is constant (%d values of %g): its min–max scaling is undefined", len(p), math.Exp(lo))
	}
	var sum float64
	for i := range out {
		out[i] = (out[i] - lo) / (hi - lo)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out, nil
}

// SeedDistance is the seed's layer-versus-full distance d(l, e): the
// Wasserstein-1 distance between τ(full) and τ(layer) treated as two samples
// of scalar values, with no regard to the eigenvalue grid (SEED-SPEC §6.3). It
// compares the value histograms of the two log-densities, not the positions
// of their mass.
func SeedDistance(full, layer []float64) (float64, error) {
	tp, err := SeedTransform(full)
	if err != nil {
		return 0, fmt.Errorf("full density: %w", err)
	}
	tq, err := SeedTransform(layer)
	if err != nil {
		return 0, fmt.Errorf("layer density: %w", err)
	}
	return SampleW1(tp, tq)
}

// DensityW1 returns the Wasserstein-1 distance between two distributions on
// the eigenvalue axis, each given as density values on its own increasing
// grid. Each density is read as piecewise linear between its grid points
// (negative values count as zero) and normalised to unit mass by the trapezoid
// rule; its CDF, interpolated linearly between grid points, is 0 left of the
// grid and 1 right of it. The distance ∫|F − G| dx is then integrated exactly
// over the union of both grids, where F − G is piecewise linear. For two
// Gaussians N(μ₁, σ²) and N(μ₂, σ²) on fine grids it approaches |μ₁ − μ₂|.
func DensityW1(x1, p1, x2, p2 []float64) (float64, error) {
	f, err := newCDF(x1, p1)
	if err != nil {
		return 0, fmt.Errorf("first density: %w", err)
	}
	g, err := newCDF(x2, p2)
	if err != nil {
		return 0, fmt.Errorf("second density: %w", err)
	}
	u := make([]float64, 0, len(x1)+len(x2))
	u = append(append(u, x1...), x2...)
	sort.Float64s(u)
	var dist float64
	prevX, prevD := u[0], f.at(u[0])-g.at(u[0])
	for _, x := range u[1:] {
		if x == prevX {
			continue
		}
		d := f.at(x) - g.at(x)
		h := x - prevX
		if (prevD >= 0) == (d >= 0) || prevD == 0 || d == 0 {
			dist += h * (math.Abs(prevD) + math.Abs(d)) / 2
		} else {
			// The difference crosses zero inside the segment: two triangles.
			dist += h * (prevD*prevD + d*d) / (2 * (math.Abs(prevD) + math.Abs(d)))
		}
		prevX, prevD = x, d
	}
	return dist, nil
}

// cdf is a piecewise linear CDF through (x[i], c[i]).
type cdf struct {
	x, c []float64
}

func newCDF(x, p []float64) (*cdf, error) {
	if len(x) != len(p) {
		return nil, fmt.Errorf("grid has %d points but density %d values", len(x), len(p))
	}
	if len(x) < 2 {
		return nil, fmt.Errorf("grid has %d points, want at least 2", len(x))
	}
	for i := range x {
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) || math.IsNaN(p[i]) || math.IsInf(p[i], 0) {
			return nil, fmt.Errorf("point %d is not finite (grid %v, density %v)", i, x[i], p[i])
		}
		if i > 0 && x[i] <= x[i-1] {
			return nil, fmt.Errorf("grid is not increasing at point %d (%g after %g)", i, x[i], x[i-1])
		}
	}
	c := make([]float64, len(x))
	for i := 1; i < len(x); i++ {
		c[i] = c[i-1] + (x[i]-x[i-1])*(math.Max(p[i-1], 0)+math.Max(p[i], 0))/2
	}
	total := c[len(c)-1]
	if !(total > 0) {
		return nil, fmt.Errorf("density has no mass on its grid [%g, %g]", x[0], x[len(x)-1])
	}
	for i := range c {
		c[i] /= total
	}
	return &cdf{x: x, c: c}, nil
}

// at evaluates the CDF at v.
func (f *cdf) at(v float64) float64 {
	n := len(f.x)
	if v <= f.x[0] {
		return 0
	}
	if v >= f.x[n-1] {
		return 1
	}
	i := sort.SearchFloat64s(f.x, v) // f.x[i-1] < v <= f.x[i]
	if f.x[i] == v {
		return f.c[i]
	}
	t := (v - f.x[i-1]) / (f.x[i] - f.x[i-1])
	return f.c[i-1] + t*(f.c[i]-f.c[i-1])
}
