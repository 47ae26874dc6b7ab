package aggregate

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/stage"
)

// TestTablesLoadInPandas checks that the CSV and JSON files load where
// researchers read them, with numeric columns typed as numbers. It skips
// where Debian's python3 with pandas is not installed (fails in CI).
func TestTablesLoadInPandas(t *testing.T) {
	py := testenv.RequirePython(t, "pandas")
	pen, err := runKind(t, map[string]any{"table": "penalization", "last_k": 2, "paper": map[string]any{"sgd": "5.43 ± 0.10"}},
		map[string][]stage.Artifact{"runs": penalizationInputs(t)})
	if err != nil {
		t.Fatal(err)
	}
	dist, err := runKind(t, map[string]any{"table": "distances"}, map[string][]stage.Artifact{"spectra": shiftedSpectra(t, testMu, testLayers)})
	if err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys
import pandas as pd
pen, dist = sys.argv[1], sys.argv[2]
p = pd.read_csv(pen + "/table.csv")
assert list(p.method) == ["sgd", "htr"], p.method
assert p.test_error_mean[0] == 7.0 and p.reruns.dtype.kind == "i", p
assert p.paper_test_error_mean[0] == 5.43 and pd.isna(p.paper_test_error_mean[1]), p
for c in ["test_error_mean", "test_error_std", "train_error_mean", "gap_mean", "paper_test_error_std"]:
    assert p[c].dtype.kind == "f", (c, p[c].dtype)
d = pd.read_csv(dist + "/distances.csv")
assert len(d) == 9 and set(d.layer) == {"conv1.weight", "conv2.weight", "fc1.weight"}
for c in ["position", "seed_metric", "w1"]:
    assert d[c].dtype.kind == "f", (c, d[c].dtype)
assert abs(d[(d.layer == "conv1.weight") & (d.epoch == 1)].w1.iloc[0] - 3) < 2e-3
t = pd.read_csv(dist + "/table.csv")
for c in t.columns[3:]:
    assert t[c].dtype.kind in "fi", (c, t[c].dtype)
for f in [pen + "/summary.json", dist + "/summary.json"]:
    json.load(open(f))
`
	cmd := exec.Command(py, "-c", script, filepath.Clean(pen), filepath.Clean(dist))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pandas check failed: %v\n%s", err, out)
	}
}
