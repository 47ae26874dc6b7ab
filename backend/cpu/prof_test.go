package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/internal/cputime"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/nn"
)

// TestProfileSteps prints where the time of a LeNet graph goes, step by step
// (PROFILE=sgd|htr|hvp|hvp:conv1.weight go test -run ProfileSteps; with
// PROFILE_CPU=1 the process CPU time instead of the wall time).
func TestProfileSteps(t *testing.T) {
	what := os.Getenv("PROFILE")
	if what == "" {
		t.Skip()
	}
	b, _ := New("")
	m, _ := models.New(models.LeNet, 1, 10)
	w, _ := m.Init(1, dtypes.Float32)
	np := len(m.Params())
	batch := 256
	if what != "sgd" && what != "htr" && what != "fwd" {
		batch = 100
	}
	exec, err := NewExec(b, func(in []*Node) []*Node {
		params, x, y := in[:np], in[np], in[np+1]
		logits, _ := m.Forward(params, nil, x, what == "sgd" || what == "htr")
		loss := nn.CrossEntropy(logits, y)
		if what == "htr" {
			g := Gradient(loss, params...)
			var trace *Node
			for k := range 10 {
				z := in[np+2+k*np : np+2+(k+1)*np]
				t := innerProducts(z, Gradient(innerProducts(g, z), params...))
				if trace == nil {
					trace = t
				} else {
					trace = Add(trace, t)
				}
			}
			grads := Gradient(Add(loss, MulScalar(trace, 1e-4)), params...)
			out := []*Node{loss}
			for i, p := range params {
				out = append(out, Sub(p, MulScalar(grads[i], 0.01)))
			}
			return out
		}
		if what == "fwd" {
			return []*Node{loss}
		}
		if what == "sgd" {
			grads := Gradient(loss, params...)
			out := []*Node{loss}
			for i, p := range params {
				out = append(out, Sub(p, MulScalar(grads[i], 0.01)))
			}
			return out
		}
		wrt, vs := params, in[np+2:]
		if name, ok := strings.CutPrefix(what, "hvp:"); ok {
			i := m.ParamIndex(name)
			wrt, vs = params[i:i+1], vs[i:i+1]
		}
		return Gradient(innerProducts(Gradient(loss, wrt...), vs), wrt...)
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float32, batch*32*32)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	ys := make([]int32, batch)
	var args []any
	for _, p := range w.Params {
		args = append(args, p)
	}
	args = append(args, tensors.FromFlatDataAndDimensions(xs, batch, 1, 32, 32), tensors.FromFlatDataAndDimensions(ys, batch))
	copies := 1
	if what == "htr" {
		copies = 10
	}
	if what != "sgd" && what != "fwd" {
		for range copies {
			for _, p := range w.Params {
				args = append(args, p)
			}
		}
	}
	exec.MustExec(args...)
	if os.Getenv("PROFILE_CPU") != "" {
		stepClock = cputime.Used
		defer func() { stepClock = func() time.Duration { return time.Duration(time.Now().UnixNano()) } }()
	}
	stepTimes = map[string]time.Duration{}
	defer func() { stepTimes = nil }()
	reps := 5
	if what == "htr" {
		reps = 1
	}
	for range reps {
		exec.MustExec(args...)
	}
	type kv struct {
		k string
		v time.Duration
	}
	var list []kv
	var total time.Duration
	for k, v := range stepTimes {
		list = append(list, kv{k, v})
		total += v
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v })
	fmt.Printf("total %.2f ms per call\n", float64(total.Microseconds())/1e3/float64(reps))
	for _, e := range list[:min(45, len(list))] {
		fmt.Printf("%8.2fms %5.1f%% %s\n", float64(e.v.Microseconds())/1e3/float64(reps), 100*float64(e.v)/float64(total), e.k)
	}
}
