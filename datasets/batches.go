package datasets

import (
	"iter"

	"github.com/hessian-spectra/runner/datasets/nprand"
)

// ShuffleOrder returns the order in which a training epoch visits n samples:
// the permutation numpy.random.RandomState([seed, epoch]).permutation(n)
// gives. It depends only on (n, seed, epoch), so an epoch's order is the same
// whether training starts fresh or resumes from a checkpoint, and numpy
// reproduces it. (PyTorch's DataLoader order cannot be matched: it comes from
// torch's generator, whose state the seed code lets other draws advance.)
func ShuffleOrder(n int, seed uint32, epoch int) []int {
	r, _ := nprand.NewFromArray([]uint32{seed, uint32(epoch)}) // never fails: the key is not empty
	return r.Permutation(n)
}

// Batch is one mini-batch.
type Batch struct {
	// N is the number of samples; the last batch of an epoch may be short.
	N int
	// X holds N images, [N,C,H,W] row-major, copied out of the split.
	X []float32
	// Y holds their labels.
	Y []int32
	// Indices are the samples' positions in the split.
	Indices []int
}

// Batches cuts a split into mini-batches in a fixed order. Every batch holds
// Size samples except the last, which holds the rest (the seed's loaders
// keep the last partial batch).
type Batches struct {
	split *Split
	order []int
	size  int
}

// Shuffled returns the batches of one training epoch, in ShuffleOrder.
func (s *Split) Shuffled(size int, seed uint32, epoch int) *Batches {
	return &Batches{split: s, order: ShuffleOrder(s.N, seed, epoch), size: max(size, 1)}
}

// Sequential returns batches in dataset order, as the seed's test loader
// (and its subset loader) visit samples.
func (s *Split) Sequential(size int) *Batches {
	order := make([]int, s.N)
	for i := range order {
		order[i] = i
	}
	return &Batches{split: s, order: order, size: max(size, 1)}
}

// Len returns the number of batches, ⌈N/size⌉.
func (b *Batches) Len() int { return (len(b.order) + b.size - 1) / b.size }

// Order returns the sample order, shared with b.
func (b *Batches) Order() []int { return b.order }

// Batch returns batch i (0 ≤ i < Len), freshly allocated.
func (b *Batches) Batch(i int) Batch {
	lo := i * b.size
	hi := min(lo+b.size, len(b.order))
	idx := b.order[lo:hi]
	t := b.split.Take(idx)
	return Batch{N: t.N, X: t.X, Y: t.Y, Indices: idx}
}

// All yields the batches in order.
func (b *Batches) All() iter.Seq2[int, Batch] {
	return func(yield func(int, Batch) bool) {
		for i := range b.Len() {
			if !yield(i, b.Batch(i)) {
				return
			}
		}
	}
}
