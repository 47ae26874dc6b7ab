package hessian

import (
	"context"
	"fmt"
	"slices"
)

// Request lists the estimates wanted for one operator; nil fields are
// skipped.
type Request struct {
	Density *DensityOptions
	TopK    *TopKOptions
	Trace   *TraceOptions
	// Prior, when set, holds recurrences an earlier Run computed for the
	// same operator with the same options but other counts; Run reuses
	// them instead of recomputing (see Prior).
	Prior *Prior
}

// Result holds the estimates of one Request.
type Result struct {
	Density *Density
	TopK    *TopK
	Trace   *Trace
	// Applications counts the operator applications the estimates took,
	// those of the recurrences reused from Request.Prior included, so that
	// it does not depend on what was reused.
	Applications int
}

// RunOptions configures how Run schedules the work.
type RunOptions struct {
	// MaxBatch caps the number of vectors per ApplyGroup call, i.e. the
	// number of recurrences in memory at once. 0 means all of them when
	// the group batches (a Group of your own, or NewGroup over at least
	// one BatchOperator), else 1: one recurrence at a time, least memory.
	MaxBatch int
	// Progress receives one step per operator application (nil: none).
	Progress Progress
}

// Run computes reqs[i] for operator i of g (len(reqs) = g.Len()).
//
// Every estimate is a set of independent recurrences (the density's range
// run and probes, the top-k run, each Hutchinson probe), each with its own
// random stream. Run advances up to MaxBatch of them in lockstep, one
// ApplyGroup call per round, so a batching operator computes many products
// per call. The results do not depend on MaxBatch, on the grouping, or on
// the order of operators: Run(g, reqs)[i] equals what SpectralDensity,
// TopEigenvalues and HutchinsonTrace return for operator i alone.
//
// A Request's Prior supplies recurrences an earlier Run computed with
// other counts (more or fewer probes): Run reuses them and computes only
// the others, and the Result is the same as without the Prior.
//
// Run checks ctx between rounds and returns ctx.Err() once it is
// cancelled. A panic in ApplyGroup is returned as an error.
func Run(ctx context.Context, g Group, reqs []Request, o RunOptions) ([]Result, error) {
	if len(reqs) != g.Len() {
		return nil, fmt.Errorf("%d requests for a group of %d operators", len(reqs), g.Len())
	}
	plans := make([]*requestPlan, len(reqs))
	var tasks []task
	total, known := 0, true // operator applications to come, when known
	for i, rq := range reqs {
		p, err := planRequest(i, g.Dim(i), rq)
		if err != nil {
			return nil, fmt.Errorf("operator %d: %w", i, err)
		}
		plans[i], tasks = p, append(tasks, p.tasks...)
		total += p.steps
		known = known && !p.openEnded
	}
	if !known {
		total = 0
	}
	width := o.MaxBatch
	if width <= 0 {
		width = len(tasks)
		if og, ok := g.(opGroup); ok && !og.batches() {
			width = 1
		}
	}
	pr := o.Progress
	if pr == nil {
		pr = noProgress{}
	}
	pr.Start("operator applications", total)
	defer pr.Finish()
	apps, err := schedule(ctx, g, tasks, width, pr)
	if err != nil {
		return nil, err
	}
	res := make([]Result, len(reqs))
	for i, p := range plans {
		if res[i], err = p.result(apps[i]); err != nil {
			return nil, fmt.Errorf("operator %d: %w", i, err)
		}
	}
	return res, nil
}

// requestPlan is how Run computes one Request: the recurrences it reuses
// from the Prior, the tasks of the others, and where their outputs land.
type requestPlan struct {
	rq        Request
	tasks     []task
	steps     int  // applications the tasks take, a top-k run's aside
	openEnded bool // a top-k run, whose length is not known in advance
	reused    int  // applications of the reused recurrences

	bounds  *Tridiagonal
	probes  []*Tridiagonal
	samples []float64
	top     *topKJob
}

// planRequest validates rq for operator op of dimension n and plans it.
func planRequest(op, n int, rq Request) (*requestPlan, error) {
	if n < 1 {
		return nil, fmt.Errorf("dimension %d", n)
	}
	pr := rq.Prior
	if pr == nil {
		pr = &Prior{}
	}
	if err := pr.check(rq, n); err != nil {
		return nil, err
	}
	p := &requestPlan{rq: rq}
	if d := rq.Density; d != nil {
		if err := d.validate(); err != nil {
			return nil, err
		}
		p.planDensity(op, n, *d, pr)
	}
	if t := rq.TopK; t != nil {
		if err := t.validate(n); err != nil {
			return nil, err
		}
		p.top = &topKJob{o: *t, n: n, result: pr.TopK}
		if pr.TopK != nil {
			p.reused += pr.TopK.Applications
		} else {
			p.tasks = append(p.tasks, task{op, p.top})
			p.openEnded = true
		}
	}
	if t := rq.Trace; t != nil {
		if err := t.validate(); err != nil {
			return nil, err
		}
		p.samples = make([]float64, t.Probes)
		for k := range t.Probes {
			if k < len(pr.TraceSamples) {
				p.samples[k] = pr.TraceSamples[k]
				p.reused++
				continue
			}
			p.tasks = append(p.tasks, task{op, &traceJob{o: *t, n: n, k: k, sample: &p.samples[k]}})
			p.steps++
		}
	}
	return p, nil
}

// planDensity plans the density's range run and probes.
func (p *requestPlan) planDensity(op, n int, d DensityOptions, pr *Prior) {
	lo := LanczosOptions{Steps: d.BoundsSteps, Reorthogonalize: d.Reorthogonalize, Seed: d.Seed, Stream: StreamBounds}
	if pr.Bounds != nil {
		p.bounds = pr.Bounds
		p.reused += pr.Bounds.Steps()
	} else {
		p.tasks = append(p.tasks, task{op, &lanczosJob{n: n, o: lo, out: &p.bounds}})
		p.steps += d.BoundsSteps
	}
	p.probes = make([]*Tridiagonal, d.Probes)
	for k := range d.Probes {
		if k < len(pr.Probes) {
			p.probes[k] = pr.Probes[k]
			p.reused += pr.Probes[k].Steps()
			continue
		}
		lo.Steps, lo.Stream = d.Steps, StreamProbe+uint64(k)
		p.tasks = append(p.tasks, task{op, &lanczosJob{n: n, o: lo, out: &p.probes[k]}})
		p.steps += d.Steps
	}
}

// result assembles the estimates once the tasks ran, apps applications.
func (p *requestPlan) result(apps int) (Result, error) {
	r := Result{Applications: apps + p.reused}
	if p.rq.Density != nil {
		var err error
		if r.Density, err = assembleDensity(*p.rq.Density, p.bounds, p.probes); err != nil {
			return r, err
		}
	}
	if p.rq.TopK != nil {
		r.TopK = p.top.result
	}
	if p.rq.Trace != nil {
		r.Trace = traceStats(p.samples)
	}
	return r, nil
}

// job is one recurrence driven by schedule: start allocates its vectors,
// next names the vector to multiply and the product's buffer, accept
// consumes the product and reports whether the job is done.
type job interface {
	start()
	next() (src, dst []float64)
	accept() (done bool, err error)
}

// task is a job on operator op of the group.
type task struct {
	op int
	j  job
}

// schedule runs tasks, up to width at a time in lockstep, and returns the
// number of operator applications per operator.
func schedule(ctx context.Context, g Group, tasks []task, width int, pr Progress) ([]int, error) {
	apps := make([]int, g.Len())
	var active []task
	var which []int
	var src, dst [][]float64
	for next := 0; next < len(tasks) || len(active) > 0; {
		for ; len(active) < width && next < len(tasks); next++ {
			tasks[next].j.start()
			active = append(active, tasks[next])
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		which, src, dst = which[:0], src[:0], dst[:0]
		for _, t := range active {
			s, d := t.j.next()
			which, src, dst = append(which, t.op), append(src, s), append(dst, d)
		}
		if err := safeApplyGroup(ctx, g, which, dst, src); err != nil {
			return nil, fmt.Errorf("applying operators %v: %w", distinct(which), err)
		}
		pr.Advance(len(active))
		kept := active[:0]
		for _, t := range active {
			apps[t.op]++
			done, err := t.j.accept()
			if err != nil {
				return nil, fmt.Errorf("operator %d: %w", t.op, err)
			}
			if !done {
				kept = append(kept, t)
			}
		}
		clear(active[len(kept):])
		active = kept
	}
	return apps, nil
}

// safeApplyGroup calls g.ApplyGroup and turns a panic into an error.
func safeApplyGroup(ctx context.Context, g Group, which []int, dst, src [][]float64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("operator panicked: %v", p)
		}
	}()
	return g.ApplyGroup(ctx, which, dst, src)
}

// lanczosJob is one fixed-length Lanczos run.
type lanczosJob struct {
	n   int
	o   LanczosOptions
	r   *recurrence
	out **Tridiagonal
}

func (j *lanczosJob) start() {
	v := make([]float64, j.n)
	gaussianUnit(v, newRand(j.o.Seed, j.o.Stream))
	j.r = newRecurrence(v, j.o.Steps, j.o.Reorthogonalize)
}

func (j *lanczosJob) next() (src, dst []float64) { return j.r.next() }

func (j *lanczosJob) accept() (bool, error) {
	if err := j.r.accept(); err != nil {
		return false, err
	}
	if !j.r.done {
		return false, nil
	}
	*j.out = &j.r.t
	j.r.release()
	return true, nil
}

// SpectralDensity estimates the eigenvalue density of op by the seed's
// stochastic Lanczos quadrature (SEED-SPEC §4.3): a range run of
// BoundsSteps steps gives lb and ub, widened by Margin; each of Probes
// fresh runs of Steps steps gives Ritz values and weights, smoothed by a
// Gaussian kernel onto Points grid points. It costs BoundsSteps +
// Probes·Steps applications (fewer after a breakdown). With a
// BatchOperator the runs advance in lockstep.
func SpectralDensity(ctx context.Context, op Operator, o DensityOptions) (*Density, error) {
	r, err := Run(ctx, NewGroup(op), []Request{{Density: &o}}, RunOptions{})
	if err != nil {
		return nil, err
	}
	return r[0].Density, nil
}

// TopEigenvalues returns the o.K largest eigenvalues of op (see TopK for
// what is guaranteed).
func TopEigenvalues(ctx context.Context, op Operator, o TopKOptions) (*TopK, error) {
	r, err := Run(ctx, NewGroup(op), []Request{{TopK: &o}}, RunOptions{})
	if err != nil {
		return nil, err
	}
	return r[0].TopK, nil
}

// HutchinsonTrace estimates tr op from o.Probes random probes.
func HutchinsonTrace(ctx context.Context, op Operator, o TraceOptions) (*Trace, error) {
	r, err := Run(ctx, NewGroup(op), []Request{{Trace: &o}}, RunOptions{})
	if err != nil {
		return nil, err
	}
	return r[0].Trace, nil
}

// distinct returns the distinct values of x in order of first appearance.
func distinct(x []int) []int {
	var d []int
	for _, v := range x {
		if !slices.Contains(d, v) {
			d = append(d, v)
		}
	}
	return d
}
