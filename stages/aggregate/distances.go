package aggregate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/analysis"
	"github.com/hessian-spectra/runner/analysis/records"
	"github.com/hessian-spectra/runner/stage"
)

func distances(ctx context.Context, e *stage.Env) error {
	arts := e.Inputs["spectra"]
	if len(arts) == 0 {
		return fmt.Errorf(`no spectra: bind them with needs: {spectra: "spectrum[*]"}`)
	}
	rule := analysis.PeakRule{Rule: e.Params.String("peak")}
	if rule.Rule == analysis.PeakFixed {
		if !e.Params.Has("peak_epoch") {
			return fmt.Errorf("peak: fixed needs peak_epoch")
		}
		rule.Epoch = e.Params.Int("peak_epoch")
	}
	runs, err := records.IndexSpectra(arts)
	if err != nil {
		return err
	}
	sum := records.DistanceSummary{Table: "distances", Title: e.Params.String("title")}
	sum.Peak.Rule, sum.Peak.Epoch = rule.Rule, rule.Epoch
	for _, run := range runs {
		rd, err := runDistances(ctx, e, run, rule)
		if err != nil {
			return err
		}
		sum.Runs = append(sum.Runs, rd)
	}
	if sum.Title == "" && len(sum.Runs) == 1 {
		sum.Title = sum.Runs[0].Label
	}
	if err := writeDistancesCSV(filepath.Join(e.OutDir, "distances.csv"), sum); err != nil {
		return err
	}
	if err := writeDistancesTable(e.OutDir, sum); err != nil {
		return err
	}
	return writeJSON(filepath.Join(e.OutDir, "summary.json"), sum)
}

// runDistances computes both metrics for every layer and epoch of one run,
// holding one pair of spectra in memory at a time.
func runDistances(ctx context.Context, e *stage.Env, run *records.SpectraRun, rule analysis.PeakRule) (records.RunDistances, error) {
	rd := records.RunDistances{Label: run.Label, Key: run.Key, Model: run.Model, Dataset: run.Dataset,
		Layers: run.Layers, Positions: analysis.Positions(len(run.Layers)), Epochs: run.Epochs}
	if !run.HasFull() {
		return rd, fmt.Errorf("run %s: no full-network spectra (layer %q) to compare the layers with", run.Label, records.FullLayer)
	}
	if len(run.Layers) == 0 {
		return rd, fmt.Errorf("run %s: only full-network spectra, no layers", run.Label)
	}
	if err := run.Complete(); err != nil {
		return rd, err
	}
	seed := &analysis.Distances{Layers: run.Layers, Epochs: run.Epochs, D: grid(len(run.Layers), len(run.Epochs))}
	w1 := &analysis.Distances{Layers: run.Layers, Epochs: run.Epochs, D: grid(len(run.Layers), len(run.Epochs))}
	prog := e.Progress
	prog.Start("distances "+run.Label, len(run.Epochs)*len(run.Layers))
	defer prog.Finish()
	for ei, ep := range run.Epochs {
		if err := ctx.Err(); err != nil {
			return rd, err
		}
		ref, _ := run.Ref(records.FullLayer, ep)
		full, err := ref.Load()
		if err != nil {
			return rd, err
		}
		for li, layer := range run.Layers {
			ref, _ := run.Ref(layer, ep)
			sp, err := ref.Load()
			if err != nil {
				return rd, err
			}
			if seed.D[li][ei], err = analysis.SeedDistance(full.Density, sp.Density); err != nil {
				return rd, fmt.Errorf("run %s, %s at epoch %d: seed metric: %w", run.Label, layer, ep, err)
			}
			if w1.D[li][ei], err = analysis.DensityW1(full.Grid, full.Density, sp.Grid, sp.Density); err != nil {
				return rd, fmt.Errorf("run %s, %s at epoch %d: W1: %w", run.Label, layer, ep, err)
			}
			prog.Advance(1)
		}
	}
	var err error
	if rd.Seed, err = metric(seed, rule, run); err != nil {
		return rd, err
	}
	if rd.W1, err = metric(w1, rule, run); err != nil {
		return rd, err
	}
	e.Logf("%s: %d layers × %d epochs; peak epoch %d (seed metric), %d (W1)", run.Label, len(run.Layers), len(run.Epochs), rd.Seed.PeakEpoch, rd.W1.PeakEpoch)
	return rd, nil
}

func grid(rows, cols int) [][]float64 {
	g := make([][]float64, rows)
	for i := range g {
		g[i] = make([]float64, cols)
	}
	return g
}

// metric summarises one metric's distances: totals, peak epoch, normalised.
func metric(d *analysis.Distances, rule analysis.PeakRule, run *records.SpectraRun) (records.MetricDistances, error) {
	peak, err := rule.Pick(d, run.Model, run.Dataset)
	if err != nil {
		return records.MetricDistances{}, fmt.Errorf("run %s: %w", run.Label, err)
	}
	at, _ := d.AtEpoch(peak)
	tot := d.LayerTotals()
	return records.MetricDistances{
		PerEpoch: d.D, Total: tot, TotalNorm: analysis.Normalize(tot), EpochTotal: d.EpochTotals(),
		PeakEpoch: peak, AtPeak: at, AtPeakNorm: analysis.Normalize(at),
	}, nil
}

// g10 writes a float with 10 significant digits — enough for any use, and
// stable against last-bit differences between machines — and always with a
// decimal point or exponent, so that CSV readers type the column as float
// even when a value is whole.
func g10(v float64) string {
	s := strconv.FormatFloat(v, 'g', 10, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

func writeDistancesCSV(path string, s records.DistanceSummary) error {
	rows := [][]string{{"run", "model", "dataset", "layer", "depth", "position", "epoch", "seed_metric", "w1"}}
	for _, r := range s.Runs {
		for li, l := range r.Layers {
			for ei, ep := range r.Epochs {
				rows = append(rows, []string{r.Label, r.Model, r.Dataset, l, strconv.Itoa(li + 1), g10(r.Positions[li]),
					strconv.Itoa(ep), g10(r.Seed.PerEpoch[li][ei]), g10(r.W1.PerEpoch[li][ei])})
			}
		}
	}
	return writeCSV(path, rows)
}

// ruleText describes the peak rule for the table's preamble.
func ruleText(rule string, epoch int) string {
	switch rule {
	case analysis.PeakMinTotal:
		return "the epoch with the smallest total distance over layers, Σ_l d(l,e), per metric (earliest on ties)"
	case analysis.PeakSeed:
		return "the seed's hard-coded epoch for the model and dataset, converted from its 0-based count (seed epoch e = our epoch e+1)"
	}
	return fmt.Sprintf("epoch %d for every run", epoch)
}

func writeDistancesTable(dir string, s records.DistanceSummary) error {
	var b strings.Builder
	title := "Layer vs full-network spectral density"
	if s.Title != "" {
		title = s.Title + ": layer vs full-network spectral density"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	b.WriteString("seed d(l,e): the seed's match_distros metric, W1 between the value histograms of the τ-transformed log-densities " +
		"of layer l and of the full network at epoch e (it ignores where on the eigenvalue axis the mass lies). " +
		"W1(l,e): the Wasserstein-1 distance between the two densities as distributions on the eigenvalue axis. " +
		"D(l) = Σ_e d(l,e) over all epochs; /max divides by the largest layer's value. ")
	fmt.Fprintf(&b, "Peak epoch e*: %s. Epochs count completed epochs.\n", ruleText(s.Peak.Rule, s.Peak.Epoch))
	rows := [][]string{{"run", "layer", "depth", "position", "seed_total", "seed_total_norm", "seed_peak_epoch", "seed_peak", "seed_peak_norm",
		"w1_total", "w1_total_norm", "w1_peak_epoch", "w1_peak", "w1_peak_norm"}}
	f3 := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, r := range s.Runs {
		fmt.Fprintf(&b, "\n## %s\n\n", mdEscape(r.Label))
		fmt.Fprintf(&b, "%d layers, epochs %d–%d; e* = %d by the seed metric, %d by W1.\n\n", len(r.Layers), r.Epochs[0], r.Epochs[len(r.Epochs)-1], r.Seed.PeakEpoch, r.W1.PeakEpoch)
		b.WriteString("| layer | i/(L−1) | seed D(l)/max | seed d(l,e*)/max | W1 D(l)/max | W1 d(l,e*)/max |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|\n")
		for li, l := range r.Layers {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(l), f3(r.Positions[li]),
				f3(r.Seed.TotalNorm[li]), f3(r.Seed.AtPeakNorm[li]), f3(r.W1.TotalNorm[li]), f3(r.W1.AtPeakNorm[li]))
			rows = append(rows, []string{r.Label, l, strconv.Itoa(li + 1), g10(r.Positions[li]),
				g10(r.Seed.Total[li]), g10(r.Seed.TotalNorm[li]), strconv.Itoa(r.Seed.PeakEpoch), g10(r.Seed.AtPeak[li]), g10(r.Seed.AtPeakNorm[li]),
				g10(r.W1.Total[li]), g10(r.W1.TotalNorm[li]), strconv.Itoa(r.W1.PeakEpoch), g10(r.W1.AtPeak[li]), g10(r.W1.AtPeakNorm[li])})
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "table.csv"), rows)
}
