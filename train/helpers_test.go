package train

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/datasets"
)

var (
	backendOnce sync.Once
	backendVal  backends.Backend
	backendErr  error
)

// testBackend returns backend.ForTests ($GOMLX_BACKEND, else the default),
// opened once for the package.
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	backendOnce.Do(func() { backendVal, backendErr = backend.Open(backend.ForTests()) })
	if backendErr != nil {
		t.Fatalf("backend: %v", backendErr)
	}
	return backendVal
}

const sampleDir = "../testdata/fashion-mnist-sample"

// sampleData loads the first nTrain and nTest images of the FashionMNIST
// sample in the repository, preprocessed as the seed does.
func sampleData(t testing.TB, nTrain, nTest int) *datasets.Dataset {
	t.Helper()
	info, err := datasets.Lookup("FashionMNIST")
	if err != nil {
		t.Fatal(err)
	}
	set, err := datasets.ReadDir(info, sampleDir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	set.Limit(nTrain, nTest)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := set.Write(dir); err != nil {
		t.Fatal(err)
	}
	d, err := datasets.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
