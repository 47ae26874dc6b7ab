// Package nprand reproduces NumPy's legacy random generator
// (numpy.random.RandomState, MT19937) bit for bit, for the few draws the
// study's data pipeline makes: seeding, raw 32-bit outputs, bounded integers,
// permutations and choice without replacement.
//
// The seed code picks its per-class Hessian subset with
// np.random.seed(s); np.random.choice(positions, k, replace=False); matching
// those picks exactly requires the same generator, not just any seeded one.
// The algorithms follow NumPy 1.17+ (numpy/random/mtrand.pyx, legacy seeding
// in _mt19937.pyx, random_interval in distributions.c), whose legacy stream is
// frozen by NumPy's compatibility policy.
package nprand

import "fmt"

const (
	n         = 624
	m         = 397
	matrixA   = 0x9908b0df
	upperMask = 0x80000000
	lowerMask = 0x7fffffff
)

// RandomState is NumPy's legacy MT19937 generator. The zero value is not
// usable; create one with New or NewFromArray. It is not safe for
// concurrent use.
type RandomState struct {
	mt  [n]uint32
	pos int
}

// New returns the generator that np.random.RandomState(seed) (equivalently
// np.random.seed(seed)) creates: MT19937 seeded with init_genrand(seed).
func New(seed uint32) *RandomState {
	r := &RandomState{}
	r.initGenrand(seed)
	return r
}

func (r *RandomState) initGenrand(seed uint32) {
	r.mt[0] = seed
	for i := 1; i < n; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.pos = n
}

// NewFromArray returns the generator that np.random.RandomState(key) creates
// for a 1-d array key of values in [0, 2³²): MT19937 seeded with the reference
// init_by_array. It fails on an empty key, as NumPy does.
func NewFromArray(key []uint32) (*RandomState, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("nprand: seed array must be non-empty")
	}
	r := &RandomState{}
	r.initGenrand(19650218)
	i, j := 1, 0
	k := max(n, len(key))
	for ; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= n {
			r.mt[0] = r.mt[n-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k = n - 1; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= n {
			r.mt[0] = r.mt[n-1]
			i = 1
		}
	}
	r.mt[0] = 0x80000000 // MSB is 1, assuring a non-zero initial array
	r.pos = n
	return r, nil
}

// generate refills the state with the next 624 words (the MT "twist").
func (r *RandomState) generate() {
	var y uint32
	for i := 0; i < n-m; i++ {
		y = (r.mt[i] & upperMask) | (r.mt[i+1] & lowerMask)
		r.mt[i] = r.mt[i+m] ^ (y >> 1) ^ (-(y & 1) & matrixA)
	}
	for i := n - m; i < n-1; i++ {
		y = (r.mt[i] & upperMask) | (r.mt[i+1] & lowerMask)
		r.mt[i] = r.mt[i+m-n] ^ (y >> 1) ^ (-(y & 1) & matrixA)
	}
	y = (r.mt[n-1] & upperMask) | (r.mt[0] & lowerMask)
	r.mt[n-1] = r.mt[m-1] ^ (y >> 1) ^ (-(y & 1) & matrixA)
	r.pos = 0
}

// Uint32 returns the next raw 32-bit output, as
// RandomState(...)._bit_generator.random_raw() does.
func (r *RandomState) Uint32() uint32 {
	if r.pos == n {
		r.generate()
	}
	y := r.mt[r.pos]
	r.pos++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Interval returns a uniform integer in [0, max] by NumPy's random_interval:
// draw 32-bit outputs masked to the smallest all-ones mask ≥ max and reject
// values above max. max must be below 2³² (NumPy switches to 64-bit draws
// beyond, which no use here reaches).
func (r *RandomState) Interval(max uint32) uint32 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := r.Uint32() & mask; v <= max {
			return v
		}
	}
}

// Shuffle permutes x in place as RandomState.shuffle does for a 1-d array:
// for i from len(x)−1 down to 1, swap x[i] with x[Interval(i)].
func (r *RandomState) Shuffle(x []int) {
	for i := len(x) - 1; i >= 1; i-- {
		j := r.Interval(uint32(i))
		x[i], x[j] = x[j], x[i]
	}
}

// Permutation returns RandomState.permutation(count): 0…count−1 shuffled.
func (r *RandomState) Permutation(count int) []int {
	p := make([]int, count)
	for i := range p {
		p[i] = i
	}
	r.Shuffle(p)
	return p
}

// Choice returns RandomState.choice(population, k, replace=False) with
// uniform weights: the first k entries of a permutation of the population's
// positions, mapped to the population, in draw order (not sorted). It fails
// when k exceeds the population, as NumPy does.
func (r *RandomState) Choice(population []int, k int) ([]int, error) {
	if k < 0 || k > len(population) {
		return nil, fmt.Errorf("nprand: cannot take %d samples without replacement from a population of %d", k, len(population))
	}
	p := r.Permutation(len(population))
	out := make([]int, k)
	for i := range out {
		out[i] = population[p[i]]
	}
	return out, nil
}
