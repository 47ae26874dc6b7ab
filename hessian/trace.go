package hessian

import (
	"fmt"
	"math"
	"strings"
)

// Distribution is the law of Hutchinson probe entries.
type Distribution int

const (
	// Rademacher entries are ±1 with probability ½ each (the seed's HTR):
	// variance of one sample 2(‖A‖_F² − Σ a_ii²).
	Rademacher Distribution = iota
	// Gaussian entries are N(0, 1) (the seed's later Regularization/
	// variant): variance of one sample 2‖A‖_F².
	Gaussian
)

// String returns the spelling used in specs.
func (d Distribution) String() string {
	switch d {
	case Rademacher:
		return "rademacher"
	case Gaussian:
		return "gaussian"
	}
	return fmt.Sprintf("Distribution(%d)", int(d))
}

// ParseDistribution reads "rademacher" or "gaussian".
func ParseDistribution(s string) (Distribution, error) {
	switch strings.ToLower(s) {
	case "rademacher":
		return Rademacher, nil
	case "gaussian":
		return Gaussian, nil
	}
	return 0, fmt.Errorf("probe distribution %q: want rademacher or gaussian", s)
}

// TraceOptions configures HutchinsonTrace.
type TraceOptions struct {
	// Probes is the number of probe vectors N ≥ 1.
	Probes int
	// Distribution of the probe entries (Rademacher by default).
	Distribution Distribution
	// Seed selects the probes: probe k comes from stream StreamTrace+k.
	Seed uint64
}

func (o TraceOptions) validate() error {
	switch {
	case o.Probes < 1:
		return fmt.Errorf("trace: probes %d: want ≥ 1", o.Probes)
	case o.Distribution != Rademacher && o.Distribution != Gaussian:
		return fmt.Errorf("trace: %v: unknown probe distribution", o.Distribution)
	}
	return nil
}

// Trace is a Hutchinson estimate of tr A: the mean of zₖᵀ A zₖ over N
// independent probes zₖ with E[z zᵀ] = I.
type Trace struct {
	// Estimate is the sample mean, an unbiased estimate of tr A.
	Estimate float64
	// StdErr is the sample standard deviation (divisor N−1) over √N; NaN
	// when N = 1, where it is undefined.
	StdErr float64
	// Samples are the N values zₖᵀ A zₖ, in probe order.
	Samples []float64
	// Applications counts the operator applications used (= N).
	Applications int
}

// traceJob computes one Hutchinson sample.
type traceJob struct {
	o      TraceOptions
	n      int
	k      int
	z, az  []float64
	sample *float64
}

func (j *traceJob) start() {
	j.z, j.az = make([]float64, j.n), make([]float64, j.n)
	r := newRand(j.o.Seed, StreamTrace+uint64(j.k))
	if j.o.Distribution == Gaussian {
		gaussian(j.z, r)
	} else {
		rademacher(j.z, r)
	}
}

func (j *traceJob) next() (src, dst []float64) { return j.z, j.az }

func (j *traceJob) accept() (bool, error) {
	s := dot(j.z, j.az)
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return false, fmt.Errorf("trace probe %d: zᵀAz = %g: the operator returned non-finite values", j.k, s)
	}
	*j.sample = s
	j.z, j.az = nil, nil
	return true, nil
}

// traceStats summarises the samples.
func traceStats(samples []float64) *Trace {
	n := float64(len(samples))
	mean := 0.0
	for _, s := range samples {
		mean += s
	}
	mean /= n
	t := &Trace{Estimate: mean, StdErr: math.NaN(), Samples: samples, Applications: len(samples)}
	if len(samples) > 1 {
		v := 0.0
		for _, s := range samples {
			v += (s - mean) * (s - mean)
		}
		t.StdErr = math.Sqrt(v/(n-1)) / math.Sqrt(n)
	}
	return t
}
