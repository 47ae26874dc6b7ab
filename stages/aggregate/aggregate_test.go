package aggregate

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/analysis"
	"github.com/hessian-spectra/runner/analysis/records"
	"github.com/hessian-spectra/runner/analysis/records/recordstest"
	"github.com/hessian-spectra/runner/stage"
	"github.com/hessian-spectra/runner/stages/lanczos/summary"
)

// params converts given params as the runner does (stage.Kind.Resolve).
func params(t *testing.T, given map[string]any) stage.Params {
	t.Helper()
	p, err := Kind.Resolve(given)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runKind(t *testing.T, given map[string]any, inputs map[string][]stage.Artifact) (string, error) {
	t.Helper()
	out := t.TempDir()
	var log bytes.Buffer
	e := &stage.Env{ID: "agg", Params: params(t, given), Inputs: inputs, OutDir: out, Log: &log}
	return out, Kind.Call(context.Background(), e)
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// trainRun writes a run whose last epochs have the given accuracies,
// preceded by one poor epoch that last_k = 2 must leave out.
func trainRun(t *testing.T, root, id string, matrix map[string]any, train, test []float64) stage.Artifact {
	t.Helper()
	eps := []recordstest.Epoch{{LR: 0.01, TrainLoss: 2, TrainAcc: 0.1, TestLoss: 2, TestAcc: 0.1, Penalty: math.NaN()}}
	for i := range train {
		eps = append(eps, recordstest.Epoch{LR: 0.01, TrainLoss: 0.1, TrainAcc: train[i], TestLoss: 0.3, TestAcc: test[i], Penalty: math.NaN()})
	}
	seed, _ := matrix["seed"].(int) // the run's seed, as meta.json records it
	a, err := recordstest.Train(root, id, matrix, "LeNet", "FashionMNIST", seed, eps)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func penalizationInputs(t *testing.T) []stage.Artifact {
	root := t.TempDir()
	return []stage.Artifact{
		trainRun(t, root, "sgd[seed=0]", map[string]any{"seed": 0}, []float64{0.95, 0.97}, []float64{0.90, 0.92}),
		trainRun(t, root, "sgd[seed=1]", map[string]any{"seed": 1}, []float64{0.99, 0.99}, []float64{0.94, 0.96}),
		trainRun(t, root, "htr[seed=0]", map[string]any{"seed": 0}, []float64{0.98, 0.98}, []float64{0.95, 0.95}),
		trainRun(t, root, "htr[seed=1]", map[string]any{"seed": 1}, []float64{0.96, 0.96}, []float64{0.95, 0.95}),
	}
}

func TestPenalization(t *testing.T) {
	given := map[string]any{
		"table": "penalization", "last_k": 2,
		"labels": map[string]any{"sgd": "SGD", "htr": "SGD + HTR"},
		"paper":  map[string]any{"sgd": "5.43 ± 0.10", "htr": "4.78"},
	}
	in := map[string][]stage.Artifact{"runs": penalizationInputs(t)}
	out, err := runKind(t, given, in)
	if err != nil {
		t.Fatal(err)
	}
	// By hand, SGD: test acc .90 .92 .94 .96 → error 7 ± √5 = 2.236;
	// train acc .95 .97 .99 .99 → error 2.5 ± √2.75 = 1.658; gaps 5 5 5 3
	// → 4.5 ± √0.75 = 0.866. HTR: test .95 ×4 → 5 ± 0; train .98 .98 .96
	// .96 → 3 ± 1; gaps 3 3 1 1 → 2 ± 1. Paired by seed, HTR − SGD test
	// error over the last 2 epochs: seed 0: 5 − 9 = −4, seed 1: 5 − 5 = 0;
	// mean −2, sample std √8 = 2.8284, standard error √8/√2 = 2.
	want := "# LeNet+FashionMNIST: test error over reruns\n\n" +
		"Mean ± population std over the last 2 epochs of every rerun, pooled (the seed's plot_penalization). " +
		"Error % = 100·(1 − accuracy); gap = train accuracy − test accuracy, in percentage points. " +
		"Paper: the published test error %. Δ vs SGD: the difference in test error from the run of SGD with the same seed " +
		"(same initial weights and shuffles), averaged over the last 2 epochs, mean ± standard error over the seeds.\n\n" +
		"| method | test error % | paper | Δ vs SGD (points) | train error % | gap (points) | reruns | epochs |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| SGD | 7.00 ± 2.24 | 5.43 ± 0.10 | – | 2.50 ± 1.66 | 4.50 ± 0.87 | 2 | 3 |\n" +
		"| SGD + HTR | 5.00 ± 0.00 | 4.78 | -2.00 ± 2.00 (2) | 3.00 ± 1.00 | 2.00 ± 1.00 | 2 | 3 |\n"
	if got := read(t, out, "table.md"); got != want {
		t.Errorf("table.md:\n%s\nwant:\n%s", got, want)
	}
	wantCSV := "method,label,reruns,epochs_min,epochs_max,last_k,test_error_mean,test_error_std,paper_test_error_mean,paper_test_error_std,train_error_mean,train_error_std,gap_mean,gap_std," +
		"baseline,paired_diff_mean,paired_diff_std,paired_diff_stderr,paired_seeds\n" +
		"sgd,SGD,2,3,3,2,7.0000,2.2361,5.4300,0.1000,2.5000,1.6583,4.5000,0.8660,sgd,,,,\n" +
		"htr,SGD + HTR,2,3,3,2,5.0000,0.0000,4.7800,,3.0000,1.0000,2.0000,1.0000,sgd,-2.0000,2.8284,2.0000,2\n"
	if got := read(t, out, "table.csv"); got != wantCSV {
		t.Errorf("table.csv:\n%s\nwant:\n%s", got, wantCSV)
	}
	sum, err := records.ReadPenalizationSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Methods) != 2 || !(math.Abs(sum.Methods[0].TestError.Std-math.Sqrt(5)) <= 1e-9) || sum.Methods[0].TestError.N != 4 ||
		strings.Join(sum.Methods[1].Runs, " ") != "htr[seed=0] htr[seed=1]" || sum.Methods[1].Paper.Std != nil {
		t.Errorf("summary.json = %+v", sum)
	}

	// The same inputs give the same bytes.
	again, err := runKind(t, given, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"table.md", "table.csv", "summary.json"} {
		if read(t, out, f) != read(t, again, f) {
			t.Errorf("%s differs between two runs", f)
		}
	}
}

func TestPenalizationGroupBy(t *testing.T) {
	root := t.TempDir()
	in := map[string][]stage.Artifact{"runs": {
		trainRun(t, root, "train[method=l2,seed=0]", map[string]any{"method": "l2", "seed": 0}, []float64{1, 1}, []float64{0.9, 0.8}),
		trainRun(t, root, "train[method=sgd,seed=0]", map[string]any{"method": "sgd", "seed": 0}, []float64{1, 1}, []float64{0.7, 0.7}),
		trainRun(t, root, "train[method=l2,seed=1]", map[string]any{"method": "l2", "seed": 1}, []float64{1, 1}, []float64{0.9, 0.8}),
	}}
	out, err := runKind(t, map[string]any{"table": "penalization", "last_k": 1, "group_by": "method", "title": "T"}, in)
	if err != nil {
		t.Fatal(err)
	}
	md := read(t, out, "table.md")
	// l2: last test acc 0.8 twice → 20 ± 0; sgd: 0.7 → 30 ± 0.
	// l2 comes first, so it is the baseline; sgd shares one seed with it, too
	// few for a paired difference.
	for _, row := range []string{"| l2 | 20.00 ± 0.00 | – | – | 0.00 ± 0.00 | 20.00 ± 0.00 | 2 | 3 |", "| sgd | 30.00 ± 0.00 | – | – |"} {
		if !strings.Contains(md, row) {
			t.Errorf("table.md lacks %q:\n%s", row, md)
		}
	}
	if !strings.HasPrefix(md, "# T: test error") {
		t.Errorf("title not used: %q", md[:40])
	}
}

func TestPenalizationErrors(t *testing.T) {
	in := map[string][]stage.Artifact{"runs": penalizationInputs(t)}
	for name, c := range map[string]struct {
		given  map[string]any
		inputs map[string][]stage.Artifact
		want   string
	}{
		"no runs":       {map[string]any{"table": "penalization"}, nil, "no training runs"},
		"too few":       {map[string]any{"table": "penalization", "last_k": 5}, in, "method sgd (sgd[seed=0], sgd[seed=1]): rerun 0 has 3 epochs, fewer than the last 5"},
		"paper typo":    {map[string]any{"table": "penalization", "last_k": 2, "paper": map[string]any{"hrt": "1"}}, in, `paper names "hrt", which is no method among the inputs (htr, sgd)`},
		"paper garbled": {map[string]any{"table": "penalization", "last_k": 2, "paper": map[string]any{"htr": "about 5"}}, in, `paper htr: "about 5" is not`},
		"group key":     {map[string]any{"table": "penalization", "group_by": "method"}, in, `no matrix value "method"`},
		"baseline":      {map[string]any{"table": "penalization", "last_k": 2, "baseline": "sdg"}, in, `baseline "sdg" is no method among the inputs (htr, sgd)`},
	} {
		_, err := runKind(t, c.given, c.inputs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestParsePaper(t *testing.T) {
	for s, want := range map[string][2]float64{
		"5.43 ± 0.10": {5.43, 0.10}, "19.38±0.5": {19.38, 0.5}, "1.00 +- 0.05": {1, 0.05}, " 30.44 +/- 1.68 %": {30.44, 1.68}, "4.78": {4.78, -1},
	} {
		v, err := parsePaper(s)
		if err != nil || v.Mean != want[0] || (want[1] < 0) != (v.Std == nil) || (v.Std != nil && *v.Std != want[1]) {
			t.Errorf("parsePaper(%q) = %+v, %v", s, v, err)
		}
	}
}

// spectrum writes one lanczos artifact of a LeNet+MNIST run.
func spectrum(t *testing.T, root, layer string, epoch int, grid, dens []float64) stage.Artifact {
	t.Helper()
	a, err := recordstest.Spectrum(root, "spec", nil, map[string]any{"layer": layer, "epoch": epoch, "model": "LeNet", "dataset": "MNIST", "probes": 1}, grid, dens, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// shiftedSpectra gives a run whose full density is N(0, 1) and whose layer
// densities are N(μ, 1) on grids shifted by μ, so that the seed metric (which
// sees only density values) is exactly 0 and W1 = |μ| in closed form.
func shiftedSpectra(t *testing.T, mu map[string][]float64, layers []string) []stage.Artifact {
	root := t.TempDir()
	var arts []stage.Artifact
	fg, fd := recordstest.Gaussian(0, 1, 8, 1024)
	for e := 1; e <= len(mu[layers[0]]); e++ {
		arts = append(arts, spectrum(t, root, "full", e, fg, fd))
		for _, l := range layers {
			g, d := recordstest.Gaussian(mu[l][e-1], 1, 8, 1024)
			arts = append(arts, spectrum(t, root, l, e, g, d))
		}
	}
	return arts
}

var testLayers = []string{"conv1.weight", "conv2.weight", "fc1.weight"}

var testMu = map[string][]float64{
	"conv1.weight": {3, 2, 1},
	"conv2.weight": {1, 0.5, 1},
	"fc1.weight":   {2, 1, 2},
}

func TestDistancesW1(t *testing.T) {
	in := map[string][]stage.Artifact{"spectra": shiftedSpectra(t, testMu, testLayers)}
	out, err := runKind(t, map[string]any{"table": "distances"}, in)
	if err != nil {
		t.Fatal(err)
	}
	s, err := records.ReadDistanceSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Runs) != 1 || s.Title != "LeNet+MNIST" {
		t.Fatalf("summary: %d runs, title %q", len(s.Runs), s.Title)
	}
	r := s.Runs[0]
	if strings.Join(r.Layers, " ") != strings.Join(testLayers, " ") || r.Positions[1] != 0.5 {
		t.Errorf("layers %v positions %v", r.Layers, r.Positions)
	}
	// W1 totals 6, 2.5, 5; epoch totals 6, 3.5, 4 → e* = 2 with values
	// 2, 0.5, 1.
	const tol = 2e-3
	check := func(what string, got, want []float64) {
		for i := range want {
			if !(math.Abs(got[i]-want[i]) <= tol) {
				t.Errorf("%s = %v, want %v", what, got, want)
				return
			}
		}
	}
	check("W1 per epoch conv1", r.W1.PerEpoch[0], testMu["conv1.weight"])
	check("W1 total", r.W1.Total, []float64{6, 2.5, 5})
	check("W1 total/max", r.W1.TotalNorm, []float64{1, 2.5 / 6, 5.0 / 6})
	check("W1 epoch totals", r.W1.EpochTotal, []float64{6, 3.5, 4})
	check("W1 at e*", r.W1.AtPeak, []float64{2, 0.5, 1})
	check("W1 at e*/max", r.W1.AtPeakNorm, []float64{1, 0.25, 0.5})
	if r.W1.PeakEpoch != 2 {
		t.Errorf("W1 peak epoch %d, want 2", r.W1.PeakEpoch)
	}
	// The seed metric cannot tell a shifted density from the original.
	check("seed total", r.Seed.Total, []float64{0, 0, 0})
	if r.Seed.PeakEpoch != 1 {
		t.Errorf("seed peak epoch %d, want 1 (all tied, earliest)", r.Seed.PeakEpoch)
	}

	csv := read(t, out, "distances.csv")
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 1+3*3 || lines[0] != "run,model,dataset,layer,depth,position,epoch,seed_metric,w1" ||
		!strings.HasPrefix(lines[4], "LeNet+MNIST,LeNet,MNIST,conv2.weight,2,0.5,1,0.0,") {
		t.Errorf("distances.csv:\n%s", csv)
	}
	md := read(t, out, "table.md")
	for _, want := range []string{"## LeNet+MNIST", "e* = 1 by the seed metric, 2 by W1", "| conv2.weight | 0.500 | 0.000 | 0.000 | 0.417 | 0.250 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("table.md lacks %q:\n%s", want, md)
		}
	}
	tab := strings.Split(read(t, out, "table.csv"), "\n")
	if !strings.HasPrefix(tab[0], "run,layer,depth,position,seed_total") || !strings.HasPrefix(tab[3], "LeNet+MNIST,fc1.weight,3,1.0,0.0,0.0,1,") {
		t.Errorf("table.csv:\n%s", strings.Join(tab, "\n"))
	}

	again, err := runKind(t, map[string]any{"table": "distances"}, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"table.md", "table.csv", "summary.json", "distances.csv"} {
		if read(t, out, f) != read(t, again, f) {
			t.Errorf("%s differs between two runs", f)
		}
	}
}

func TestDistancesSeedMetric(t *testing.T) {
	// Layer densities of another shape than the full one: a mixture whose
	// second bump grows with the epoch. The stage must pair each layer with
	// the full density of the same epoch.
	root := t.TempDir()
	fg, fd := recordstest.Gaussian(0, 1, 8, 1024)
	var arts []stage.Artifact
	layer := map[int][2][]float64{}
	for e := 1; e <= 4; e++ {
		arts = append(arts, spectrum(t, root, "full", e, fg, fd))
		g, d := recordstest.Gaussian(1, 1, 8, 1024)
		for i := range d {
			z := (g[i] - 3) / 0.5
			d[i] = (1-0.1*float64(e))*d[i] + 0.1*float64(e)*math.Exp(-z*z/2)/(0.5*math.Sqrt(2*math.Pi))
		}
		layer[e] = [2][]float64{g, d}
		arts = append(arts, spectrum(t, root, "fc3.weight", e, g, d))
	}
	out, err := runKind(t, map[string]any{"table": "distances", "peak": "fixed", "peak_epoch": 3}, map[string][]stage.Artifact{"spectra": arts})
	if err != nil {
		t.Fatal(err)
	}
	s, err := records.ReadDistanceSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Runs[0]
	for e := 1; e <= 4; e++ {
		seed, _ := analysis.SeedDistance(fd, layer[e][1])
		w1, _ := analysis.DensityW1(fg, fd, layer[e][0], layer[e][1])
		if r.Seed.PerEpoch[0][e-1] != seed || r.W1.PerEpoch[0][e-1] != w1 {
			t.Errorf("epoch %d: seed %v, W1 %v; want %v, %v", e, r.Seed.PerEpoch[0][e-1], r.W1.PerEpoch[0][e-1], seed, w1)
		}
	}
	// The mixture's mean is 1 + 2·0.1e: W1 ≥ |mean difference|.
	if !(r.W1.PerEpoch[0][3] >= 1+0.8-1e-3) {
		t.Errorf("W1 at epoch 4 = %v, below the mean difference 1.8", r.W1.PerEpoch[0][3])
	}
	if r.Seed.PeakEpoch != 3 || r.W1.PeakEpoch != 3 || s.Peak.Rule != "fixed" || s.Peak.Epoch != 3 {
		t.Errorf("peak %+v, epochs %d %d; want fixed 3", s.Peak, r.Seed.PeakEpoch, r.W1.PeakEpoch)
	}
}

func TestDistancesErrors(t *testing.T) {
	arts := shiftedSpectra(t, testMu, testLayers)
	noFull := []stage.Artifact{}
	for _, a := range arts {
		if s, _ := summary.Read(a.Dir); s.Layer != "full" {
			noFull = append(noFull, a)
		}
	}
	for name, c := range map[string]struct {
		given map[string]any
		arts  []stage.Artifact
		want  string
	}{
		"no spectra":       {map[string]any{"table": "distances"}, nil, "no spectra"},
		"missing spectrum": {map[string]any{"table": "distances"}, arts[:len(arts)-1], "no spectrum for fc1.weight at epoch 3"},
		"no full":          {map[string]any{"table": "distances"}, noFull, "no full-network spectra"},
		"fixed without":    {map[string]any{"table": "distances", "peak": "fixed"}, arts, "peak: fixed needs peak_epoch"},
		"seed too short":   {map[string]any{"table": "distances", "peak": "seed"}, arts, "no distances at epoch 19"},
	} {
		_, err := runKind(t, c.given, map[string][]stage.Artifact{"spectra": c.arts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestKindRegisters(t *testing.T) {
	stage.Registry{}.Register(Kind) // panics on an invalid schema
}
