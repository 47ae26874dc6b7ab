// Package summary defines a lanczos artifact's summary.json
// (docs/ARTIFACTS.md) in one place: the lanczos stage writes it with Write
// and reads it back to reuse a cached run; the tables and figures
// (analysis/records) read it with Read.
//
// It imports no GoMLX, so that its readers stay light.
package summary

import (
	"encoding/json"
	"path/filepath"

	"github.com/hessian-spectra/runner/internal/jsonfile"
)

// The files of a lanczos artifact.
const (
	// File is summary.json.
	File = "summary.json"
	// SpectrumFile holds the arrays: the density on its grid, each
	// probe's recurrence, the top eigenvalues and the trace samples.
	SpectrumFile = "spectrum.npz"
)

// Summary is the content of summary.json. The fields are written in this
// order; the lanczos stage's digests depend on it.
type Summary struct {
	// Layer is "full" or a parameter name; Dim its dimension.
	Layer string `json:"layer"`
	Dim   int    `json:"dim"`
	// Model and Dataset come from the inputs' meta.json files; Epoch is
	// the weights' epoch, nil when unknown (an import).
	Model   string `json:"model"`
	Dataset string `json:"dataset"`
	Epoch   *int   `json:"epoch"`
	// Loss is the mean subset loss at these weights; HVPs every product
	// the estimates took, reused ones included.
	Loss float64 `json:"loss"`
	HVPs int     `json:"hvps"`
	// LB and UB bound the spectrum (the range run's estimate).
	LB     float64 `json:"lb"`
	UB     float64 `json:"ub"`
	Probes int     `json:"probes"`
	Steps  int     `json:"steps"`
	// TopEigenvalues, descending, the Krylov dimension the top-k run
	// reached and whether it converged: set when top_k > 0.
	TopEigenvalues []float64 `json:"top_eigenvalues,omitempty"`
	TopKSteps      int       `json:"top_k_steps,omitempty"`
	TopKConverged  *bool     `json:"top_k_converged,omitempty"`
	// Trace and its standard error (JSON null for one probe): set when
	// trace_probes > 0.
	Trace       *float64        `json:"trace,omitempty"`
	TraceStdErr json.RawMessage `json:"trace_stderr,omitempty"`
	DType       string          `json:"dtype"`
	BNMode      string          `json:"bn_mode"`
	Subset      Subset          `json:"subset"`
	// LossFunction is the lanczos param loss when given (absent: the
	// cross-entropy).
	LossFunction string `json:"loss_function,omitempty"`
	// StreamSeed is the seed of every random stream, in hex.
	StreamSeed string `json:"stream_seed"`
}

// Subset describes the data subset the Hessian is taken on.
type Subset struct {
	PerClass int `json:"per_class"`
	Seed     int `json:"seed"`
	N        int `json:"n"`
}

// Write writes s as dir's summary.json (package jsonfile's form).
func Write(dir string, s Summary) error {
	return jsonfile.Write(filepath.Join(dir, File), s)
}

// Read reads dir's summary.json. A missing file is an error that satisfies
// errors.Is(err, fs.ErrNotExist).
func Read(dir string) (*Summary, error) { return jsonfile.Read[Summary](filepath.Join(dir, File)) }
