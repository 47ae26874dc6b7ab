package hessian

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestKernelConstantsMatchSeed(t *testing.T) {
	k := DefaultDensityOptions().Kernel()
	// The numbers of SEED-SPEC §4.3, to the digits given there.
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"h", k.Step, 0.0157480, 5e-8},
		{"σ", k.Sigma, 0.0117866, 5e-8},
		{"2σ²", 2 * k.Sigma * k.Sigma, 2.77849e-4, 5e-10},
		{"width", k.Width, 0.0715413, 5e-8},
		{"normaliser", k.Norm, 33.847, 5e-4},
	} {
		if !(math.Abs(c.got-c.want) <= c.tol) {
			t.Errorf("%s = %.8g, seed %g", c.name, c.got, c.want)
		}
	}
	o := DefaultDensityOptions()
	if o.BoundsSteps != 64 || o.Steps != 128 || o.Margin != 0.05 || o.Kappa != 1.25 || o.Points != 1024 || o.Cutoff != 1e-8 || o.Probes != 1 || o.Reorthogonalize != ReorthNone {
		t.Errorf("defaults %+v differ from the seed's", o)
	}
}

// The density must be exactly the seed's kernel sum over each probe's Ritz
// values, on the grid set by the range run. The reference here is computed
// independently: its own Lanczos runs from the documented streams, its own
// bounds from S and β, and a plain double loop over grid and nodes.
func TestDensityMatchesBruteForceKernelSum(t *testing.T) {
	ctx := context.Background()
	op := newSpectral(hessianLike(400, 4), 3, 4)
	o := DefaultDensityOptions()
	o.Probes, o.Seed = 3, 17
	got, err := SpectralDensity(ctx, op, o)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := Lanczos(ctx, op, LanczosOptions{Steps: 64, Seed: 17, Stream: 0})
	if err != nil {
		t.Fatal(err)
	}
	br, _ := bt.Eigen()
	m, beta := bt.Steps(), bt.Beta[bt.Steps()-1]
	lb := br.Values[0] - math.Abs(beta*br.S.At(m-1, 0))
	ub := br.Values[m-1] + math.Abs(beta*br.S.At(m-1, m-1))
	if lb != got.LB || ub != got.UB {
		t.Fatalf("bounds [%g, %g], want [%g, %g]", got.LB, got.UB, lb, ub)
	}
	lb, ub = lb-0.05*(ub-lb), ub+0.05*(ub-lb)
	c, d := (lb+ub)/2, (ub-lb)/2
	sigma := 2.0 / 127 / math.Sqrt(8*math.Log(1.25))
	width := sigma * math.Sqrt(-2*math.Log(1e-8))
	ys := make([][]float64, 3)
	for p := range 3 {
		tri, err := Lanczos(ctx, op, LanczosOptions{Steps: 128, Seed: 17, Stream: 1 + uint64(p)})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := tri.Eigen()
		ys[p] = make([]float64, 1024)
		for j := range 1024 {
			x := -1 + 2*float64(j)/1023
			for k, th := range r.Values {
				tt := (th - c) / d
				if math.Abs(x-tt) < width {
					ys[p][j] += r.S.At(0, k) * r.S.At(0, k) * math.Exp(-(x-tt)*(x-tt)/(2*sigma*sigma)) / math.Sqrt(2*math.Pi*sigma*sigma)
				}
			}
			ys[p][j] /= d
		}
		if !slices.Equal(got.Probes[p].Values, r.Values) {
			t.Fatalf("probe %d: Ritz values differ from a standalone run on stream %d", p, 1+p)
		}
	}
	peak := slices.Max(got.Mean)
	for j := range 1024 {
		if want := lb + (ub-lb)*float64(j)/1023; !(math.Abs(got.Grid[j]-want) <= 1e-12*math.Abs(ub-lb)) {
			t.Fatalf("grid[%d] = %.15g, want %.15g", j, got.Grid[j], want)
		}
		mean := (ys[0][j] + ys[1][j] + ys[2][j]) / 3
		v := 0.0
		for p := range 3 {
			v += (ys[p][j] - mean) * (ys[p][j] - mean)
		}
		std := math.Sqrt(v / 2)
		if !(math.Abs(got.Mean[j]-mean) <= 1e-12*peak) || !(math.Abs(got.Std[j]-std) <= 1e-12*peak) {
			t.Fatalf("point %d: mean %g std %g, want %g and %g", j, got.Mean[j], got.Std[j], mean, std)
		}
	}
	if got.Applications != 64+3*128 {
		t.Errorf("%d applications, want %d", got.Applications, 64+3*128)
	}
}

// w1 is the Wasserstein-1 distance ∫|F − G| between the distribution with
// masses proportional to y at the points x (ascending) and the empirical
// measure of atoms (each 1/len(atoms)).
func w1(x, y, atoms []float64) float64 {
	a := slices.Clone(atoms)
	slices.Sort(a)
	total := 0.0
	for _, v := range y {
		total += v
	}
	var F, G, dist, at float64
	i, j := 0, 0
	at = math.Min(x[0], a[0])
	for i < len(x) || j < len(a) {
		var next float64
		if j >= len(a) || (i < len(x) && x[i] <= a[j]) {
			next = x[i]
		} else {
			next = a[j]
		}
		dist += math.Abs(F-G) * (next - at)
		at = next
		if j >= len(a) || (i < len(x) && x[i] <= a[j]) {
			F += y[i] / total
			i++
		} else {
			G += 1 / float64(len(a))
			j++
		}
	}
	return dist
}

func TestW1AgainstClosedForms(t *testing.T) {
	// Point mass at 0 against atoms at 1 and 3: mean distance 2.
	if got := w1([]float64{0}, []float64{5}, []float64{1, 3}); !(math.Abs(got-2) <= 1e-15) {
		t.Errorf("W1(δ0, ½δ1+½δ3) = %g, want 2", got)
	}
	// Identical measures.
	if got := w1([]float64{1, 2, 4}, []float64{1, 1, 1}, []float64{4, 1, 2}); got != 0 {
		t.Errorf("W1 of equal measures = %g", got)
	}
	// ½δ0+½δ1 against δ0.5: every unit of mass moves 0.5.
	if got := w1([]float64{0, 1}, []float64{2, 2}, []float64{0.5}); !(math.Abs(got-0.5) <= 1e-15) {
		t.Errorf("W1 = %g, want 0.5", got)
	}
}

// slqBound is the bound of the package documentation on the Wasserstein-1
// distance between the SLQ density and the spectral measure of A.
type slqBound struct{ quadrature, kernel, grid, sampling float64 }

func newSLQBound(lambda []float64, o DensityOptions, halfWidth float64) slqBound {
	l := slices.Clone(lambda)
	slices.Sort(l)
	n := float64(len(l))
	k := o.Kernel()
	b := slqBound{
		quadrature: math.Pi * (l[len(l)-1] - l[0]) / (4 * float64(o.Steps)),
		kernel:     math.Sqrt(2/math.Pi) * k.Sigma * halfWidth,
		grid:       halfWidth / float64(o.Points-1),
	}
	for i := 1; i < len(l); i++ {
		p := float64(i) / n
		b.sampling += (l[i] - l[i-1]) * math.Sqrt(2*p*(1-p)/(float64(o.Probes)*(n+2)))
	}
	return b
}

func (b slqBound) deterministic() float64 { return b.quadrature + b.kernel + b.grid }

// trapezoid integrates y over x.
func trapezoid(x, y []float64) float64 {
	s := 0.0
	for j := 1; j < len(x); j++ {
		s += (x[j] - x[j-1]) * (y[j] + y[j-1]) / 2
	}
	return s
}

// The SLQ density against the exact eigenvalues, on spectra of dimension
// 200 to 5,000: the seed's acceptance checks for every run, and the
// Wasserstein bound of doc.go, per run (with the sampling term tripled) and
// on average over seeds (the bound itself, which holds in expectation).
func TestDensityAgainstExactSpectrum(t *testing.T) {
	if testing.Short() {
		t.Skip("several thousand products on dimensions up to 5,000")
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		lambda []float64
	}{
		{"uniform-200", uniformSpectrum(200, -1, 3)},
		{"two-clusters-1000", twoClusters(1000)},
		{"hessian-like-2000", hessianLike(2000, 5)},
		{"uniform-5000", uniformSpectrum(5000, -2, 2)},
		{"hessian-like-5000", hessianLike(5000, 6)},
	}
	type setting struct {
		probes int
		reorth Reorthogonalization
	}
	settings := []setting{{1, ReorthNone}, {1, ReorthFull}, {4, ReorthNone}}
	const seeds = 5
	for ci, c := range cases {
		op := newSpectral(c.lambda, 4, uint64(ci))
		exact := op.sortedEigen()
		lmin, lmax := exact[0], exact[len(exact)-1]
		for _, s := range settings {
			o := DefaultDensityOptions()
			o.Probes, o.Reorthogonalize = s.probes, s.reorth
			sum, bsum := 0.0, 0.0
			var worst float64
			for seed := range uint64(seeds) {
				o.Seed = seed
				d, err := SpectralDensity(ctx, op, o)
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%s P=%d %v seed %d", c.name, s.probes, s.reorth, seed)
				// Up to rounding: a converged extreme Ritz value has a
				// residual of order ε‖A‖.
				if tol := 1e-12 * (lmax - lmin); !(d.LB <= lmin+tol) || !(d.UB >= lmax-tol) {
					t.Errorf("%s: bounds [%g, %g] miss the spectrum [%g, %g]", name, d.LB, d.UB, lmin, lmax)
				}
				wantLo, wantHi := d.LB-0.05*(d.UB-d.LB), d.UB+0.05*(d.UB-d.LB)
				if !(math.Abs(d.Grid[0]-wantLo) <= 1e-12*(wantHi-wantLo)) || !(math.Abs(d.Grid[1023]-wantHi) <= 1e-12*(wantHi-wantLo)) {
					t.Errorf("%s: grid [%g, %g], want [%g, %g]", name, d.Grid[0], d.Grid[1023], wantLo, wantHi)
				}
				if integral := trapezoid(d.Grid, d.Mean); !(math.Abs(integral-1) <= 1e-6) {
					t.Errorf("%s: density integrates to %.9f", name, integral)
				}
				b := newSLQBound(exact, o, d.HalfWidth)
				dist := w1(d.Grid, d.Mean, exact)
				if limit := b.deterministic() + 3*b.sampling; !(dist <= limit) {
					t.Errorf("%s: W1 = %.4g > %.4g = bound with 3× sampling term", name, dist, limit)
				}
				sum += dist
				bsum += b.deterministic() + b.sampling
				worst = max(worst, dist/(b.deterministic()+b.sampling))
			}
			mean, bound := sum/seeds, bsum/seeds
			t.Logf("%-18s P=%d %-4v range %6.2f: mean W1 %.4f, bound %.4f (ratio %.2f, worst seed %.2f)",
				c.name, s.probes, s.reorth, lmax-lmin, mean, bound, mean/bound, worst)
			if !(mean <= bound) {
				t.Errorf("%s P=%d %v: mean W1 %.4g over %d seeds exceeds the expected-value bound %.4g", c.name, s.probes, s.reorth, mean, seeds, bound)
			}
		}
	}
}
