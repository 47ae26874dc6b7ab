// Package recordstest writes synthetic train and lanczos artifacts in the
// formats of docs/ARTIFACTS.md, for tests of the code that reads them.
package recordstest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/npz"
	"github.com/hessian-spectra/runner/stage"
)

// Epoch is one row of a synthetic metrics.csv. A NaN Penalty is written as an
// empty cell.
type Epoch struct {
	LR, TrainLoss, TrainAcc, TestLoss, TestAcc, Penalty float64
}

// Train writes a train artifact into a new directory under root: a
// metrics.csv with one row per entry of epochs (epoch numbers from 1), and a
// meta.json with model, dataset, epochs and seed. It returns the artifact as
// a stage sees it, produced by stage instance id with the given matrix values.
func Train(root, id string, matrix map[string]any, model, dataset string, seed int, epochs []Epoch) (stage.Artifact, error) {
	dir, err := os.MkdirTemp(root, "train")
	if err != nil {
		return stage.Artifact{}, err
	}
	var b strings.Builder
	b.WriteString("epoch,lr,train_loss,train_acc,test_loss,test_acc,penalty\n")
	for i, e := range epochs {
		pen := ""
		if !math.IsNaN(e.Penalty) {
			pen = f(e.Penalty)
		}
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s,%s,%s\n", i+1, f(e.LR), f(e.TrainLoss), f(e.TrainAcc), f(e.TestLoss), f(e.TestAcc), pen)
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.csv"), []byte(b.String()), 0o644); err != nil {
		return stage.Artifact{}, err
	}
	meta := map[string]any{"model": model, "dataset": dataset, "epochs": len(epochs), "seed": seed, "params": map[string]any{"seed": seed}}
	if err := writeJSON(filepath.Join(dir, "meta.json"), meta); err != nil {
		return stage.Artifact{}, err
	}
	return stage.Artifact{Dir: dir, Stage: id, Matrix: matrix}, nil
}

// Spectrum writes a lanczos artifact into a new directory under root: a
// spectrum.npz with eigval, eigval_density and density_std (zeros when std is
// nil), and a summary.json holding summary (layer, model, epoch, ...).
func Spectrum(root, id string, matrix map[string]any, summary map[string]any, grid, density, std []float64) (stage.Artifact, error) {
	dir, err := os.MkdirTemp(root, "lanczos")
	if err != nil {
		return stage.Artifact{}, err
	}
	if std == nil {
		std = make([]float64, len(grid))
	}
	arrays := []npz.Named{
		{Name: "eigval", Array: &npz.Array{Shape: []int{len(grid)}, Data: grid}},
		{Name: "eigval_density", Array: &npz.Array{Shape: []int{len(density)}, Data: density}},
		{Name: "density_std", Array: &npz.Array{Shape: []int{len(std)}, Data: std}},
	}
	if err := npz.WriteFile(filepath.Join(dir, "spectrum.npz"), arrays); err != nil {
		return stage.Artifact{}, err
	}
	if err := writeJSON(filepath.Join(dir, "summary.json"), summary); err != nil {
		return stage.Artifact{}, err
	}
	return stage.Artifact{Dir: dir, Stage: id, Matrix: matrix}, nil
}

// Gaussian returns n grid points spanning mu ± width·sigma and the
// N(mu, sigma²) density on them.
func Gaussian(mu, sigma, width float64, n int) (grid, density []float64) {
	grid, density = make([]float64, n), make([]float64, n)
	for i := range grid {
		grid[i] = mu - width*sigma + 2*width*sigma*float64(i)/float64(n-1)
		z := (grid[i] - mu) / sigma
		density[i] = math.Exp(-z*z/2) / (sigma * math.Sqrt(2*math.Pi))
	}
	return grid, density
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
