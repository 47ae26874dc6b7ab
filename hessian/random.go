package hessian

import (
	"math"
	"math/rand/v2"
)

// Every random vector of this package is drawn from its own PCG stream
// rand.NewPCG(seed, stream), so that a result depends only on the seed and
// on which vector it is, never on the order in which recurrences are run,
// on batching or on grouping. The streams:
const (
	// StreamBounds is the start vector of SpectralDensity's range run.
	StreamBounds uint64 = 0
	// StreamProbe + p is the start vector of SpectralDensity's probe p
	// (0-based).
	StreamProbe uint64 = 1
	// StreamTopK is the start vector of TopEigenvalues (and StreamTopK + r
	// the fresh vector of its r-th restart after a breakdown).
	StreamTopK uint64 = 1 << 62
	// StreamTrace + k is Hutchinson probe k (0-based).
	StreamTrace uint64 = 1 << 63
)

// newRand returns the generator of one stream.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// gaussianUnit fills v with g/‖g‖, g ~ N(0, I) drawn from r.
func gaussianUnit(v []float64, r *rand.Rand) {
	for i := range v {
		v[i] = r.NormFloat64()
	}
	scaleTo(v, 1/math.Sqrt(dot(v, v)), v)
}

// rademacher fills v with independent ±1 entries, each with probability ½,
// from r (64 signs per draw).
func rademacher(v []float64, r *rand.Rand) {
	var bits uint64
	for i := range v {
		if i%64 == 0 {
			bits = r.Uint64()
		}
		v[i] = float64(int(bits&1)*2 - 1)
		bits >>= 1
	}
}

// gaussian fills v with independent N(0, 1) entries from r.
func gaussian(v []float64, r *rand.Rand) {
	for i := range v {
		v[i] = r.NormFloat64()
	}
}
