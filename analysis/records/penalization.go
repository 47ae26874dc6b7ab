package records

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hessian-spectra/runner/analysis"
)

// PenalizationSummary is the summary.json of an aggregate stage with table
// penalization: one row per training method.
type PenalizationSummary struct {
	Table string `json:"table"`
	Title string `json:"title"`
	LastK int    `json:"last_k"`
	// Baseline is the method the others are compared with, seed by seed.
	Baseline string      `json:"baseline"`
	Methods  []MethodRow `json:"methods"`
}

// MethodRow is one method's reruns pooled: test and train error and the gap
// (in %, mean ± population std over reruns × last k epochs), beside the
// paper's number when one was given.
type MethodRow struct {
	// Method is the group's name (a stage name or a matrix value); Label
	// its display name.
	Method string `json:"method"`
	Label  string `json:"label"`
	// Runs are the stage ids of the reruns, Epochs their epoch counts.
	Runs   []string `json:"runs"`
	Epochs []int    `json:"epochs"`
	analysis.Penalization
	// Paper is the published test error %, or nil.
	Paper *PaperValue `json:"paper"`
	// Paired compares the method with the baseline over the seeds both ran
	// (nil for the baseline, and where fewer than two seeds are shared).
	Paired *analysis.Paired `json:"paired"`
}

// PaperValue is a published test error %: a mean and, when published, a std.
type PaperValue struct {
	Mean float64  `json:"mean"`
	Std  *float64 `json:"std"`
}

// ReadPenalizationSummary reads the summary.json of a penalization table.
func ReadPenalizationSummary(path string) (*PenalizationSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s PenalizationSummary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Table != "penalization" {
		return nil, fmt.Errorf("%s: table %q, want penalization (is this a penalization aggregate?)", path, s.Table)
	}
	return &s, nil
}
