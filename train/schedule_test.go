package train

import "testing"

func TestMultiStepLRBoundaries(t *testing.T) {
	s := MultiStepLR{Milestones: []int{2, 4}, Gamma: 0.1}
	// PyTorch multiplies at each milestone, in float64 at run time (a
	// variable, so that Go does not fold the constants exactly): 0.1, then
	// 0.1·0.1, then ·0.1 again.
	g := 0.1
	want := []float64{g, g, g * g, g * g, g * g * g, g * g * g}
	for e, w := range want {
		if got := s.LR(0.1, e); got != w {
			t.Errorf("epoch %d: lr %v, want %v", e, got, w)
		}
	}
	// The boundary is exactly the milestone: epoch index 1 still has the
	// initial rate, epoch index 2 the decayed one, and in PyTorch's float64
	// arithmetic that is 0.010000000000000002, not 0.01.
	if got := s.LR(0.1, 2); got != 0.010000000000000002 {
		t.Errorf("epoch 2: lr %v, want 0.010000000000000002", got)
	}
	// A repeated milestone applies gamma twice; one at epoch 0 applies from
	// the start (PyTorch's constructor takes the first step).
	dup := MultiStepLR{Milestones: []int{0, 3, 3}, Gamma: 0.5}
	for e, w := range []float64{0.5, 0.5, 0.5, 0.125} {
		if got := dup.LR(1, e); got != w {
			t.Errorf("milestones [0,3,3]: epoch %d: lr %v, want %v", e, got, w)
		}
	}
	if got := (MultiStepLR{Gamma: 0.1}).LR(0.01, 1000); got != 0.01 {
		t.Errorf("no milestones: lr %v, want 0.01", got)
	}
	if err := (MultiStepLR{Milestones: []int{-1}, Gamma: 0.1}).Validate(); err == nil {
		t.Error("negative milestone accepted")
	}
}
