package datasets

import (
	"fmt"
	"slices"

	"github.com/hessian-spectra/runner/datasets/nprand"
)

// SubsetIndices picks perClass positions of each label, exactly as the
// seed's get_subset_dataset does (SEED-SPEC §1.3):
//
//	for each label ℓ from the smallest to the largest present, in order:
//	    np.random.seed(seed)                               # reset before every class
//	    pos  = positions i with labels[i] == ℓ, ascending
//	    pick = np.random.choice(pos, perClass, replace=False)
//	         = pos[RandomState(seed).permutation(len(pos))[:perClass]]
//	    append sorted(pick)                                # dataset order within a class
//
// The result is class-ordered (all of the smallest label first) and depends
// only on labels, perClass and seed, so it is the same every epoch. It fails
// when a label in the range has fewer than perClass images.
func SubsetIndices(labels []int32, perClass int, seed uint32) ([]int, error) {
	if perClass < 1 {
		return nil, fmt.Errorf("subset: per_class %d, want at least 1", perClass)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("subset: no images")
	}
	lo, hi := slices.Min(labels), slices.Max(labels)
	byLabel := make([][]int, int(hi-lo)+1)
	for i, l := range labels {
		byLabel[l-lo] = append(byLabel[l-lo], i)
	}
	out := make([]int, 0, perClass*len(byLabel))
	for k, pos := range byLabel {
		pick, err := nprand.New(seed).Choice(pos, perClass)
		if err != nil {
			return nil, fmt.Errorf("subset: class %d has %d images, fewer than per_class %d", int(lo)+k, len(pos), perClass)
		}
		slices.Sort(pick)
		out = append(out, pick...)
	}
	return out, nil
}

// Subset returns the seed's per-class subset of s (see SubsetIndices) and
// the positions in s it was taken from.
func (s *Split) Subset(perClass int, seed uint32) (*Split, []int, error) {
	idx, err := SubsetIndices(s.Y, perClass, seed)
	if err != nil {
		return nil, nil, err
	}
	return s.Take(idx), idx, nil
}
