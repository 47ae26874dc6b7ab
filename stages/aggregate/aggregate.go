// Package aggregate is the aggregate stage kind: tables across runs — test
// error pooled over training reruns per method (table: penalization), or
// the distances between each layer's and the full network's spectral
// density (table: distances).
//
// Every table is written as table.md (for people), table.csv (for pandas)
// and summary.json (every number, for programs); distances also writes
// distances.csv, one row per run, layer and epoch. The same inputs always
// give the same bytes.
//
// penalization reads `runs`, train artifacts grouped into methods by the
// stage that produced them (or by the matrix value named by group_by):
//
//	table:
//	  kind: aggregate
//	  needs: {runs: ["sgd[*]", "l2[*]", "htr[*]"]}
//	  with:
//	    table: penalization
//	    labels: {sgd: SGD, l2: SGD + L2, htr: SGD + HTR}
//	    paper: {sgd: "5.43 ± 0.10", l2: "5.41 ± 0.16", htr: "4.78 ± 0.15"}
//
// distances reads `spectra`, lanczos artifacts of one or more runs, each
// with the full network and every layer at every epoch:
//
//	distances:
//	  kind: aggregate
//	  needs: {spectra: "spectrum[*]"}
//	  with: {table: distances, peak: min_total}
package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hessian-spectra/runner/analysis"
	"github.com/hessian-spectra/runner/stage"
)

// version is the kind's implementation version: bump it when the files
// written change meaning.
const version = 2

// Kind is the aggregate stage kind.
var Kind = &stage.Kind{
	Name:    "aggregate",
	Version: version,
	Light:   true,
	Doc:     "tables across runs: test error over reruns per method (penalization) or layer-vs-full spectral distances (distances)",
	Params: []stage.Param{
		{Name: "table", Type: stage.String, Required: true, Enum: []string{"penalization", "distances"},
			Doc: "which table: penalization (needs runs) or distances (needs spectra)"},
		{Name: "title", Type: stage.String, Default: "",
			Doc: "the table's heading; empty: Model+Dataset when all inputs agree"},
		{Name: "last_k", Type: stage.Int, Default: 10, Min: stage.Bound(1),
			Doc: "penalization: the last epochs of each rerun pooled (the seed's k)"},
		{Name: "baseline", Type: stage.String, Default: "",
			Doc: "penalization: the method the others are compared with seed by seed (paired differences); empty: the first"},
		{Name: "group_by", Type: stage.String, Default: "",
			Doc: "penalization: matrix key whose value names a run's method; empty: the producing stage's name"},
		{Name: "labels", Type: stage.Map, Elem: stage.String,
			Doc: "penalization: display name of each method, e.g. {sgd: SGD, htr: SGD + HTR}"},
		{Name: "paper", Type: stage.Map, Elem: stage.String,
			Doc: `penalization: the paper's test error % per method, "mean ± std" (or "mean +- std", or "mean")`},
		{Name: "peak", Type: stage.String, Default: analysis.PeakMinTotal, Enum: []string{analysis.PeakMinTotal, analysis.PeakSeed, analysis.PeakFixed},
			Doc: "distances: how the peak epoch e* is chosen: min_total (argmin over epochs of the total over layers), seed (the seed's hard-coded epochs), fixed (peak_epoch)"},
		{Name: "peak_epoch", Type: stage.Int, Min: stage.Bound(1),
			Doc: "distances: the peak epoch when peak is fixed (completed epochs, from 1)"},
	},
	Inputs: []stage.Input{
		{Name: "runs", Many: true, Optional: true, Doc: "train artifacts (penalization)"},
		{Name: "spectra", Many: true, Optional: true, Doc: "lanczos artifacts (distances)"},
	},
	Run: run,
}

func run(ctx context.Context, e *stage.Env) error {
	table := e.Params.String("table")
	var err error
	switch table {
	case "penalization":
		err = penalization(ctx, e)
	case "distances":
		err = distances(ctx, e)
	default:
		err = fmt.Errorf("unknown table %q", table)
	}
	if err != nil {
		return fmt.Errorf("%s table: %w", table, err)
	}
	return nil
}

// writeJSON writes v as indented JSON with a final newline. Struct fields
// keep their order and map keys are sorted, so the bytes are deterministic.
func writeJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// mdEscape makes s safe inside a Markdown table cell.
func mdEscape(s string) string {
	var buf bytes.Buffer
	for _, r := range s {
		if r == '|' {
			buf.WriteString(`\|`)
			continue
		}
		if r == '\n' {
			r = ' '
		}
		buf.WriteRune(r)
	}
	return buf.String()
}
