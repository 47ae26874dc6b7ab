package train

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.
)

// Optimizer names.
const (
	NameSGD  = "sgd"
	NameAdam = "adam"
)

// Optimizer is one of PyTorch's optimizers with its hyper-parameters. Its
// update is PyTorch's (torch.optim.SGD and torch.optim.Adam, single-tensor
// path, maximize off, amsgrad off), written as graph ops so that it runs in
// the same graph as the forward and backward passes.
//
// SGD, for each parameter θ with gradient g:
//
//	g ← g + λ·θ                            (WeightDecay λ, coupled)
//	b ← g on the first step, else b ← μ·b + (1−d)·g   (Momentum μ ≠ 0, Dampening d)
//	g ← g + μ·b if Nesterov, else g ← b
//	θ ← θ − lr·g
//
// Adam, at step t = 1, 2, …:
//
//	g ← g + λ·θ
//	m ← m + (1−β₁)·(g − m)                 (torch's lerp_)
//	v ← β₂·v + (1−β₂)·g²
//	θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)
type Optimizer struct {
	// Name is NameSGD or NameAdam.
	Name string
	// LR is the initial learning rate; the schedule scales it per epoch.
	LR float64
	// WeightDecay is λ, added as λ·θ to every gradient (biases and batch
	// norm included), as PyTorch's weight_decay and the seed's -l2.
	WeightDecay float64
	// Momentum, Dampening and Nesterov configure SGD.
	Momentum, Dampening float64
	Nesterov            bool
	// Beta1, Beta2 and Eps configure Adam (PyTorch: 0.9, 0.999, 1e-8).
	Beta1, Beta2, Eps float64
}

// SGD returns PyTorch's SGD with learning rate lr and momentum (0 for plain
// SGD), no dampening, no Nesterov, no weight decay.
func SGD(lr, momentum float64) Optimizer {
	return Optimizer{Name: NameSGD, LR: lr, Momentum: momentum}
}

// Adam returns PyTorch's Adam with learning rate lr and its default betas
// (0.9, 0.999) and eps 1e-8, no weight decay.
func Adam(lr float64) Optimizer {
	return Optimizer{Name: NameAdam, LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Validate checks the hyper-parameters as PyTorch's constructors do.
func (o Optimizer) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("train: optimizer %s: %s", o.Name, fmt.Sprintf(format, args...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(o.LR) || o.LR < 0 {
		return bad("learning rate %v: want a finite number ≥ 0", o.LR)
	}
	if !finite(o.WeightDecay) || o.WeightDecay < 0 {
		return bad("weight decay %v: want a finite number ≥ 0", o.WeightDecay)
	}
	switch o.Name {
	case NameSGD:
		if !finite(o.Momentum) || o.Momentum < 0 {
			return bad("momentum %v: want a finite number ≥ 0", o.Momentum)
		}
		if !finite(o.Dampening) {
			return bad("dampening %v: want a finite number", o.Dampening)
		}
		if o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0) {
			return bad("Nesterov momentum needs momentum > 0 and dampening 0 (have momentum %v, dampening %v)", o.Momentum, o.Dampening)
		}
	case NameAdam:
		if !(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1) {
			return bad("betas (%v, %v): want each in [0, 1)", o.Beta1, o.Beta2)
		}
		if !finite(o.Eps) || o.Eps < 0 {
			return bad("eps %v: want a finite number ≥ 0", o.Eps)
		}
	default:
		return fmt.Errorf("train: unknown optimizer %q (want %s or %s)", o.Name, NameSGD, NameAdam)
	}
	return nil
}

// Slots names the optimizer state kept per parameter, as PyTorch's
// state_dict names it: "momentum_buffer" for SGD with momentum, none for
// plain SGD, "exp_avg" and "exp_avg_sq" for Adam.
func (o Optimizer) Slots() []string {
	switch {
	case o.Name == NameAdam:
		return []string{"exp_avg", "exp_avg_sq"}
	case o.Momentum != 0:
		return []string{"momentum_buffer"}
	}
	return nil
}

// numScalars is the number of per-step scalar inputs of the update.
const numScalars = 2

// scalars returns the per-step scalar inputs of the update for learning rate
// lr and a step that follows done earlier steps: for SGD (lr, s) where s
// scales the gradient added to the momentum buffer (1 on the first step,
// whose buffer starts at g, else 1−dampening); for Adam (lr/(1−β₁ᵗ),
// √(1−β₂ᵗ)) with t = done+1. Powers and quotients are taken in float64 on
// the Go side, as PyTorch does with Python floats.
func (o Optimizer) scalars(lr float64, done int64) [numScalars]float64 {
	if o.Name == NameAdam {
		t := float64(done + 1)
		bc1 := 1 - math.Pow(o.Beta1, t)
		bc2 := 1 - math.Pow(o.Beta2, t)
		return [numScalars]float64{lr / bc1, math.Sqrt(bc2)}
	}
	s := 1 - o.Dampening
	if done == 0 {
		s = 1
	}
	return [numScalars]float64{lr, s}
}

// update builds one optimizer step. params and grads are parallel; state
// holds len(o.Slots()) nodes per parameter, parameter-major (state[i·k+j] is
// slot j of parameter i); scal are the two scalar inputs from scalars. It
// returns the new parameters and the new state in the same layout.
func (o Optimizer) update(params, grads, state []*Node, scal [numScalars]*Node) (newParams, newState []*Node) {
	k := len(o.Slots())
	newParams = make([]*Node, len(params))
	newState = make([]*Node, len(state))
	for i, p := range params {
		g := grads[i]
		if o.WeightDecay != 0 {
			g = Add(g, MulScalar(p, o.WeightDecay))
		}
		switch {
		case o.Name == NameAdam:
			m, v := state[i*k], state[i*k+1]
			m = Add(m, MulScalar(Sub(g, m), 1-o.Beta1))
			v = Add(MulScalar(v, o.Beta2), MulScalar(Mul(g, g), 1-o.Beta2))
			denom := AddScalar(Div(Sqrt(v), scal[1]), o.Eps)
			newParams[i] = Sub(p, Mul(scal[0], Div(m, denom)))
			newState[i*k], newState[i*k+1] = m, v
		case o.Momentum != 0:
			// The buffer starts at zero, so μ·b + 1·g is PyTorch's b ← g on
			// the first step.
			b := Add(MulScalar(state[i], o.Momentum), Mul(scal[1], g))
			if o.Nesterov {
				g = Add(g, MulScalar(b, o.Momentum))
			} else {
				g = b
			}
			newParams[i] = Sub(p, Mul(scal[0], g))
			newState[i] = b
		default:
			newParams[i] = Sub(p, Mul(scal[0], g))
		}
	}
	return newParams, newState
}
