//go:build cgo && !noxla

package backend

import (
	"os"
	"path/filepath"
	"testing"
)

// TestXLAErrors checks the failures a user meets without a PJRT plugin.
func TestXLAErrors(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir()) // no plugins where we look first
	fake := filepath.Join(t.TempDir(), "pjrt_c_api_cuda_plugin.so")
	if err := os.WriteFile(fake, []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkErrors(t, []errorCase{
		{"xla:cuda", []string{`backend "xla:cuda"`, "no PJRT CUDA plugin", "PJRT_PLUGIN_LIBRARY_PATH", "xla:/path/to/pjrt_c_api_cuda_plugin.so", "--backend cpu"}},
		{"xla:cpu", []string{"no PJRT CPU plugin", "--backend cpu"}},
		{"xla:/no/such/plugin.so", []string{"/no/such/plugin.so does not exist", "--backend cpu"}},
		{"xla:relative/plugin.so", []string{"must be absolute"}},
		{"xla:" + fake, []string{"cannot start the PJRT plugin", "--backend cpu"}},
	})
}
