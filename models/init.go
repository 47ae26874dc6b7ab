package models

import (
	"math"
	"math/rand/v2"
)

// initRule is the distribution of an entry's initial values.
type initRule struct {
	kind  int // ruleConstant, ruleUniform, ruleNormal
	value float64
}

const (
	ruleConstant = iota
	ruleUniform
	ruleNormal
)

func constant(c float64) initRule    { return initRule{ruleConstant, c} }
func uniform(bound float64) initRule { return initRule{ruleUniform, bound} }
func normal(std float64) initRule    { return initRule{ruleNormal, std} }

// initStream is the PCG stream of the initialisation RNG; the seed picks the
// state. Changing either changes every initialisation.
const initStream = 0x6d6f64656c73 // "models"

// sampler draws the seeded initial values. It uses only PCG's 64-bit outputs
// and its own transforms (no math/rand distribution code), so the values are
// the same on every platform and Go version.
type sampler struct {
	rng   *rand.Rand
	spare float64
	has   bool
}

func newSampler(seed uint64) *sampler {
	return &sampler{rng: rand.New(rand.NewPCG(seed, initStream))}
}

// unit returns a uniform value in [0, 1) with 53 random bits.
func (s *sampler) unit() float64 {
	return float64(s.rng.Uint64()>>11) / (1 << 53)
}

// normal returns a standard normal value (Marsaglia's polar method, which
// yields pairs).
func (s *sampler) normal() float64 {
	if s.has {
		s.has = false
		return s.spare
	}
	for {
		u, v := 2*s.unit()-1, 2*s.unit()-1
		q := u*u + v*v
		if q == 0 || q >= 1 {
			continue
		}
		f := math.Sqrt(-2 * math.Log(q) / q)
		s.spare, s.has = v*f, true
		return u * f
	}
}

// fill writes n values drawn by rule.
func (s *sampler) fill(rule initRule, out []float64) {
	for i := range out {
		switch rule.kind {
		case ruleConstant:
			out[i] = rule.value
		case ruleUniform:
			out[i] = (2*s.unit() - 1) * rule.value
		case ruleNormal:
			out[i] = s.normal() * rule.value
		}
	}
}
