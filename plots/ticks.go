package plots

import (
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// logTicks marks a log axis: a tick at every decade, labelled on at most
// maxLabels decades spread evenly (a 12-decade axis in a small panel would
// otherwise print overlapping labels). On an axis spanning less than two
// decades it labels 1, 2 and 5 times each power of ten instead, and on an
// axis too narrow for two of those, round linear steps.
type logTicks struct {
	maxLabels int
}

func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	const eps = 1e-9
	in := func(v float64) bool { return v >= lo*(1-eps) && v <= hi*(1+eps) }
	var decades []float64
	for d := dlo; d <= dhi; d++ {
		if in(math.Pow(10, d)) {
			decades = append(decades, d)
		}
	}
	var ticks []plot.Tick
	if len(decades) < 2 {
		labelled := 0
		for d := dlo; d <= dhi; d++ {
			for m := 1; m < 10; m++ {
				v := float64(m) * math.Pow(10, d)
				if !in(v) {
					continue
				}
				tk := plot.Tick{Value: v}
				if m == 1 || m == 2 || m == 5 {
					tk.Label = formatTick(v)
					labelled++
				}
				ticks = append(ticks, tk)
			}
		}
		if labelled < 2 {
			// A narrow range (a loss between 1.4 and 2.8, say) would show
			// one label or none: round linear steps read better there.
			return linearTicks{n: 4}.Ticks(lo, hi)
		}
		return ticks
	}
	maxLabels := max(t.maxLabels, 2)
	step := int(math.Ceil(float64(len(decades)) / float64(maxLabels)))
	// Label the top decade and every step-th one below it.
	top := decades[len(decades)-1]
	for _, d := range decades {
		tk := plot.Tick{Value: math.Pow(10, d)}
		if int(top-d)%step == 0 {
			tk.Label = formatTick(tk.Value)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// formatTick writes a decade or a 1-2-5 tick value briefly: 0.01, 1, 100,
// 1e-5, 1e6.
func formatTick(v float64) string {
	if a := math.Abs(v); a != 0 && (a < 1e-2 || a >= 1e3) {
		m, e, _ := strings.Cut(strconv.FormatFloat(v, 'e', -1, 64), "e")
		exp, _ := strconv.Atoi(e)
		return m + "e" + strconv.Itoa(exp)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// linearTicks marks a linear axis at about n round steps (1, 2, 2.5 or 5 times
// a power of ten), labelled with as many decimals as the step needs, and
// leaves unlabelled ticks halfway between.
type linearTicks struct {
	n int
}

func (t linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	step := niceStep((hi - lo) / float64(max(t.n, 2)))
	decimals := 0
	for p := step; p != math.Trunc(p) && decimals < 12; p *= 10 {
		decimals++
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/step*2-1e-9) / 2
	for k := first; k*step <= hi+step*1e-9; k += 0.5 {
		v := k * step
		tk := plot.Tick{Value: v}
		if k == math.Trunc(k) {
			if math.Abs(v) < step*1e-9 {
				v = 0
			}
			tk.Label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// niceStep rounds x up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}
