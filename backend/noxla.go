//go:build !cgo || noxla

package backend

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
)

// openXLA reports that this binary has no XLA support.
func openXLA(name, _ string) (backends.Backend, error) {
	return nil, fmt.Errorf("backend %q: this binary was built without XLA (needs cgo and no \"noxla\" tag); rebuild with CGO_ENABLED=1 or use --backend cpu", name)
}

// cudaAvailable is false: this binary cannot use XLA.
func cudaAvailable() bool { return false }
