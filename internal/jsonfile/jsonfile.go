// Package jsonfile reads and writes files that hold one JSON value, in the
// form the artifacts' records use (meta.json, summary.json): indented by two
// spaces, HTML characters escaped (encoding/json's MarshalIndent), and a
// final newline, written atomically. The bytes of such a file enter its
// artifact's digest, so the form must not change.
package jsonfile

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hessian-spectra/runner/internal/atomicfile"
)

// Write writes v to path.
func Write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// Read decodes the JSON value in path as a T. A missing file is an error
// that satisfies errors.Is(err, fs.ErrNotExist); a malformed one names the
// path.
func Read[T any](path string) (*T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &v, nil
}
