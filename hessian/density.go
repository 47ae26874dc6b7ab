package hessian

import (
	"fmt"
	"math"
)

// DensityOptions configures SpectralDensity, the seed's single-vector
// stochastic Lanczos quadrature (SEED-SPEC §4.3), extended with several
// probes and optional reorthogonalisation. DefaultDensityOptions holds the
// seed's constants; the zero value is not valid.
type DensityOptions struct {
	// BoundsSteps is the length of the range run (the seed's
	// init_poly_deg, 64).
	BoundsSteps int
	// Steps is the length of each density run (poly_deg, 128). It also sets
	// the kernel width through the grid step h = 2/(Steps−1).
	Steps int
	// Margin widens [lb, ub] by this fraction of ub−lb on each side
	// (spectrum_margin, 0.05).
	Margin float64
	// Kappa sets the Gaussian kernel's σ = h/√(8 ln Kappa) (1.25).
	Kappa float64
	// Points is the number of grid points on [−1, 1], endpoints included
	// (poly_points, 1024).
	Points int
	// Cutoff drops kernel terms below Cutoff times the kernel's peak, i.e.
	// farther than σ√(−2 ln Cutoff) from their Ritz value (1e-8).
	Cutoff float64
	// Probes is the number of independent density runs averaged (1, the
	// seed). Each has its own random start; the range run is made once.
	Probes int
	// Reorthogonalize applies to the range run and to every probe
	// (ReorthNone, the seed).
	Reorthogonalize Reorthogonalization
	// Seed selects the start vectors: StreamBounds for the range run,
	// StreamProbe+p for probe p.
	Seed uint64
}

// DefaultDensityOptions returns the seed's constants (SEED-SPEC §4.3), one
// probe, no reorthogonalisation, seed 0.
func DefaultDensityOptions() DensityOptions {
	return DensityOptions{
		BoundsSteps: 64,
		Steps:       128,
		Margin:      0.05,
		Kappa:       1.25,
		Points:      1024,
		Cutoff:      1e-8,
		Probes:      1,
	}
}

func (o DensityOptions) validate() error {
	switch {
	case o.BoundsSteps < 1:
		return fmt.Errorf("density: bounds steps %d: want ≥ 1", o.BoundsSteps)
	case o.Steps < 2:
		return fmt.Errorf("density: steps %d: want ≥ 2", o.Steps)
	case !(o.Margin >= 0) || math.IsInf(o.Margin, 0):
		return fmt.Errorf("density: margin %g: want a finite value ≥ 0", o.Margin)
	case !(o.Kappa > 1) || math.IsInf(o.Kappa, 0):
		return fmt.Errorf("density: kappa %g: want a finite value > 1", o.Kappa)
	case o.Points < 2:
		return fmt.Errorf("density: points %d: want ≥ 2", o.Points)
	case !(o.Cutoff > 0 && o.Cutoff < 1):
		return fmt.Errorf("density: cutoff %g: want 0 < cutoff < 1", o.Cutoff)
	case o.Probes < 1:
		return fmt.Errorf("density: probes %d: want ≥ 1", o.Probes)
	case o.Reorthogonalize != ReorthNone && o.Reorthogonalize != ReorthFull:
		return fmt.Errorf("density: %v: unknown reorthogonalization", o.Reorthogonalize)
	}
	return nil
}

// Kernel holds the constants of the Gaussian kernel on the normalised axis
// [−1, 1] (SEED-SPEC §4.3 step 3).
type Kernel struct {
	// Step is h = 2/(Steps−1).
	Step float64
	// Sigma is σ = h/√(8 ln Kappa).
	Sigma float64
	// Width is σ√(−2 ln Cutoff): terms at this distance or farther are
	// dropped.
	Width float64
	// Norm is 1/√(2πσ²), the kernel's peak.
	Norm float64
}

// Kernel returns the kernel constants of o.
func (o DensityOptions) Kernel() Kernel {
	h := 2 / float64(o.Steps-1)
	s := h / math.Sqrt(8*math.Log(o.Kappa))
	return Kernel{Step: h, Sigma: s, Width: s * math.Sqrt(-2*math.Log(o.Cutoff)), Norm: 1 / math.Sqrt(2*math.Pi*s*s)}
}

// Density is a spectral density estimate on a grid.
type Density struct {
	// Grid holds Points eigenvalues, equally spaced from Center−HalfWidth
	// to Center+HalfWidth: the seed's "eigval".
	Grid []float64
	// Mean is the density on Grid averaged over probes, in eigenvalue units
	// (it integrates to about 1): the seed's "eigval_density".
	Mean []float64
	// Std is the per-point sample standard deviation of the probes'
	// densities (divisor Probes−1), all zeros for one probe.
	Std []float64
	// LB and UB are the range run's residual-widened bounds, before the
	// margin: LB = θ₁ − |β_M S[M,1]|, UB = θ_M + |β_M S[M,M]|.
	LB, UB float64
	// Center and HalfWidth are c and d after the margin.
	Center, HalfWidth float64
	// Bounds is the range run.
	Bounds *Tridiagonal
	// Probes holds each probe's Ritz values (eigenvalue units, ascending)
	// and weights. A probe that broke down has fewer than Steps of them.
	Probes []*Ritz
	// Runs holds each probe's Lanczos run, whose eigendecomposition Probes
	// holds (what a later Run may reuse: Prior.Probes).
	Runs []*Tridiagonal
	// Applications counts the operator applications used.
	Applications int
}

// degenerateHalfWidth is the half-width, relative to max(|c|, 1), of the
// grid when the range run finds ub = lb (a multiple of the identity on the
// Krylov space, e.g. a zero layer Hessian), where the seed divides by zero:
// the density is then a narrow Gaussian at c.
const degenerateHalfWidth = 0.05

// assembleDensity turns the range run and the probe runs into a Density,
// following SEED-SPEC §4.3 steps 1–7.
func assembleDensity(o DensityOptions, bounds *Tridiagonal, probes []*Tridiagonal) (*Density, error) {
	br, err := bounds.Eigen()
	if err != nil {
		return nil, fmt.Errorf("density range run: %w", err)
	}
	m := len(br.Values)
	// Step 1. The seed's β_M is the norm computed at the last step, i.e.
	// the residual norm, not the last off-diagonal of T; S[M,1] and S[M,M]
	// are the last components of the extreme Ritz vectors.
	d := &Density{Bounds: bounds, Runs: probes, Applications: bounds.Steps()}
	d.LB = br.Values[0] - br.Residuals[0]
	d.UB = br.Values[m-1] + br.Residuals[m-1]
	// Step 2.
	lb := d.LB - o.Margin*(d.UB-d.LB)
	ub := d.UB + o.Margin*(d.UB-d.LB)
	d.Center, d.HalfWidth = (lb+ub)/2, (ub-lb)/2
	if d.HalfWidth <= 0 {
		d.HalfWidth = degenerateHalfWidth * max(math.Abs(d.Center), 1)
	}
	if math.IsNaN(d.Center) || math.IsInf(d.HalfWidth, 0) {
		return nil, fmt.Errorf("density range run: bounds [%g, %g] are not finite", d.LB, d.UB)
	}
	// Steps 3–4.
	k := o.Kernel()
	x := linspace(-1, 1, o.Points)
	d.Grid = make([]float64, o.Points)
	for j, xj := range x {
		d.Grid[j] = xj*d.HalfWidth + d.Center
	}
	// Steps 5–7, per probe; then mean and spread.
	d.Mean = make([]float64, o.Points)
	d.Std = make([]float64, o.Points)
	ys := make([][]float64, len(probes))
	for p, t := range probes {
		r, err := t.Eigen()
		if err != nil {
			return nil, fmt.Errorf("density probe %d: %w", p, err)
		}
		d.Probes = append(d.Probes, r)
		d.Applications += t.Steps()
		ys[p] = kernelDensity(x, r.Values, r.Weights, d.Center, d.HalfWidth, k)
	}
	for j := range d.Mean {
		s := 0.0
		for _, y := range ys {
			s += y[j]
		}
		mean := s / float64(len(ys))
		d.Mean[j] = mean
		if len(ys) > 1 {
			v := 0.0
			for _, y := range ys {
				v += (y[j] - mean) * (y[j] - mean)
			}
			d.Std[j] = math.Sqrt(v / float64(len(ys)-1))
		}
	}
	return d, nil
}

// kernelDensity evaluates, at the normalised grid x,
//
//	y(x_j) = Σ_k γ_k · Norm · exp(−(x_j − θ̃_k)²/(2σ²)) / d,  θ̃_k = (θ_k − c)/d,
//
// over the terms with |x_j − θ̃_k| < Width: the seed's Gaussian sum,
// denormalised (the 1/d).
func kernelDensity(x, theta, gamma []float64, c, d float64, k Kernel) []float64 {
	y := make([]float64, len(x))
	n := len(x)
	dx := x[1] - x[0]
	twoSigma2 := 2 * k.Sigma * k.Sigma
	for i, th := range theta {
		t := (th - c) / d
		// Candidate indices, one wider than needed on each side; the exact
		// test below decides.
		lof := math.Floor((t-k.Width-x[0])/dx) - 1
		hif := math.Ceil((t+k.Width-x[0])/dx) + 1
		if hif < 0 || lof > float64(n-1) {
			continue
		}
		lo, hi := int(max(lof, 0)), int(min(hif, float64(n-1)))
		for j := lo; j <= hi; j++ {
			if u := x[j] - t; math.Abs(u) < k.Width {
				y[j] += gamma[i] * k.Norm * math.Exp(-u*u/twoSigma2)
			}
		}
	}
	for j := range y {
		y[j] /= d
	}
	return y
}

// linspace returns n ≥ 2 equally spaced values from a to b, endpoints
// included, computed as numpy.linspace does.
func linspace(a, b float64, n int) []float64 {
	x := make([]float64, n)
	step := (b - a) / float64(n-1)
	for j := range x {
		x[j] = a + float64(j)*step
	}
	x[n-1] = b
	return x
}
