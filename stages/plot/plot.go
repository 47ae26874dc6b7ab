// Package plot is the plot stage kind: the runner's figures, as PNG and SVG
// files named after the figure.
//
// figure: spectra draws, for each layer of each run in `spectra` (lanczos
// artifacts), a grid with a row per epoch — the layer Hessian's density on
// the left, the full Hessian's on the right — written as
// training_eigvals_epochwise_layer_<layer>.{png,svg} (in a folder per run
// when there are several runs).
//
// figure: curves draws loss and accuracy, train and test, one line per
// training run in `runs` (train artifacts), grouped into methods as the
// aggregate kind groups them: curves.{png,svg}.
//
// figure: match_distros draws the seed's two summary figures from the
// summary.json of an aggregate distances table bound to `distances`:
// match_distros_wasserstein (D(l)/max over layers, distances summed over
// training) and match_distros_peak (d(l,e*)/max at the peak epoch), with the
// seed's metric; match_distros_eigval_wasserstein and
// match_distros_eigval_peak are the same with the Wasserstein-1 distance on
// the eigenvalue axis.
package plot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hessian-spectra/runner/plots"
	"github.com/hessian-spectra/runner/stage"
	"gonum.org/v1/plot/vg"
)

// version is the kind's implementation version: bump it when the figures
// change.
const version = 3

// Kind is the plot stage kind.
var Kind = &stage.Kind{
	Name:    "plot",
	Version: version,
	Light:   true,
	Doc:     "figures as PNG and SVG: per-layer spectral-density grids (spectra), training curves (curves), layer-vs-full distance profiles (match_distros)",
	Params: []stage.Param{
		{Name: "figure", Type: stage.String, Required: true, Enum: []string{"spectra", "curves", "match_distros"},
			Doc: "which figure: spectra (needs spectra), curves (needs runs), match_distros (needs distances)"},
		{Name: "formats", Type: stage.List, Elem: stage.String, Enum: plots.Formats, Default: plots.Formats,
			Doc: "file formats to write"},
		{Name: "dpi", Type: stage.Int, Default: 100, Min: stage.Bound(20), Max: stage.Bound(600),
			Doc: "resolution of PNG files"},
		{Name: "width", Type: stage.Float, Default: 0.0, Min: stage.Bound(0), Max: stage.Bound(100),
			Doc: "figure width in inches; 0: the figure's own (8 for spectra, 10 for curves, 9 for match_distros)"},
		{Name: "title", Type: stage.String, Default: "",
			Doc: "heading; empty: the run's Model+Dataset where known"},
		{Name: "log_y", Type: stage.Bool, Default: true,
			Doc: "spectra: log density axis; curves: log loss axis"},
		{Name: "floor", Type: stage.Float, Default: 1e-12, Min: stage.Bound(1e-300), Max: stage.Bound(0.5),
			Doc: "spectra with log_y: densities below floor × the axis maximum (zeros among them) are drawn at that floor"},
		{Name: "share", Type: stage.String, Default: plots.ShareColumn, Enum: []string{plots.ShareColumn, plots.ShareRow, plots.ShareNone},
			Doc: "spectra: panels with common axes: column (each Hessian over all epochs), row (layer and full of one epoch), none"},
		{Name: "group_by", Type: stage.String, Default: "",
			Doc: "curves: matrix key whose value names a run's method; empty: the producing stage's name"},
		{Name: "labels", Type: stage.Map, Elem: stage.String,
			Doc: "curves: display name of each method, e.g. {sgd: SGD, htr: SGD + HTR}"},
		{Name: "metric", Type: stage.String, Default: "both", Enum: []string{"seed", "w1", "both"},
			Doc: "match_distros: the seed's metric, the eigenvalue-axis W1, or both"},
	},
	Inputs: []stage.Input{
		{Name: "spectra", Many: true, Optional: true, Doc: "lanczos artifacts (spectra)"},
		{Name: "runs", Many: true, Optional: true, Doc: "train artifacts (curves)"},
		{Name: "distances", Optional: true, Doc: "an aggregate artifact with table distances (match_distros)"},
	},
	Run: run,
}

// style holds the params every figure uses.
type style struct {
	formats []string
	dpi     int
	width   vg.Length
	title   string
}

func run(ctx context.Context, e *stage.Env) error {
	st := style{
		formats: e.Params.Strings("formats"),
		dpi:     e.Params.Int("dpi"),
		width:   vg.Length(e.Params.Float("width")) * vg.Inch,
		title:   e.Params.String("title"),
	}
	if len(st.formats) == 0 {
		return errors.New("formats is empty; want png, svg or both")
	}
	figure := e.Params.String("figure")
	var files []string
	var err error
	switch figure {
	case "spectra":
		files, err = spectra(ctx, e, st)
	case "curves":
		files, err = curves(e, st)
	case "match_distros":
		files, err = matchDistros(e, st)
	default:
		err = fmt.Errorf("unknown figure %q", figure)
	}
	if err != nil {
		return fmt.Errorf("%s figure: %w", figure, err)
	}
	e.Logf("wrote %s", strings.Join(files, ", "))
	return nil
}

// save writes f in every format and adds the file names to files.
func save(e *stage.Env, st style, f *plots.Figure, name string, files *[]string) error {
	written, err := f.Save(e.OutDir, name, st.dpi, st.formats)
	*files = append(*files, written...)
	return err
}

// fileSafe replaces the characters of s that are awkward in file names.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '+', r == '=':
			return r
		}
		return '_'
	}, s)
}
