package train

import (
	"fmt"
	"math"
)

// MultiStepLR is PyTorch's MultiStepLR stepped once per epoch: the learning
// rate of epoch e (0-based) is the initial rate multiplied by Gamma once for
// every milestone m ≤ e. A milestone listed twice counts twice, as in
// PyTorch, whose milestones are a Counter.
type MultiStepLR struct {
	// Milestones are 0-based epoch indices; the empty list keeps the rate
	// constant.
	Milestones []int
	// Gamma is the factor applied at each milestone (PyTorch's default 0.1).
	Gamma float64
}

// Validate checks that milestones are ≥ 0 and Gamma is finite and ≥ 0.
func (s MultiStepLR) Validate() error {
	for _, m := range s.Milestones {
		if m < 0 {
			return fmt.Errorf("train: milestone %d: want epoch indices ≥ 0", m)
		}
	}
	if math.IsNaN(s.Gamma) || math.IsInf(s.Gamma, 0) || s.Gamma < 0 {
		return fmt.Errorf("train: lr gamma %v: want a finite number ≥ 0", s.Gamma)
	}
	return nil
}

// LR returns the learning rate of epoch (0-based) for initial rate lr0.
//
// It multiplies as PyTorch's scheduler does, one epoch at a time
// (lr ← lr·γ^count(epoch) at each epoch holding milestones), rather than
// lr0·γ^k in one power, so that the float64 values agree with PyTorch's to
// the last bit: 0.1 then 0.1·0.1 = 0.010000000000000002, not 0.01.
func (s MultiStepLR) LR(lr0 float64, epoch int) float64 {
	lr := lr0
	for e := 0; e <= epoch; e++ {
		c := 0
		for _, m := range s.Milestones {
			if m == e {
				c++
			}
		}
		if c > 0 {
			lr *= math.Pow(s.Gamma, float64(c))
		}
	}
	return lr
}
