package aggregate

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/analysis"
	"github.com/hessian-spectra/runner/analysis/records"
	"github.com/hessian-spectra/runner/stage"
)

func penalization(ctx context.Context, e *stage.Env) error {
	arts := e.Inputs["runs"]
	if len(arts) == 0 {
		return fmt.Errorf(`no training runs: bind them with needs: {runs: ["sgd[*]", ...]}`)
	}
	groups, err := records.GroupBy(arts, e.Params.String("group_by"))
	if err != nil {
		return err
	}
	sum, labels, paper, err := penalizationHead(e.Params, groups)
	if err != nil {
		return err
	}
	bySeed := map[string]map[int64]analysis.Accuracies{} // per method; nil where seeds are unknown or repeat
	runTitles := map[string]bool{}
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return err
		}
		row := records.MethodRow{Method: g.Name, Label: g.Name, Paper: paper[g.Name]}
		if l, ok := labels[g.Name]; ok {
			row.Label = l
		}
		if bySeed[g.Name], err = methodRow(&row, g, sum.LastK, runTitles); err != nil {
			return err
		}
		sum.Methods = append(sum.Methods, row)
		p := row.Penalization
		e.Logf("%s: test error %.2f ± %.2f %% over %d reruns × %d epochs", row.Label, p.TestError.Mean, p.TestError.Std, p.Reruns, sum.LastK)
	}
	pairBySeed(e, &sum, bySeed)
	if sum.Title == "" && len(runTitles) == 1 {
		for t := range runTitles {
			sum.Title = t
		}
	}
	if err := writePenalizationMD(filepath.Join(e.OutDir, "table.md"), sum); err != nil {
		return err
	}
	if err := writePenalizationCSV(filepath.Join(e.OutDir, "table.csv"), sum); err != nil {
		return err
	}
	return writeJSON(filepath.Join(e.OutDir, "summary.json"), sum)
}

// penalizationHead reads the params that shape the table: its title,
// last_k, the baseline, and each method's label and paper value.
func penalizationHead(p stage.Params, groups []records.Group) (records.PenalizationSummary, map[string]string, map[string]*records.PaperValue, error) {
	sum := records.PenalizationSummary{Table: "penalization", Title: p.String("title"), LastK: p.Int("last_k"), Baseline: groups[0].Name}
	names := map[string]bool{}
	for _, g := range groups {
		names[g.Name] = true
	}
	labels, err := stringMap(p, "labels", names)
	if err != nil {
		return sum, nil, nil, err
	}
	papers, err := stringMap(p, "paper", names)
	if err != nil {
		return sum, nil, nil, err
	}
	paper := map[string]*records.PaperValue{}
	for name, s := range papers {
		if paper[name], err = parsePaper(s); err != nil {
			return sum, nil, nil, fmt.Errorf("paper %s: %w", name, err)
		}
	}
	if b := p.String("baseline"); b != "" {
		if !names[b] {
			return sum, nil, nil, fmt.Errorf("baseline %q is no method among the inputs (%s)", b, sortedKeys(names))
		}
		sum.Baseline = b
	}
	return sum, labels, paper, nil
}

// methodRow fills row with the reruns of method g pooled over their last k
// epochs, adds each run's title to titles, and returns the runs'
// accuracies by seed (nil when a run has no seed or two share one).
func methodRow(row *records.MethodRow, g records.Group, k int, titles map[string]bool) (map[int64]analysis.Accuracies, error) {
	var accs []analysis.Accuracies
	seeds := map[int64]analysis.Accuracies{}
	for _, a := range g.Artifacts {
		r, err := records.LoadRun(a)
		if err != nil {
			return nil, err
		}
		titles[runTitle(r)] = true
		row.Runs = append(row.Runs, a.Stage)
		row.Epochs = append(row.Epochs, len(r.Metrics.Epoch))
		acc := analysis.Accuracies{Train: r.Metrics.TrainAcc, Test: r.Metrics.TestAcc}
		accs = append(accs, acc)
		if seeds != nil && r.Meta != nil && r.Meta.Seed != nil {
			if _, dup := seeds[*r.Meta.Seed]; !dup {
				seeds[*r.Meta.Seed] = acc
				continue
			}
		}
		seeds = nil // a run without a seed, or a seed twice: no pairing
	}
	p, err := analysis.PoolLastK(accs, k)
	if err != nil {
		return nil, fmt.Errorf("method %s (%s): %w", g.Name, strings.Join(row.Runs, ", "), err)
	}
	row.Penalization = p
	return seeds, nil
}

// pairBySeed compares each method with the baseline seed by seed, where
// both know their runs' seeds.
func pairBySeed(e *stage.Env, sum *records.PenalizationSummary, bySeed map[string]map[int64]analysis.Accuracies) {
	for i := range sum.Methods {
		m := &sum.Methods[i]
		if m.Method == sum.Baseline || bySeed[m.Method] == nil || bySeed[sum.Baseline] == nil {
			continue
		}
		p, err := analysis.PairedTestError(bySeed[sum.Baseline], bySeed[m.Method], sum.LastK)
		if err != nil {
			e.Logf("%s vs %s: no paired comparison: %v", m.Method, sum.Baseline, err)
			continue
		}
		m.Paired = &p
		e.Logf("%s − %s, paired by seed: %+.2f ± %.2f points (s.e., %d seeds)", m.Label, sum.Baseline, p.Mean, p.StdErr, p.N)
	}
}

// runTitle is "Model+Dataset" of a run, or "" when unknown.
func runTitle(r *records.Run) string {
	if r.Model() == "" || r.Dataset() == "" {
		return ""
	}
	return r.Model() + "+" + r.Dataset()
}

// stringMap returns a Map param of strings (empty when absent) and fails on
// a key that names no group, listing the groups.
func stringMap(p stage.Params, name string, groups map[string]bool) (map[string]string, error) {
	out := map[string]string{}
	if !p.Has(name) {
		return out, nil
	}
	for k, v := range p.Map(name) {
		if !groups[k] {
			return nil, fmt.Errorf("%s names %q, which is no method among the inputs (%s)", name, k, sortedKeys(groups))
		}
		out[k] = v.(string)
	}
	return out, nil
}

func sortedKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

var paperRE = regexp.MustCompile(`^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:(?:±|\+-|\+/-)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?\s*%?\s*$`)

// parsePaper reads "5.43 ± 0.10", "5.43 +- 0.10", "5.43 +/- 0.10" or "5.43".
func parsePaper(s string) (*records.PaperValue, error) {
	m := paperRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf(`%q is not "mean ± std" or "mean"`, s)
	}
	mean, _ := strconv.ParseFloat(m[1], 64)
	v := &records.PaperValue{Mean: mean}
	if m[2] != "" {
		std, _ := strconv.ParseFloat(m[2], 64)
		v.Std = &std
	}
	return v, nil
}

// paperCell writes a paper value for the Markdown table: "5.43 ± 0.10",
// "4.78", or "–" when none was given.
func paperCell(v *records.PaperValue) string {
	if v == nil {
		return "–"
	}
	if v.Std == nil {
		return fmt.Sprintf("%.2f", v.Mean)
	}
	return fmt.Sprintf("%.2f ± %.2f", v.Mean, *v.Std)
}

func pm(s analysis.Stat) string { return fmt.Sprintf("%.2f ± %.2f", s.Mean, s.Std) }

// epochsCell is "400", or "380–400" when reruns differ.
func epochsCell(eps []int) string {
	lo, hi := eps[0], eps[0]
	for _, n := range eps {
		lo, hi = min(lo, n), max(hi, n)
	}
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

func writePenalizationMD(path string, s records.PenalizationSummary) error {
	var b strings.Builder
	title := "Test error over reruns"
	if s.Title != "" {
		title = s.Title + ": test error over reruns"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	base := s.Baseline
	for _, m := range s.Methods {
		if m.Method == s.Baseline {
			base = m.Label
		}
	}
	fmt.Fprintf(&b, "Mean ± population std over the last %d epochs of every rerun, pooled (the seed's plot_penalization). "+
		"Error %% = 100·(1 − accuracy); gap = train accuracy − test accuracy, in percentage points. "+
		"Paper: the published test error %%. Δ vs %s: the difference in test error from the run of %s with the same seed "+
		"(same initial weights and shuffles), averaged over the last %d epochs, mean ± standard error over the seeds.\n\n",
		s.LastK, mdEscape(base), mdEscape(base), s.LastK)
	fmt.Fprintf(&b, "| method | test error %% | paper | Δ vs %s (points) | train error %% | gap (points) | reruns | epochs |\n", mdEscape(base))
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range s.Methods {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d | %s |\n", mdEscape(m.Label), pm(m.TestError), paperCell(m.Paper), pairedCell(m),
			pm(m.TrainError), pm(m.Gap), m.Reruns, epochsCell(m.Epochs))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// pairedCell writes a method's paired difference from the baseline:
// "−0.12 ± 0.05 (3)" with the number of seeds, "–" for the baseline itself
// or where none could be formed.
func pairedCell(m records.MethodRow) string {
	if m.Paired == nil {
		return "–"
	}
	return fmt.Sprintf("%+.2f ± %.2f (%d)", m.Paired.Mean, m.Paired.StdErr, m.Paired.N)
}

func writePenalizationCSV(path string, s records.PenalizationSummary) error {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	rows := [][]string{{"method", "label", "reruns", "epochs_min", "epochs_max", "last_k",
		"test_error_mean", "test_error_std", "paper_test_error_mean", "paper_test_error_std",
		"train_error_mean", "train_error_std", "gap_mean", "gap_std",
		"baseline", "paired_diff_mean", "paired_diff_std", "paired_diff_stderr", "paired_seeds"}}
	for _, m := range s.Methods {
		pmean, pstd := "", ""
		if m.Paper != nil {
			pmean = f(m.Paper.Mean)
			if m.Paper.Std != nil {
				pstd = f(*m.Paper.Std)
			}
		}
		lo, hi := m.Epochs[0], m.Epochs[0]
		for _, n := range m.Epochs {
			lo, hi = min(lo, n), max(hi, n)
		}
		dmean, dstd, dse, dn := "", "", "", ""
		if m.Paired != nil {
			dmean, dstd, dse, dn = f(m.Paired.Mean), f(m.Paired.Std), f(m.Paired.StdErr), strconv.Itoa(m.Paired.N)
		}
		rows = append(rows, []string{m.Method, m.Label, strconv.Itoa(m.Reruns), strconv.Itoa(lo), strconv.Itoa(hi), strconv.Itoa(m.K),
			f(m.TestError.Mean), f(m.TestError.Std), pmean, pstd,
			f(m.TrainError.Mean), f(m.TrainError.Std), f(m.Gap.Mean), f(m.Gap.Std),
			s.Baseline, dmean, dstd, dse, dn})
	}
	return writeCSV(path, rows)
}

func writeCSV(path string, rows [][]string) error {
	var b strings.Builder
	w := csv.NewWriter(&b)
	if err := w.WriteAll(rows); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
