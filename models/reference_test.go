package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// A reference implementation of the seed's networks in plain Go, NCHW, written
// from SEED-SPEC §2 and PyTorch's module semantics, reading parameters by
// their state_dict names. The graph models are checked against it.

type img struct {
	n, c, h, w int
	v          []float64
}

func (a img) at(n, c, i, j int) float64 { return a.v[((n*a.c+c)*a.h+i)*a.w+j] }

type refNet struct {
	p     map[string][]float64
	shape map[string][]int
	train bool
	// newStats collects running_mean/running_var after a train-mode pass.
	newStats map[string][]float64
}

func (r *refNet) conv(x img, name string, stride, pad int) img {
	w, s := r.p[name+".weight"], r.shape[name+".weight"]
	o, k := s[0], s[2]
	b := r.p[name+".bias"]
	ho, wo := (x.h+2*pad-k)/stride+1, (x.w+2*pad-k)/stride+1
	y := img{x.n, o, ho, wo, make([]float64, x.n*o*ho*wo)}
	for n := range x.n {
		for oc := range o {
			plane := y.v[(n*o+oc)*ho*wo : (n*o+oc+1)*ho*wo]
			if b != nil {
				for i := range plane {
					plane[i] = b[oc]
				}
			}
			// y[i,j] += w[oc,c,ki,kj]·x[i·stride+ki−pad, j·stride+kj−pad], zero outside x.
			for c := range x.c {
				for ki := range k {
					for kj := range k {
						wv := w[((oc*x.c+c)*k+ki)*k+kj]
						for i := range ho {
							yy := i*stride + ki - pad
							if yy < 0 || yy >= x.h {
								continue
							}
							row := x.v[((n*x.c+c)*x.h+yy)*x.w : ((n*x.c+c)*x.h+yy+1)*x.w]
							// Valid j: 0 ≤ j·stride+kj−pad < x.w.
							j0, j1 := 0, wo
							for j0 < wo && j0*stride+kj-pad < 0 {
								j0++
							}
							for j1 > j0 && (j1-1)*stride+kj-pad >= x.w {
								j1--
							}
							out := plane[i*wo : (i+1)*wo]
							for j := j0; j < j1; j++ {
								out[j] += wv * row[j*stride+kj-pad]
							}
						}
					}
				}
			}
		}
	}
	return y
}

// bn normalises per channel over (N, H, W).
func (r *refNet) bn(x img, name string) img {
	gamma, beta := r.p[name+".weight"], r.p[name+".bias"]
	rm, rv := r.p[name+".running_mean"], r.p[name+".running_var"]
	y := img{x.n, x.c, x.h, x.w, make([]float64, len(x.v))}
	cnt := float64(x.n * x.h * x.w)
	newMean, newVar := make([]float64, x.c), make([]float64, x.c)
	for c := range x.c {
		mean, variance := rm[c], rv[c]
		if r.train {
			s, sq := 0.0, 0.0
			for n := range x.n {
				for i := range x.h * x.w {
					s += x.v[(n*x.c+c)*x.h*x.w+i]
				}
			}
			mean = s / cnt
			for n := range x.n {
				for i := range x.h * x.w {
					d := x.v[(n*x.c+c)*x.h*x.w+i] - mean
					sq += d * d
				}
			}
			variance = sq / cnt
			newMean[c] = 0.9*rm[c] + 0.1*mean
			newVar[c] = 0.9*rv[c] + 0.1*sq/(cnt-1)
		}
		for n := range x.n {
			for i := range x.h * x.w {
				k := (n*x.c+c)*x.h*x.w + i
				y.v[k] = (x.v[k]-mean)/math.Sqrt(variance+1e-5)*gamma[c] + beta[c]
			}
		}
	}
	if r.train {
		r.newStats[name+".running_mean"], r.newStats[name+".running_var"] = newMean, newVar
	}
	return y
}

func relu(x img) img {
	y := img{x.n, x.c, x.h, x.w, make([]float64, len(x.v))}
	for i, v := range x.v {
		y.v[i] = math.Max(v, 0)
	}
	return y
}

func maxpool(x img) img {
	y := img{x.n, x.c, x.h / 2, x.w / 2, nil}
	for n := range x.n {
		for c := range x.c {
			for i := range y.h {
				for j := range y.w {
					m := math.Inf(-1)
					for a := range 2 {
						for b := range 2 {
							m = math.Max(m, x.at(n, c, 2*i+a, 2*j+b))
						}
					}
					y.v = append(y.v, m)
				}
			}
		}
	}
	return y
}

func add(a, b img) img {
	y := img{a.n, a.c, a.h, a.w, make([]float64, len(a.v))}
	for i := range a.v {
		y.v[i] = a.v[i] + b.v[i]
	}
	return y
}

// asFeatures views x [N, C, H, W] as [N, C·H·W, 1, 1] (PyTorch's flatten).
func asFeatures(x img) img { return img{x.n, x.c * x.h * x.w, 1, 1, x.v} }

func (r *refNet) linear(x img, name string) img {
	w, s := r.p[name+".weight"], r.shape[name+".weight"]
	out, in := s[0], s[1]
	b := r.p[name+".bias"]
	y := img{x.n, out, 1, 1, make([]float64, x.n*out)}
	for n := range x.n {
		for o := range out {
			sum := 0.0
			if b != nil {
				sum = b[o]
			}
			for i := range in {
				sum += x.v[n*in+i] * w[o*in+i]
			}
			y.v[n*out+o] = sum
		}
	}
	return y
}

func (r *refNet) forward(model string, x img) img {
	switch model {
	case LeNet:
		h := maxpool(relu(r.conv(x, "conv1", 1, 0)))
		h = maxpool(relu(r.conv(h, "conv2", 1, 0)))
		h = relu(r.linear(asFeatures(h), "fc1"))
		h = relu(r.linear(h, "fc2"))
		return r.linear(h, "fc3")
	case VGG11, VGG11BN:
		h, idx := x, 0
		for _, v := range vggA {
			if v == 0 {
				h = maxpool(h)
				idx++
				continue
			}
			h = r.conv(h, fmt.Sprintf("features.%d", idx), 1, 1)
			idx++
			if model == VGG11BN {
				h = r.bn(h, fmt.Sprintf("features.%d", idx))
				idx++
			}
			h = relu(h)
			idx++
		}
		h = asFeatures(h)
		h = relu(r.bn(r.linear(h, "classifier.0"), "classifier.1"))
		h = relu(r.bn(r.linear(h, "classifier.3"), "classifier.4"))
		return r.linear(h, "classifier.6")
	case ResNet18:
		h := relu(r.bn(r.conv(x, "conv1", 1, 1), "bn1"))
		for stage := 1; stage <= 4; stage++ {
			for b := range 2 {
				name := fmt.Sprintf("layer%d.%d", stage, b)
				stride := 1
				if stage > 1 && b == 0 {
					stride = 2
				}
				out := relu(r.bn(r.conv(h, name+".conv1", stride, 1), name+".bn1"))
				out = r.bn(r.conv(out, name+".conv2", 1, 1), name+".bn2")
				short := h
				if _, ok := r.p[name+".downsample.0.weight"]; ok {
					short = r.bn(r.conv(h, name+".downsample.0", stride, 0), name+".downsample.1")
				}
				h = relu(add(out, short))
			}
		}
		// AvgPool2d(4, stride 1) on 4×4: one mean per channel.
		p := img{h.n, h.c, 1, 1, make([]float64, h.n*h.c)}
		for n := range h.n {
			for c := range h.c {
				s := 0.0
				for i := range 16 {
					s += h.v[(n*h.c+c)*16+i]
				}
				p.v[n*h.c+c] = s / 16
			}
		}
		return r.linear(p, "fc")
	}
	panic(model)
}

// TestForwardMatchesReference runs every architecture in float64, in train
// and eval mode, against the reference, with random batch-norm parameters and
// statistics so that every tensor matters.
func TestForwardMatchesReference(t *testing.T) {
	for _, c := range []struct {
		model string
		in    int
		n     int
	}{{LeNet, 3, 3}, {VGG11, 1, 2}, {VGG11BN, 3, 2}, {ResNet18, 3, 2}} {
		t.Run(c.model, func(t *testing.T) {
			m := mustNew(t, c.model, c.in, 7)
			w, err := m.Init(5, dtypes.Float64)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(8, 8))
			ref := &refNet{p: map[string][]float64{}, shape: map[string][]int{}, newStats: map[string][]float64{}}
			randomise := func(ts []*tensors.Tensor, entries []Entry) {
				for i, e := range entries {
					v, _ := values(ts[i])
					if e.Kind == Buffer || e.Name[len(e.Name)-4:] == "bias" || len(e.Shape) == 1 {
						for k := range v {
							v[k] = 0.5 + rng.Float64() // γ, β, means, variances: positive, away from 0
						}
						ts[i] = tensors.FromFlatDataAndDimensions(v, e.Shape...)
					}
					ref.p[e.Name], ref.shape[e.Name] = v, e.Shape
				}
			}
			randomise(w.Params, m.Params())
			randomise(w.Buffers, m.Buffers())
			x := img{c.n, c.in, 32, 32, make([]float64, c.n*c.in*32*32)}
			for i := range x.v {
				x.v[i] = rng.NormFloat64()
			}
			xt := tensors.FromFlatDataAndDimensions(x.v, c.n, c.in, 32, 32)
			for _, train := range []bool{false, true} {
				ref.train = train
				want := ref.forward(c.model, x)
				np := len(w.Params)
				args := []any{}
				for _, t := range append(append([]*tensors.Tensor{}, w.Params...), w.Buffers...) {
					args = append(args, t)
				}
				args = append(args, xt)
				e, err := NewExec(backendT(t), func(in []*Node) []*Node {
					logits, nb := m.Forward(in[:np], in[np:len(in)-1], in[len(in)-1], train)
					return append([]*Node{logits}, nb...)
				})
				if err != nil {
					t.Fatal(err)
				}
				out, err := e.Exec(args...)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := values(out[0])
				if d := maxDiff(got, want.v); !(d <= 1e-9*maxAbs(want.v)) {
					t.Errorf("train=%v: logits differ from the reference by %.3g (scale %.3g)", train, d, maxAbs(want.v))
				}
				for i, e := range m.Buffers() {
					gotBuf, _ := values(out[1+i])
					wantBuf := ref.p[e.Name]
					if train {
						wantBuf = ref.newStats[e.Name]
					}
					if d := maxDiff(gotBuf, wantBuf); !(d <= 1e-9*maxAbs(wantBuf)) {
						t.Errorf("train=%v: %s differs from the reference by %.3g", train, e.Name, d)
					}
				}
			}
		})
	}
}

func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func maxAbs(a []float64) float64 {
	m := 0.0
	for _, v := range a {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
