package hessian

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// batchSpectral is a spectral operator that also applies in batches and
// counts its calls.
type batchSpectral struct {
	*spectral
	batches, vectors int
}

func (b *batchSpectral) ApplyBatch(ctx context.Context, dst, src [][]float64) error {
	b.batches++
	b.vectors += len(src)
	for k := range src {
		if err := b.spectral.Apply(ctx, dst[k], src[k]); err != nil {
			return err
		}
	}
	return nil
}

// lockstepGroup is a Group of its own: it records each round.
type lockstepGroup struct {
	ops    []*spectral
	rounds int
	sizes  []int
}

func (g *lockstepGroup) Len() int      { return len(g.ops) }
func (g *lockstepGroup) Dim(i int) int { return g.ops[i].Dim() }
func (g *lockstepGroup) ApplyGroup(ctx context.Context, which []int, dst, src [][]float64) error {
	g.rounds++
	g.sizes = append(g.sizes, len(which))
	for k, i := range which {
		if err := g.ops[i].Apply(ctx, dst[k], src[k]); err != nil {
			return err
		}
	}
	return nil
}

// requests: a density with 3 probes on op 0, a top-k and a trace on op 1,
// everything on op 2.
func testRequests() []Request {
	d := DefaultDensityOptions()
	d.Probes, d.Seed = 3, 8
	tk := TopKOptions{K: 3, Tol: 1e-8, Seed: 8}
	tr := TraceOptions{Probes: 5, Seed: 8}
	return []Request{{Density: &d}, {TopK: &tk, Trace: &tr}, {Density: &d, TopK: &tk, Trace: &tr}}
}

func testOps() []*spectral {
	return []*spectral{
		newSpectral(hessianLike(300, 1), 3, 1),
		newSpectral(twoClusters(150), 3, 2),
		newSpectral(uniformSpectrum(500, -1, 2), 3, 3),
	}
}

// Lockstep is a pure schedule: results are bit-identical to each operator
// run alone, whatever the batching, grouping or order of operators.
func TestRunResultsIndependentOfSchedule(t *testing.T) {
	ctx := context.Background()
	reqs := testRequests()
	// Reference: each estimate alone, through the single-operator API.
	var alone []Result
	for i, op := range testOps() {
		var r Result
		var err error
		if o := reqs[i].Density; o != nil {
			if r.Density, err = SpectralDensity(ctx, op, *o); err != nil {
				t.Fatal(err)
			}
		}
		if o := reqs[i].TopK; o != nil {
			if r.TopK, err = TopEigenvalues(ctx, op, *o); err != nil {
				t.Fatal(err)
			}
		}
		if o := reqs[i].Trace; o != nil {
			if r.Trace, err = HutchinsonTrace(ctx, op, *o); err != nil {
				t.Fatal(err)
			}
		}
		r.Applications = op.calls
		alone = append(alone, r)
	}
	check := func(name string, got []Result, perm []int) {
		t.Helper()
		for k, i := range perm {
			if !reflect.DeepEqual(got[k], alone[i]) {
				t.Errorf("%s: operator %d differs from its run alone", name, i)
			}
		}
	}
	for _, mb := range []int{0, 1, 2, 7} {
		ops := testOps()
		g := &lockstepGroup{ops: ops}
		got, err := Run(ctx, g, reqs, RunOptions{MaxBatch: mb})
		if err != nil {
			t.Fatal(err)
		}
		check("group", got, []int{0, 1, 2})
		for _, s := range g.sizes {
			if mb > 0 && s > mb {
				t.Errorf("MaxBatch %d: a round of %d vectors", mb, s)
			}
		}
		if mb == 0 {
			// All recurrences at once: the longest one sets the rounds.
			// Op 2's top-k needs more than 128 steps, so rounds = its steps.
			want := max(128, got[1].TopK.Steps, got[2].TopK.Steps)
			if g.rounds != want {
				t.Errorf("lockstep: %d rounds, want %d", g.rounds, want)
			}
		}
	}
	// Reversed order, through NewGroup over batch operators.
	ops := testOps()
	var bops []Operator
	for _, i := range []int{2, 1, 0} {
		bops = append(bops, &batchSpectral{spectral: ops[i]})
	}
	rev := []Request{reqs[2], reqs[1], reqs[0]}
	got, err := Run(ctx, NewGroup(bops...), rev, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("reversed batch group", got, []int{2, 1, 0})
	b := bops[2].(*batchSpectral) // op 0: bounds run + 3 probes in lockstep
	if b.batches != 128 || b.vectors != 64+3*128 {
		t.Errorf("batch operator: %d calls for %d vectors; want 128 calls for %d", b.batches, b.vectors, 64+3*128)
	}
}

type countingProgress struct {
	starts, finishes, advanced, total int
}

func (p *countingProgress) Start(_ string, total int) { p.starts++; p.total = total }
func (p *countingProgress) Advance(n int)             { p.advanced += n }
func (p *countingProgress) Finish()                   { p.finishes++ }

func TestRunReportsProgress(t *testing.T) {
	op := newSpectral(uniformSpectrum(100, 0, 1), 2, 1)
	d := DefaultDensityOptions()
	d.Probes = 2
	tr := TraceOptions{Probes: 7}
	p := &countingProgress{}
	res, err := Run(context.Background(), NewGroup(op), []Request{{Density: &d, Trace: &tr}}, RunOptions{Progress: p})
	if err != nil {
		t.Fatal(err)
	}
	want := 64 + 2*128 + 7
	if p.starts != 1 || p.finishes != 1 || p.total != want || p.advanced != want || res[0].Applications != want || op.calls != want {
		t.Errorf("progress %+v, %d applications, %d products; want %d of each", *p, res[0].Applications, op.calls, want)
	}
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	op := newSpectral(uniformSpectrum(20, 0, 1), 1, 1)
	bad := DefaultDensityOptions()
	bad.Kappa = 1
	for _, c := range []struct {
		name string
		reqs []Request
		want string
	}{
		{"count", []Request{{}, {}}, "2 requests for a group of 1"},
		{"kappa", []Request{{Density: &bad}}, "kappa"},
		{"topk", []Request{{TopK: &TopKOptions{K: 30, Tol: 1e-6}}}, "k = 30"},
		{"trace", []Request{{Trace: &TraceOptions{Distribution: Gaussian}}}, "probes 0"},
	} {
		if _, err := Run(ctx, NewGroup(op), c.reqs, RunOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	panicking := funcOp{20, func(context.Context, []float64, []float64) error { panic("index out of range") }}
	d := DefaultDensityOptions()
	if _, err := SpectralDensity(ctx, panicking, d); err == nil || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("panic: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := SpectralDensity(cctx, op, d); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// A zero operator (a layer whose Hessian vanishes) must not give NaNs: the
// range collapses to a point and the density is a narrow Gaussian there.
func TestDensityOfZeroOperator(t *testing.T) {
	op := newSpectral(make([]float64, 40), 2, 1)
	d, err := SpectralDensity(context.Background(), op, DefaultDensityOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d.LB != 0 || d.UB != 0 || d.Center != 0 || d.HalfWidth != degenerateHalfWidth {
		t.Errorf("bounds [%g, %g], centre %g, half-width %g", d.LB, d.UB, d.Center, d.HalfWidth)
	}
	if integral := trapezoid(d.Grid, d.Mean); !(integral >= 0.999999) || !(integral <= 1.000001) {
		t.Errorf("density integrates to %g", integral)
	}
	if d.Applications != 2 || !d.Bounds.Breakdown {
		t.Errorf("%d applications, breakdown %v; want 2 (one per run) and a breakdown", d.Applications, d.Bounds.Breakdown)
	}
}

func TestNewGroupRejectsBadCalls(t *testing.T) {
	g := NewGroup(newSpectral(uniformSpectrum(10, 0, 1), 1, 1))
	v := [][]float64{make([]float64, 10)}
	if err := g.ApplyGroup(context.Background(), []int{1}, v, v); err == nil {
		t.Error("operator index 1 of a group of 1 accepted")
	}
	if err := g.ApplyGroup(context.Background(), []int{0, 0}, v, v); err == nil {
		t.Error("2 indices for 1 vector accepted")
	}
}

// A Prior from a run with fewer probes (or more) gives the result of a run
// from nothing, and only the missing recurrences are computed.
func TestRunReusesPrior(t *testing.T) {
	ctx := context.Background()
	want := func(probes, traces int) Request {
		d := DefaultDensityOptions()
		d.Probes, d.Seed, d.Steps, d.BoundsSteps = probes, 8, 40, 20
		return Request{Density: &d, TopK: &TopKOptions{K: 2, Tol: 1e-8, Seed: 8}, Trace: &TraceOptions{Probes: traces, Seed: 8}}
	}
	run := func(rq Request) (Result, int) {
		t.Helper()
		op := newSpectral(hessianLike(200, 1), 3, 1)
		r, err := Run(ctx, NewGroup(op), []Request{rq}, RunOptions{MaxBatch: 3})
		if err != nil {
			t.Fatal(err)
		}
		return r[0], op.calls
	}
	full, fullCalls := run(want(3, 7))
	small, _ := run(want(1, 2))
	prior := func(r Result, topK bool) *Prior {
		p := &Prior{Bounds: r.Density.Bounds, Probes: r.Density.Runs, TraceSamples: r.Trace.Samples}
		if topK {
			p.TopK = r.TopK
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		prior *Prior
		calls int
	}{
		{"more probes", prior(small, true), 2*40 + 5},
		{"more probes, top-k recomputed", prior(small, false), 2*40 + 5 + full.TopK.Applications},
		{"the same", prior(full, true), 0},
	} {
		rq := want(3, 7)
		rq.Prior = tc.prior
		got, calls := run(rq)
		if !reflect.DeepEqual(got, full) {
			t.Errorf("%s: result differs from a run from nothing", tc.name)
		}
		if calls != tc.calls || got.Applications != fullCalls {
			t.Errorf("%s: %d operator calls (want %d), %d applications counted (want %d)", tc.name, calls, tc.calls, got.Applications, fullCalls)
		}
	}
	// Fewer: the first probes of a larger run.
	rq := want(1, 2)
	rq.Prior = prior(full, false)
	got, calls := run(rq)
	if !reflect.DeepEqual(got, small) || calls != small.TopK.Applications {
		t.Errorf("fewer probes: result equal %v, %d calls (want only the top-k's %d)", reflect.DeepEqual(got, small), calls, small.TopK.Applications)
	}
	// A prior that does not fit is an error, not a wrong result.
	rq = want(3, 7)
	rq.Prior = &Prior{Probes: small.Density.Runs}
	if _, err := Run(ctx, NewGroup(newSpectral(hessianLike(200, 1), 3, 1)), []Request{rq}, RunOptions{}); err == nil || !strings.Contains(err.Error(), "without their range run") {
		t.Errorf("probes without a range run: %v", err)
	}
}
