package models

import (
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/nn"
)

// arch is an architecture under construction: its state_dict entries in
// registration order, its valid layers, and its forward function. The
// constructors in lenet.go, vgg.go and resnet.go read like the seed's module
// definitions, one module a line.
type arch struct {
	state   []Entry
	layers  []string
	nParams int // trainable entries so far
	nBufs   int // buffer entries so far
	forward func(f *pass, x *Node) *Node
}

// param registers a trainable entry and returns its index in Params.
func (a *arch) param(name string, init initRule, shape ...int) int {
	a.state = append(a.state, Entry{Name: name, Shape: shape, Kind: Param, init: init})
	a.nParams++
	return a.nParams - 1
}

// buffer registers a running statistic and returns its index in Buffers.
func (a *arch) buffer(name string, init initRule, shape ...int) int {
	a.state = append(a.state, Entry{Name: name, Shape: shape, Kind: Buffer, init: init})
	a.nBufs++
	return a.nBufs - 1
}

// conv is a Conv2d module: indices of its weight and bias (-1: none).
type conv struct {
	w, b            int
	stride, padding int
}

// newConv registers PyTorch's Conv2d(in, out, k, stride, padding, bias) as
// module name, with the given weight initialisation; a bias, if any, is
// initialised by biasInit.
func (a *arch) newConv(name string, in, out, k, stride, padding int, bias bool, wInit, biasInit initRule) conv {
	c := conv{w: a.param(name+".weight", wInit, out, in, k, k), b: -1, stride: stride, padding: padding}
	a.layers = append(a.layers, name+".weight")
	if bias {
		c.b = a.param(name+".bias", biasInit, out)
	}
	return c
}

// linear is a Linear module.
type linear struct{ w, b int }

// newLinear registers PyTorch's Linear(in, out, bias) as module name.
func (a *arch) newLinear(name string, in, out int, bias bool, wInit, biasInit initRule) linear {
	l := linear{w: a.param(name+".weight", wInit, out, in), b: -1}
	a.layers = append(a.layers, name+".weight")
	if bias {
		l.b = a.param(name+".bias", biasInit, out)
	}
	return l
}

// batchNorm is a BatchNorm1d/2d module: indices of γ, β in Params and of the
// running mean and variance in Buffers.
type batchNorm struct{ gamma, beta, mean, variance int }

// newBatchNorm registers a BatchNorm over c channels with γ=1, β=0, running
// mean 0, variance 1, and its num_batches_tracked counter.
func (a *arch) newBatchNorm(name string, c int) batchNorm {
	bn := batchNorm{
		gamma:    a.param(name+".weight", constant(1), c),
		beta:     a.param(name+".bias", constant(0), c),
		mean:     a.buffer(name+".running_mean", constant(0), c),
		variance: a.buffer(name+".running_var", constant(1), c),
	}
	a.state = append(a.state, Entry{Name: name + ".num_batches_tracked", Kind: Counter})
	return bn
}

// PyTorch's default initialisation of Conv2d and Linear, kaiming_uniform with
// a = √5, is U(±1/√fan_in) for the weight, and the bias is U(±1/√fan_in) too.
func torchDefault(fanIn int) initRule { return uniform(1 / math.Sqrt(float64(fanIn))) }

// The seed's VGG/ResNet conv initialisation: N(0, 2/(k·k·out)).
func convNormal(k, out int) initRule { return normal(math.Sqrt(2 / float64(k*k*out))) }

// pass is one forward pass being built: the parameter and buffer nodes, the
// mode, and the running statistics updated so far.
type pass struct {
	params, buffers []*Node
	train           bool
	newBuffers      []*Node
}

// conv applies a Conv2d to NHWC x.
func (f *pass) conv(x *Node, c conv) *Node {
	var b *Node
	if c.b >= 0 {
		b = f.params[c.b]
	}
	return nn.Conv2D(x, f.params[c.w], b, c.stride, c.padding)
}

// linear applies a Linear to x [N, in]; a non-nil weight replaces the module's
// own (LeNet's fc1 reorders its columns for NHWC activations).
func (f *pass) linear(x *Node, l linear, weight *Node) *Node {
	if weight == nil {
		weight = f.params[l.w]
	}
	var b *Node
	if l.b >= 0 {
		b = f.params[l.b]
	}
	return nn.Linear(x, weight, b)
}

// bn applies a BatchNorm and records its updated running statistics.
func (f *pass) bn(x *Node, bn batchNorm) *Node {
	y, mean, variance := nn.BatchNorm(x, f.params[bn.gamma], f.params[bn.beta],
		f.buffers[bn.mean], f.buffers[bn.variance], f.train, nn.BNMomentum, nn.BNEpsilon)
	f.newBuffers[bn.mean] = mean
	f.newBuffers[bn.variance] = variance
	return y
}
