package hessian

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// Hutchinson on matrices with known traces, for both probe laws and ten
// seeds each: every estimate within 3 standard errors of the exact trace,
// and the z-scores, taken together, look like draws from a unit normal
// (their mean near 0, their RMS near 1). All seeds are fixed: the test is
// deterministic.
func TestHutchinsonWithinThreeStandardErrors(t *testing.T) {
	ctx := context.Background()
	ops := []*spectral{
		newSpectral(uniformSpectrum(200, -1, 3), 3, 1),
		newSpectral(twoClusters(500), 3, 2),
		newSpectral(hessianLike(1000, 3), 4, 3),
	}
	var zs []float64
	for oi, op := range ops {
		exact := op.trace()
		for _, dist := range []Distribution{Rademacher, Gaussian} {
			line := ""
			for seed := range uint64(10) {
				tr, err := HutchinsonTrace(ctx, op, TraceOptions{Probes: 30, Distribution: dist, Seed: seed})
				if err != nil {
					t.Fatal(err)
				}
				z := (tr.Estimate - exact) / tr.StdErr
				zs = append(zs, z)
				line += fmt.Sprintf(" %+.2f", z)
				if !(math.Abs(z) <= 3) {
					t.Errorf("matrix %d %v seed %d: estimate %g ± %g, exact %g: z = %.2f", oi, dist, seed, tr.Estimate, tr.StdErr, exact, z)
				}
				if tr.Applications != 30 || len(tr.Samples) != 30 {
					t.Errorf("%d applications, %d samples; want 30", tr.Applications, len(tr.Samples))
				}
			}
			t.Logf("matrix %d (n=%d, tr %.3f) %-10v z:%s", oi, op.Dim(), exact, dist, line)
		}
	}
	mean, ms := 0.0, 0.0
	for _, z := range zs {
		mean += z
		ms += z * z
	}
	mean /= float64(len(zs))
	rms := math.Sqrt(ms / float64(len(zs)))
	t.Logf("%d z-scores: mean %+.3f, RMS %.3f", len(zs), mean, rms)
	// For 60 independent t(29) scores: the mean has sd 0.13, the RMS about 0.1.
	if !(math.Abs(mean) <= 0.4) || !(rms >= 0.7) || !(rms <= 1.3) {
		t.Errorf("z-scores: mean %.3f, RMS %.3f; want |mean| ≤ 0.4 and RMS in [0.7, 1.3]", mean, rms)
	}
}

// The sample variance of zᵀAz matches its closed form: 2(‖A‖²_F − Σ aᵢᵢ²)
// for Rademacher probes, 2‖A‖²_F for Gaussian ones; and with many probes the
// estimate closes in on the trace.
func TestHutchinsonVarianceMatchesClosedForm(t *testing.T) {
	ctx := context.Background()
	op := newSpectral(hessianLike(200, 7), 3, 7)
	a := op.dense(t)
	frob2, diag2 := 0.0, 0.0
	for i := range 200 {
		for j := range 200 {
			frob2 += a.At(i, j) * a.At(i, j)
		}
		diag2 += a.At(i, i) * a.At(i, i)
	}
	const n = 4000
	for _, c := range []struct {
		dist Distribution
		want float64
	}{{Rademacher, 2 * (frob2 - diag2)}, {Gaussian, 2 * frob2}} {
		tr, err := HutchinsonTrace(ctx, op, TraceOptions{Probes: n, Distribution: c.dist, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		variance := tr.StdErr * tr.StdErr * n
		// The sample variance of n draws is within a few times
		// √(2/n)·(kurtosis factor) of the truth; 15 % is ample at n = 4000.
		if !(math.Abs(variance/c.want-1) <= 0.15) {
			t.Errorf("%v: sample variance %g, closed form %g", c.dist, variance, c.want)
		}
		if z := (tr.Estimate - op.trace()) / math.Sqrt(c.want/n); !(math.Abs(z) <= 3) {
			t.Errorf("%v: estimate %g, trace %g: %.2f true standard errors off", c.dist, tr.Estimate, op.trace(), z)
		}
		t.Logf("%-10v variance %.4g (closed form %.4g), estimate %.4f ± %.4f, trace %.4f", c.dist, variance, c.want, tr.Estimate, tr.StdErr, op.trace())
	}
}

func TestRademacherEntries(t *testing.T) {
	v := make([]float64, 1000)
	rademacher(v, newRand(1, 2))
	plus := 0
	for _, x := range v {
		switch x {
		case 1:
			plus++
		case -1:
		default:
			t.Fatalf("entry %g", x)
		}
	}
	if plus < 430 || plus > 570 { // 1000 fair signs: sd 15.8
		t.Errorf("%d of 1000 entries are +1", plus)
	}
}

func TestHutchinsonOneProbe(t *testing.T) {
	op := newSpectral(uniformSpectrum(50, 0, 1), 2, 1)
	tr, err := HutchinsonTrace(context.Background(), op, TraceOptions{Probes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(tr.StdErr) || tr.Estimate != tr.Samples[0] {
		t.Errorf("one probe: estimate %g stderr %g samples %v", tr.Estimate, tr.StdErr, tr.Samples)
	}
	if _, err := HutchinsonTrace(context.Background(), op, TraceOptions{Probes: 0}); err == nil {
		t.Error("0 probes accepted")
	}
	for _, d := range []Distribution{Rademacher, Gaussian} {
		if got, err := ParseDistribution(d.String()); err != nil || got != d {
			t.Errorf("round trip of %v: %v, %v", d, got, err)
		}
	}
}
