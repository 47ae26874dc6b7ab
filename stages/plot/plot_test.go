package plot

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

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
	e := &stage.Env{ID: "plot", Params: params(t, given), Inputs: inputs, OutDir: out, Log: &bytes.Buffer{}}
	return out, Kind.Call(context.Background(), e)
}

// files lists the files under dir, relative and sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// pngWidth decodes a PNG and returns its width in pixels.
func pngWidth(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg.Width
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	fa, fb := files(t, a), files(t, b)
	if strings.Join(fa, " ") != strings.Join(fb, " ") {
		t.Fatalf("file lists differ: %v vs %v", fa, fb)
	}
	for _, f := range fa {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs", f)
		}
	}
}

// spectraRun writes a run's spectra: full and two layers at three epochs,
// with a band on the full network's (probes > 1).
func spectraRun(t *testing.T, root, stageName, model string) []stage.Artifact {
	var arts []stage.Artifact
	for e := 1; e <= 3; e++ {
		for _, l := range []string{"full", "conv1.weight", "fc.weight"} {
			g, d := recordstest.Gaussian(float64(e), 1+float64(len(l))/10, 6, 256)
			var std []float64
			if l == "full" {
				std = make([]float64, len(d))
				for i := range d {
					std[i] = 0.2 * d[i]
				}
			}
			a, err := recordstest.Spectrum(root, stageName, nil, map[string]any{"layer": l, "epoch": e, "model": model, "dataset": "MNIST"}, g, d, std)
			if err != nil {
				t.Fatal(err)
			}
			arts = append(arts, a)
		}
	}
	return arts
}

func TestSpectra(t *testing.T) {
	root := t.TempDir()
	in := map[string][]stage.Artifact{"spectra": spectraRun(t, root, "spec", "LeNet")}
	given := map[string]any{"figure": "spectra", "dpi": 40, "width": 5}
	out, err := runKind(t, given, in)
	if err != nil {
		t.Fatal(err)
	}
	want := "training_eigvals_epochwise_layer_conv1.weight.png training_eigvals_epochwise_layer_conv1.weight.svg " +
		"training_eigvals_epochwise_layer_fc.weight.png training_eigvals_epochwise_layer_fc.weight.svg"
	if got := strings.Join(files(t, out), " "); got != want {
		t.Errorf("files %s, want %s", got, want)
	}
	if w := pngWidth(t, filepath.Join(out, "training_eigvals_epochwise_layer_fc.weight.png")); w != 200 {
		t.Errorf("PNG width %d, want 5 in × 40 dpi = 200", w)
	}
	svg, _ := os.ReadFile(filepath.Join(out, "training_eigvals_epochwise_layer_conv1.weight.svg"))
	for _, s := range []string{"conv1.weight · epoch 3", "full · epoch 3", "LeNet+MNIST · conv1.weight"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	again, err := runKind(t, given, in)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, out, again)

	// Two runs: a folder each.
	in["spectra"] = append(in["spectra"], spectraRun(t, root, "spec2", "VGG11_bn")...)
	out, err = runKind(t, map[string]any{"figure": "spectra", "dpi": 20, "formats": []any{"png"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	fs := files(t, out)
	if len(fs) != 4 || fs[0] != "LeNet+MNIST/training_eigvals_epochwise_layer_conv1.weight.png" || fs[3] != "VGG11_bn+MNIST/training_eigvals_epochwise_layer_fc.weight.png" {
		t.Errorf("files for two runs: %v", fs)
	}
}

func TestSpectraErrors(t *testing.T) {
	root := t.TempDir()
	arts := spectraRun(t, root, "spec", "LeNet")
	var noFull, noEpoch2Full []stage.Artifact
	for _, a := range arts {
		s, _ := summary.Read(a.Dir)
		if s.Layer != "full" {
			noFull = append(noFull, a)
		}
		if s.Layer != "full" || *s.Epoch != 2 {
			noEpoch2Full = append(noEpoch2Full, a)
		}
	}
	for name, c := range map[string]struct {
		arts []stage.Artifact
		want string
	}{
		"none":          {nil, "no spectra"},
		"no full":       {noFull, "no full-network spectra"},
		"full missing2": {noEpoch2Full, "conv1.weight has a spectrum at epoch 2 but the full network has none"},
	} {
		_, err := runKind(t, map[string]any{"figure": "spectra", "dpi": 20}, map[string][]stage.Artifact{"spectra": c.arts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestCurves(t *testing.T) {
	root := t.TempDir()
	var arts []stage.Artifact
	for _, m := range []string{"sgd", "htr"} {
		for s := range 2 {
			var eps []recordstest.Epoch
			for e := 1; e <= 5; e++ {
				x := float64(e)
				eps = append(eps, recordstest.Epoch{LR: 0.01, TrainLoss: math.Exp(-x), TrainAcc: 1 - 0.5*math.Exp(-x), TestLoss: 0.2 + math.Exp(-x), TestAcc: 0.9 - 0.5*math.Exp(-x), Penalty: math.NaN()})
			}
			a, err := recordstest.Train(root, m+"[seed="+string(rune('0'+s))+"]", nil, "LeNet", "MNIST", s, eps)
			if err != nil {
				t.Fatal(err)
			}
			arts = append(arts, a)
		}
	}
	in := map[string][]stage.Artifact{"runs": arts}
	given := map[string]any{"figure": "curves", "dpi": 30, "labels": map[string]any{"htr": "SGD + HTR"}}
	out, err := runKind(t, given, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(files(t, out), " "); got != "curves.png curves.svg" {
		t.Errorf("files %s", got)
	}
	svg, _ := os.ReadFile(filepath.Join(out, "curves.svg"))
	for _, s := range []string{"LeNet+MNIST", "SGD + HTR (2 reruns)", "sgd (2 reruns)", "test accuracy"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	again, err := runKind(t, given, in)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, out, again)

	// One method: a legend entry per rerun, named by seed.
	out, err = runKind(t, map[string]any{"figure": "curves", "dpi": 30, "formats": []any{"svg"}}, map[string][]stage.Artifact{"runs": arts[:2]})
	if err != nil {
		t.Fatal(err)
	}
	svg, _ = os.ReadFile(filepath.Join(out, "curves.svg"))
	for _, s := range []string{"LeNet+MNIST · sgd", "seed 0", "seed 1"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("one-method SVG lacks %q", s)
		}
	}
	if _, err := runKind(t, map[string]any{"figure": "curves", "labels": map[string]any{"l2": "x"}}, in); err == nil || !strings.Contains(err.Error(), `"l2"`) {
		t.Errorf("label for an absent method: %v", err)
	}
}

func distancesArtifact(t *testing.T, table string) stage.Artifact {
	var s records.DistanceSummary
	s.Table, s.Title = table, "three runs"
	s.Peak.Rule = "min_total"
	for i, name := range []string{"LeNet+MNIST", "VGG11_bn+MNIST", "ResNet18+SVHN"} {
		n := 3 + 4*i
		r := records.RunDistances{Label: name, Layers: make([]string, n), Positions: make([]float64, n)}
		for _, m := range []*records.MetricDistances{&r.Seed, &r.W1} {
			m.TotalNorm, m.AtPeakNorm, m.PeakEpoch = make([]float64, n), make([]float64, n), 10+i
			for l := range n {
				r.Layers[l] = "layer"
				r.Positions[l] = float64(l) / float64(n-1)
				m.TotalNorm[l] = 1 - 0.5*math.Sin(math.Pi*r.Positions[l])
				m.AtPeakNorm[l] = 1 - 0.7*math.Sin(math.Pi*r.Positions[l])
			}
		}
		s.Runs = append(s.Runs, r)
	}
	dir := t.TempDir()
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return stage.Artifact{Dir: dir, Stage: "distances"}
}

func TestMatchDistros(t *testing.T) {
	in := map[string][]stage.Artifact{"distances": {distancesArtifact(t, "distances")}}
	out, err := runKind(t, map[string]any{"figure": "match_distros", "dpi": 30}, in)
	if err != nil {
		t.Fatal(err)
	}
	want := "match_distros_eigval_peak.png match_distros_eigval_peak.svg match_distros_eigval_wasserstein.png match_distros_eigval_wasserstein.svg " +
		"match_distros_peak.png match_distros_peak.svg match_distros_wasserstein.png match_distros_wasserstein.svg"
	if got := strings.Join(files(t, out), " "); got != want {
		t.Errorf("files %s, want %s", got, want)
	}
	svg, _ := os.ReadFile(filepath.Join(out, "match_distros_peak.svg"))
	if !bytes.Contains(svg, []byte("VGG11_bn+MNIST (e* = 11)")) {
		t.Error("peak figure's legend lacks the run's peak epoch")
	}
	out, err = runKind(t, map[string]any{"figure": "match_distros", "dpi": 30, "metric": "seed", "formats": []any{"png"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(files(t, out), " "); got != "match_distros_peak.png match_distros_wasserstein.png" {
		t.Errorf("seed metric only: files %s", got)
	}
	in["distances"] = []stage.Artifact{distancesArtifact(t, "penalization")}
	if _, err := runKind(t, map[string]any{"figure": "match_distros"}, in); err == nil || !strings.Contains(err.Error(), "want distances") {
		t.Errorf("penalization summary as distances: %v", err)
	}
	if _, err := runKind(t, map[string]any{"figure": "match_distros"}, nil); err == nil || !strings.Contains(err.Error(), `input "distances" is not bound`) {
		t.Errorf("no distances input: %v", err)
	}
}

func TestKindRegisters(t *testing.T) {
	stage.Registry{}.Register(Kind) // panics on an invalid schema
}
