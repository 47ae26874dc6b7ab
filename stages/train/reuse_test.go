package train

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/stage"
)

// runReusing runs the kind with a scratch dir and an optional prior, as
// the runner does; p, when set, receives the progress (nil: none).
func runReusing(ctx context.Context, t *testing.T, given map[string]any, data, scratch string, prior *stage.Prior, p stage.Progress) (string, string, error) {
	t.Helper()
	out := t.TempDir()
	var log bytes.Buffer
	e := &stage.Env{ID: "train", Params: params(t, given), OutDir: out, RunDir: filepath.Join(out, "run"), Log: &log,
		Progress: p, Backend: "go", Scratch: scratch, Prior: prior,
		Inputs: map[string][]stage.Artifact{"data": {{Dir: data, Stage: "data"}}}}
	os.Mkdir(e.RunDir, 0o777)
	err := Kind.Call(ctx, e)
	return out, log.String(), err
}

// sameArtifact compares two train artifacts file by file, run/ aside (wall
// times), byte for byte.
func sameArtifact(t *testing.T, what, a, b string) {
	t.Helper()
	files := func(dir string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if strings.HasPrefix(rel, "run"+string(filepath.Separator)) {
				return nil
			}
			b, err := os.ReadFile(p)
			out[rel] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	fa, fb := files(a), files(b)
	var na, nb []string
	for n := range fa {
		na = append(na, n)
	}
	for n := range fb {
		nb = append(nb, n)
	}
	slices.Sort(na)
	slices.Sort(nb)
	if !slices.Equal(na, nb) {
		t.Fatalf("%s: files %v, from nothing %v", what, na, nb)
	}
	for _, n := range na {
		if !bytes.Equal(fa[n], fb[n]) {
			t.Errorf("%s: %s differs from the run from nothing", what, n)
		}
	}
	if _, err := os.Stat(filepath.Join(a, "run", "timings.csv")); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

type cancelAfter struct {
	n      int
	cancel func()
}

func (c *cancelAfter) Start(string, int) {}
func (c *cancelAfter) Advance(k int) {
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
}
func (c *cancelAfter) Finish() {}

func TestPlanReuse(t *testing.T) {
	base := map[string]any{"model": "LeNet", "lr": 0.01}
	for _, tc := range []struct {
		from, to map[string]any
		how      string // "" when it cannot serve
	}{
		{with(base, "epochs", 3, "milestones", []any{1}), with(base, "epochs", 5, "milestones", []any{1, 4}, "snapshot_every", 2),
			"extends cached run of 3 epochs by 2"},
		{with(base, "epochs", 3, "milestones", []any{2}), with(base, "epochs", 5, "milestones", []any{1}), ""},
		{with(base, "epochs", 3, "milestones", []any{3}), with(base, "epochs", 5), "extends cached run of 3 epochs by 2"},
		{with(base, "epochs", 5, "snapshot_every", 2), with(base, "epochs", 3), ""}, // no checkpoint of epoch 1
		{with(base, "epochs", 7), with(base, "epochs", 5, "snapshot_every", 0), "derived from cached run of 7 epochs"},
		{with(base, "epochs", 3, "snapshot_every", 0), with(base, "epochs", 5), ""}, // no checkpoints 0–2
	} {
		plan, ok := planReuse(params(t, tc.from), params(t, tc.to))
		if ok != (tc.how != "") || plan.How != tc.how {
			t.Errorf("%v → %v: plan %+v, %v; want %q", tc.from, tc.to, plan, ok, tc.how)
		}
	}
}

// TestExtendEqualsFromScratch: a 5-epoch run that starts from a cached
// 3-epoch run writes the files a 5-epoch run from nothing writes, byte for
// byte — SGD with momentum and milestones on either side of the cached
// length, and HTR starting after it — also when the extension is cancelled
// half way and run again; and the 3-epoch run is derived from the 5-epoch
// one without training.
func TestExtendEqualsFromScratch(t *testing.T) {
	data := fetchArtifact(t, 128, 32)
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		short, long map[string]any
	}{
		{"momentum and milestones",
			map[string]any{"model": "LeNet", "lr": 0.05, "momentum": 0.9, "batch_size": 64, "seed": 1, "epochs": 3, "milestones": []any{1}},
			map[string]any{"model": "LeNet", "lr": 0.05, "momentum": 0.9, "batch_size": 64, "seed": 1, "epochs": 5, "milestones": []any{1, 4}}},
		{"HTR crossing its start",
			map[string]any{"model": "LeNet", "lr": 0.02, "batch_size": 64, "seed": 2, "epochs": 3,
				"htr": map[string]any{"start_epoch": 3, "freq": 2, "probes": 1, "params": []any{"weights"}}},
			map[string]any{"model": "LeNet", "lr": 0.02, "batch_size": 64, "seed": 2, "epochs": 5, "snapshot_every": 2,
				"htr": map[string]any{"start_epoch": 3, "freq": 2, "probes": 1, "params": []any{"weights"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			long, _, err := runReusing(ctx, t, tc.long, data, t.TempDir(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			short, _, err := runReusing(ctx, t, tc.short, data, t.TempDir(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			plan, ok := planReuse(params(t, tc.short), params(t, tc.long))
			if !ok {
				t.Fatal("the 3-epoch run cannot serve")
			}
			prior := &stage.Prior{Artifact: stage.Artifact{Dir: short, Stage: "train"}, Params: params(t, tc.short), How: plan.How}
			extended, log, err := runReusing(ctx, t, tc.long, data, t.TempDir(), prior, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if !strings.Contains(log, "extends cached run of 3 epochs by 2") || strings.Contains(log, "epoch 1/5") {
				t.Errorf("the extension trained its first epochs again, or did not say so:\n%s", log)
			}
			sameArtifact(t, "3 → 5 epochs", extended, long)
			if tc.name != "momentum and milestones" {
				// The penalty starts in the extension: epochs 4 and 5 only.
				b, _ := os.ReadFile(filepath.Join(extended, "metrics.csv"))
				rows := strings.Split(strings.TrimSpace(string(b)), "\n")
				for i, row := range rows[1:] {
					if penalised := !strings.HasSuffix(row, ","); penalised != (i >= 3) {
						t.Errorf("metrics.csv row %q: penalised %v", row, penalised)
					}
				}
				return
			}

			// Cancelled in its second epoch, then run again on its scratch dir.
			scratch := t.TempDir()
			cctx, cancel := context.WithCancel(ctx)
			// An epoch reports 2 training steps and 2 evaluation batches.
			_, _, err = runReusing(cctx, t, tc.long, data, scratch, prior, &cancelAfter{n: 5, cancel: cancel})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled extension: %v", err)
			}
			resumed, log, err := runReusing(ctx, t, tc.long, data, scratch, prior, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if !strings.Contains(log, "resuming after epoch 4/5") {
				t.Errorf("the rerun did not resume the interrupted extension:\n%s", log)
			}
			sameArtifact(t, "3 → 5 epochs, cancelled and rerun", resumed, long)

			// 5 → 3: derived, no training.
			plan, ok = planReuse(params(t, tc.long), params(t, tc.short))
			if !ok || plan.How != "derived from cached run of 5 epochs" {
				t.Fatalf("5 → 3: plan %+v, %v", plan, ok)
			}
			prior = &stage.Prior{Artifact: stage.Artifact{Dir: long, Stage: "train"}, Params: params(t, tc.long), How: plan.How}
			derived, log, err := runReusing(ctx, t, tc.short, data, "", prior, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if !strings.Contains(log, "no training") || strings.Contains(log, "epoch 1/3") || strings.Contains(log, "backend") {
				t.Errorf("derived run trained:\n%s", log)
			}
			sameArtifact(t, "5 → 3 epochs", derived, short)
		})
	}
}
