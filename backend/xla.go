//go:build cgo && !noxla

package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// openXLA opens XLA/PJRT with plugin config ("cpu", "cuda", a name, or an
// absolute path, with optional ",options"), never auto-installing plugins.
func openXLA(name, config string) (backends.Backend, error) {
	xla.EnableAutoInstall(false)
	plugin, _, _ := strings.Cut(config, ",")
	switch {
	case filepath.IsAbs(plugin):
		if _, err := os.Stat(plugin); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("backend %q: PJRT plugin file %s does not exist; fix the path or use --backend cpu", name, plugin)
			}
			return nil, fmt.Errorf("backend %q: %s; use --backend cpu", name, oneLine(err))
		}
	case plugin != "" && strings.Contains(plugin, "/"):
		return nil, fmt.Errorf("backend %q: a PJRT plugin path must be absolute", name)
	default:
		available := xla.GetAvailablePlugins()
		if (plugin == "" && len(available) == 0) || (plugin != "" && !slices.Contains(available, plugin)) {
			return nil, fmt.Errorf("backend %q: %s", name, missingPlugin(plugin, available))
		}
	}
	b, err := xla.New(config)
	if err != nil {
		return nil, fmt.Errorf("backend %q: cannot start the PJRT plugin: %s; use --backend cpu", name, oneLine(err))
	}
	return b, nil
}

// cudaAvailable reports whether an NVIDIA device file exists and GoMLX finds
// a PJRT plugin named cuda, without auto-installing one.
func cudaAvailable() bool {
	if devs, _ := filepath.Glob("/dev/nvidia[0-9]*"); len(devs) == 0 {
		return false
	}
	xla.EnableAutoInstall(false)
	return slices.Contains(xla.GetAvailablePlugins(), "cuda")
}

// missingPlugin says which plugin is missing and how to point GoMLX at one.
func missingPlugin(plugin string, available []string) string {
	what := "no PJRT plugin found"
	file := "pjrt_c_api_cpu_plugin.so"
	if plugin != "" {
		what = fmt.Sprintf("no PJRT %s plugin found", strings.ToUpper(plugin))
		file = "pjrt_c_api_" + plugin + "_plugin.so"
	}
	if len(available) > 0 {
		what += fmt.Sprintf(" (found: %s)", strings.Join(available, ", "))
	}
	if plugin == "cuda" {
		what += " or no NVIDIA GPU visible (/dev/nvidia*, nvidia-smi)"
	}
	return fmt.Sprintf("%s; set PJRT_PLUGIN_LIBRARY_PATH to its directory or GOMLX_BACKEND=xla:/path/to/%s, or use --backend cpu", what, file)
}
