package train

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/nn"
)

// network is what a step needs of a model: models.Model satisfies it, and
// tests use tiny networks of their own.
type network interface {
	Forward(params, buffers []*Node, x *Node, train bool) (logits *Node, newBuffers []*Node)
}

// objective builds the mini-batch loss L_B of net on (x, y) in batch-norm
// mode train, the HTR trace estimate over the parameters at sel when probes z
// are given (nil otherwise), and the gradients of L_B + gamma·trace with
// respect to every parameter. newBufs are the running statistics after the
// batch (unchanged in eval mode).
func objective(net network, params, bufs []*Node, x, y *Node, train bool, sel []int, z []*Node, gamma float64) (loss, trace *Node, grads, newBufs []*Node) {
	logits, newBufs := net.Forward(params, bufs, x, train)
	loss = nn.CrossEntropy(logits, y)
	total := loss
	if len(z) > 0 {
		s := make([]*Node, len(sel))
		for i, j := range sel {
			s[i] = params[j]
		}
		trace = hutchinson(loss, s, z)
		total = Add(loss, MulScalar(trace, gamma))
	}
	grads = Gradient(total, params...)
	return loss, trace, grads, newBufs
}

// stepKind selects one of a run's compiled steps.
type stepKind struct {
	// train is batch norm's mode: batch statistics, running statistics
	// updated (true), or running statistics frozen (false: legacy epochs).
	train bool
	// penalised steps take HTR probes and add the trace penalty.
	penalised bool
}

// stepLayout is the argument and result layout of a compiled step:
//
//	in:  params[np], buffers[nb], state[ns], x, y, scalars[2], probes[nz]
//	out: loss, [trace if penalised], params[np], [buffers[nb] if train], state[ns]
type stepLayout struct {
	np, nb, ns int
}

// stepGraph returns the graph function of one training step of net: the
// objective, its gradients and the optimizer update, in one graph.
func stepGraph(net network, opt Optimizer, l stepLayout, kind stepKind, sel []int, gamma float64) func(in []*Node) []*Node {
	return func(in []*Node) []*Node {
		params := in[:l.np]
		bufs := in[l.np : l.np+l.nb]
		state := in[l.np+l.nb : l.np+l.nb+l.ns]
		rest := in[l.np+l.nb+l.ns:]
		x, y := rest[0], rest[1]
		scal := [numScalars]*Node{rest[2], rest[3]}
		var z []*Node
		if kind.penalised {
			z = rest[2+numScalars:]
		}
		loss, trace, grads, newBufs := objective(net, params, bufs, x, y, kind.train, sel, z, gamma)
		newParams, newState := opt.update(params, grads, state, scal)
		out := []*Node{loss}
		if kind.penalised {
			out = append(out, trace)
		}
		out = append(out, newParams...)
		if kind.train {
			out = append(out, newBufs...)
		}
		return append(out, newState...)
	}
}
