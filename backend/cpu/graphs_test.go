package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/nn"
)

// projectGraph builds, on backend b, one of the graphs the project runs for
// model name, as the models, hessian and train packages build them:
//
//	forward   eval-mode loss (evaluation, the Lanczos loss)
//	train     train-mode loss and new batch-norm statistics
//	sgd       train-mode gradients of every parameter and an SGD-momentum update
//	hvp       eval-mode Hessian-vector product of all parameters (double backward)
//	htr       train-mode gradient of loss + γ·Hutchinson trace (a third derivative)
//
// It returns the graph's outputs, not yet compiled.
func projectGraph(g *Graph, name, kind string, dt dtypes.DType) []*Node {
	channels := 3
	if name == models.LeNet {
		channels = 1
	}
	m, err := models.New(name, channels, 10)
	if err != nil {
		panic(err)
	}
	var params, bufs []*Node
	for _, e := range m.Params() {
		params = append(params, Parameter(g, e.Name, shapes.Make(dt, e.Shape...)))
	}
	for _, e := range m.Buffers() {
		bufs = append(bufs, Parameter(g, e.Name, shapes.Make(dt, e.Shape...)))
	}
	x := Parameter(g, "x", shapes.Make(dt, 2, channels, models.InputSize, models.InputSize))
	y := Parameter(g, "y", shapes.Make(dtypes.Int32, 2))
	train := kind == "train" || kind == "sgd" || kind == "htr"
	logits, newBufs := m.Forward(params, bufs, x, train)
	loss := nn.CrossEntropy(logits, y)
	out := []*Node{loss, ReduceAllSum(ConvertDType(nn.Correct(logits, y), dt))}
	probe := func(tag string) []*Node {
		var v []*Node
		for i, p := range params {
			v = append(v, Parameter(g, fmt.Sprint(tag, i), p.Shape()))
		}
		return v
	}
	switch kind {
	case "train":
		out = append(out, newBufs...)
	case "sgd", "htr":
		total := loss
		if kind == "htr" {
			g1 := Gradient(loss, params...)
			var trace *Node
			for k := range 2 {
				z := probe(fmt.Sprint("z", k))
				t := innerProducts(z, Gradient(innerProducts(g1, z), params...))
				if trace == nil {
					trace = t
				} else {
					trace = Add(trace, t)
				}
			}
			total = Add(loss, MulScalar(DivScalar(trace, 2), 1e-3))
		}
		lr := Parameter(g, "lr", shapes.Make(dt))
		mom := probe("momentum")
		for i, gr := range Gradient(total, params...) {
			b := Add(MulScalar(mom[i], 0.9), gr)
			out = append(out, Sub(params[i], Mul(lr, b)), b)
		}
		out = append(out, newBufs...)
	case "hvp":
		v := probe("v")
		out = append(out, Gradient(innerProducts(Gradient(loss, params...), v), params...)...)
	}
	return out
}

// innerProducts is Σᵢ⟨a[i], b[i]⟩, summed in order.
func innerProducts(a, b []*Node) *Node {
	var s *Node
	for i := range a {
		t := ReduceAllSum(Mul(a[i], b[i]))
		if s == nil {
			s = t
		} else {
			s = Add(s, t)
		}
	}
	return s
}

// graphArgs returns random inputs for g's parameters: labels below 10 for
// the int32 ones, randTensor values of dtype dt for the others.
func graphArgs(g *Graph, rng *rand.Rand, dt dtypes.DType) []any {
	var args []any
	for h := range g.NumParameters() {
		p := g.GetParameterByHandle(ParameterHandle(h))
		if p.DType() == dtypes.Int32 {
			y := make([]int32, p.Shape().Size())
			for j := range y {
				y[j] = int32(rng.IntN(10))
			}
			args = append(args, tensors.FromFlatDataAndDimensions(y, p.Shape().Dimensions...))
			continue
		}
		args = append(args, randTensor(rng, dt, p.Shape().Dimensions))
	}
	return args
}

// TestProjectGraphOps lists the operations of the project's graphs (forward,
// training step, Hessian-vector product and the third-order HTR step of all
// four models, in both dtypes) and checks that the backend supports each and
// compiles every graph.
func TestProjectGraphOps(t *testing.T) {
	b := testBackends()["cpu"]
	caps := b.Capabilities()
	used := map[string]bool{}
	kinds := []string{"forward", "train", "sgd", "hvp", "htr"}
	for _, name := range models.Names() {
		for _, kind := range kinds {
			for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
				if testing.Short() && (name != models.LeNet || dt == dtypes.Float64) {
					continue
				}
				g := NewGraph(b, fmt.Sprintf("%s-%s-%s", name, kind, dt))
				var outs []*Node
				err := catch(func() { outs = projectGraph(g, name, kind, dt) })
				if err != nil {
					t.Fatalf("%s %s %s: building: %v", name, kind, dt, err)
				}
				for _, n := range g.Nodes() {
					used[n.Type().String()] = true
				}
				t0 := time.Now()
				if err := catch(func() { g.Compile(outs...) }); err != nil {
					t.Errorf("%s %s %s: compiling: %v", name, kind, dt, err)
				}
				t.Logf("%s %s %s: %d nodes, compiled in %v", name, kind, dt, len(g.Nodes()), time.Since(t0))
				g.Finalize()
			}
		}
	}
	var list []string
	for op := range used {
		list = append(list, op)
	}
	sort.Strings(list)
	t.Logf("operations of the project's graphs (%d): %s", len(list), strings.Join(list, " "))
	for _, op := range list {
		ot, err := backends.OpTypeString(op)
		if err != nil {
			t.Errorf("graph node type %s is not a backend operation", op)
			continue
		}
		if !caps.Operations[ot] {
			t.Errorf("operation %s is used by the project's graphs but not supported", op)
		}
	}
	// The list is the one this backend was built for; a change in the models
	// that needs a new operation shows here first.
	for _, op := range []string{"DotGeneral", "Concatenate", "Slice", "ReduceSum", "Where", "BroadcastInDim"} {
		if !slices.Contains(list, op) {
			t.Errorf("expected operation %s among the project's graphs", op)
		}
	}
}

// catch runs f and returns what it panicked with, as GoMLX reports errors
// while a graph is built.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

// TestDeterminism runs a LeNet training step and a Hessian-vector product
// with 1 and 3 workers and twice each: every output must be bit-identical.
func TestDeterminism(t *testing.T) {
	bs := testBackends()
	for _, kind := range []string{"sgd", "hvp"} {
		var ref [][]float64
		for _, cfg := range []string{"cpu:workers=1", "cpu:workers=3", "cpu:workers=3"} {
			b := bs[cfg]
			g := NewGraph(b, kind)
			outs := projectGraphBatch(g, kind, 64)
			g.Compile(outs...)
			res := g.Run(graphArgs(g, rand.New(rand.NewPCG(9, 9)), dtypes.Float32)...)
			var got [][]float64
			for _, r := range res {
				got = append(got, values(r))
			}
			g.Finalize()
			if ref == nil {
				ref = got
				continue
			}
			for i := range got {
				if !sameBits(got[i], ref[i]) {
					t.Errorf("%s: output %d differs between runs or numbers of workers (%s)", kind, i, cfg)
				}
			}
		}
	}
}

// projectGraphBatch is projectGraph for LeNet in float32 with another batch.
func projectGraphBatch(g *Graph, kind string, batch int) []*Node {
	return projectGraphBatchDType(g, kind, batch, dtypes.Float32)
}

// projectGraphBatchDType is projectGraphBatch in dtype dt.
func projectGraphBatchDType(g *Graph, kind string, batch int, dt dtypes.DType) []*Node {
	m, _ := models.New(models.LeNet, 1, 10)
	var params []*Node
	for _, e := range m.Params() {
		params = append(params, Parameter(g, e.Name, shapes.Make(dt, e.Shape...)))
	}
	x := Parameter(g, "x", shapes.Make(dt, batch, 1, 32, 32))
	y := Parameter(g, "y", shapes.Make(dtypes.Int32, batch))
	logits, _ := m.Forward(params, nil, x, kind == "sgd")
	loss := nn.CrossEntropy(logits, y)
	if kind == "forward" {
		return []*Node{loss, logits}
	}
	grads := Gradient(loss, params...)
	if kind == "sgd" {
		return append([]*Node{loss}, grads...)
	}
	vs := make([]*Node, len(grads))
	for i, gr := range grads {
		vs[i] = Parameter(g, fmt.Sprint("v", i), gr.Shape())
	}
	return Gradient(innerProducts(grads, vs), params...)
}

// TestDonation checks that an element-wise update of a donated input is
// computed in place (its buffer becomes the output) and is right.
func TestDonation(t *testing.T) {
	b := testBackends()["cpu"].(*Backend)
	bl := b.Builder("donate")
	shape := shapes.Make(dtypes.Float32, 1000)
	p, _ := bl.Parameter("p", shape, nil)
	g, _ := bl.Parameter("g", shape, nil)
	two, _ := bl.Constant([]float32{2})
	two2, _ := bl.Reshape(two)
	gg, _ := bl.Mul(g, two2)
	upd, _ := bl.Sub(p, gg)
	exe, err := bl.Compile([]backends.Op{upd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pv, gv := make([]float32, 1000), make([]float32, 1000)
	for i := range pv {
		pv[i], gv[i] = float32(i), 1
	}
	pb, _ := b.BufferFromFlatData(0, pv, shape)
	gb, _ := b.BufferFromFlatData(0, gv, shape)
	out, err := exe.Execute([]backends.Buffer{pb, gb}, []bool{true, false}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != pb {
		t.Errorf("the update did not reuse the donated parameter's buffer")
	}
	got := make([]float32, 1000)
	if err := b.BufferToFlatData(out[0], got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != float32(i)-2 {
			t.Fatalf("p - 2g [%d] = %v, want %v", i, v, float32(i)-2)
		}
	}
	// Without donation the input survives.
	pb2, _ := b.BufferFromFlatData(0, pv, shape)
	out, err = exe.Execute([]backends.Buffer{pb2, gb}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] == pb2 {
		t.Error("an input that was not donated was overwritten")
	}
	back := make([]float32, 1000)
	_ = b.BufferToFlatData(pb2, back)
	if back[5] != 5 {
		t.Errorf("input changed to %v", back[5])
	}
}

// TestConstantFolding checks that operations on constants are computed at
// compile time and that the result is right.
func TestConstantFolding(t *testing.T) {
	b := testBackends()["cpu"].(*Backend)
	bl := b.Builder("fold")
	c1, _ := bl.Constant([]float64{1, 2, 3}, 3)
	c2, _ := bl.Constant([]float64{4}, 1)
	c2b, _ := bl.BroadcastInDim(c2, shapes.Make(dtypes.Float64, 3), []int{0})
	sum, _ := bl.Add(c1, c2b)
	e, _ := bl.Exp(sum)
	p, _ := bl.Parameter("p", shapes.Make(dtypes.Float64, 3), nil)
	out, _ := bl.Mul(p, e)
	exe, err := bl.Compile([]backends.Op{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(exe.(*Executable).steps); n != 1 {
		t.Errorf("%d steps, want 1 (the product; exp(c1+c2) folded):\n%s", n, exe.(*Executable).describe())
	}
	pb, _ := b.BufferFromFlatData(0, []float64{1, 1, 2}, shapes.Make(dtypes.Float64, 3))
	res, err := exe.Execute([]backends.Buffer{pb}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, 3)
	_ = b.BufferToFlatData(res[0], got)
	want := []float64{math.Exp(5), math.Exp(6), 2 * math.Exp(7)}
	if !(relErr(got, want) <= 1e-15) {
		t.Errorf("p·exp(c1+c2) = %v, want %v", got, want)
	}
}

// TestFusedIm2col runs a LeNet training step and Hessian-vector product at a
// batch where im2col is fused into the products (fuse.go), in float64, and
// compares them with the pure-Go backend.
func TestFusedIm2col(t *testing.T) {
	bs := testBackends()
	stepTimes = map[string]time.Duration{}
	defer func() { stepTimes = nil }()
	for _, kind := range []string{"sgd", "hvp", "forward"} {
		var outs [2][][]float64
		for i, cfg := range []string{"go:ops_sequential", "cpu"} {
			g := NewGraph(bs[cfg], kind)
			g.Compile(projectGraphBatchDType(g, kind, 64, dtypes.Float64)...)
			for _, r := range g.Run(graphArgs(g, rand.New(rand.NewPCG(5, 5)), dtypes.Float64)...) {
				outs[i] = append(outs[i], values(r))
			}
			g.Finalize()
		}
		for i := range outs[0] {
			if e := relErr(outs[1][i], outs[0][i]); !(e <= 1e-11) {
				t.Errorf("%s output %d: relative error %.3g against the pure-Go backend", kind, i, e)
			}
		}
	}
	var fusedA, fusedB bool
	for k := range stepTimes {
		fusedA = fusedA || strings.Contains(k, "im2col→A")
		fusedB = fusedB || strings.Contains(k, "im2col→B")
	}
	if !fusedA || fusedB != fuseWeightGradients {
		t.Errorf("im2col fused into a convolution: %v, into a weight gradient: %v; want true, %v", fusedA, fusedB, fuseWeightGradients)
	}
}

// TestConcurrentExecutions runs one compiled LeNet step from several
// goroutines at once (each execution has its own arena; they share the
// worker pool): every result must equal the sequential one, bit for bit.
func TestConcurrentExecutions(t *testing.T) {
	b := testBackends()["cpu:workers=3"]
	g := NewGraph(b, "concurrent")
	g.Compile(projectGraphBatch(g, "sgd", 32)...)
	defer g.Finalize()
	rng := rand.New(rand.NewPCG(3, 4))
	var args []any
	for h := range g.NumParameters() {
		p := g.GetParameterByHandle(ParameterHandle(h))
		if p.DType() == dtypes.Int32 {
			args = append(args, tensors.FromFlatDataAndDimensions(make([]int32, p.Shape().Size()), p.Shape().Dimensions...))
			continue
		}
		args = append(args, randTensor(rng, dtypes.Float32, p.Shape().Dimensions))
	}
	want := values(g.Run(args...)[1])
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				got := values(g.Run(args...)[1])
				for i := range got {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						errs <- fmt.Sprintf("value %d: %v, want %v", i, got[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
