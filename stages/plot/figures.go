package plot

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hessian-spectra/runner/analysis/records"
	"github.com/hessian-spectra/runner/plots"
	"github.com/hessian-spectra/runner/stage"
)

func spectra(ctx context.Context, e *stage.Env, st style) ([]string, error) {
	arts := e.Inputs["spectra"]
	if len(arts) == 0 {
		return nil, fmt.Errorf(`no spectra: bind them with needs: {spectra: "spectrum[*]"}`)
	}
	runs, err := records.IndexSpectra(arts)
	if err != nil {
		return nil, err
	}
	prog := e.Progress
	var files []string
	for _, run := range runs {
		if !run.HasFull() {
			return files, fmt.Errorf("run %s: no full-network spectra (layer %q) to draw beside the layers", run.Label, records.FullLayer)
		}
		if len(run.Layers) == 0 {
			return files, fmt.Errorf("run %s: only full-network spectra, no layers", run.Label)
		}
		heading := run.Label
		if st.title != "" {
			heading = st.title
			if len(runs) > 1 {
				heading += " · " + run.Label
			}
		}
		full := map[int]*records.Spectrum{}
		prog.Start("figures "+run.Label, len(run.Layers))
		for _, layer := range run.Layers {
			if err := ctx.Err(); err != nil {
				prog.Finish()
				return files, err
			}
			g := plots.SpectraGrid{Run: heading, Layer: layer, Share: e.Params.String("share"),
				LogY: e.Params.Bool("log_y"), Floor: e.Params.Float("floor"), Width: st.width}
			for _, ep := range run.Epochs {
				ref, ok := run.Ref(layer, ep)
				if !ok {
					continue
				}
				ls, err := ref.Load()
				if err != nil {
					prog.Finish()
					return files, err
				}
				if full[ep] == nil {
					fref, ok := run.Ref(records.FullLayer, ep)
					if !ok {
						prog.Finish()
						return files, fmt.Errorf("run %s: %s has a spectrum at epoch %d but the full network has none", run.Label, layer, ep)
					}
					if full[ep], err = fref.Load(); err != nil {
						prog.Finish()
						return files, err
					}
				}
				fs := full[ep]
				g.Rows = append(g.Rows, plots.SpectraRow{Epoch: ep,
					Layer: plots.Density{Grid: ls.Grid, Values: ls.Density, Std: ls.Std},
					Full:  plots.Density{Grid: fs.Grid, Values: fs.Density, Std: fs.Std}})
			}
			f, err := g.Figure()
			if err != nil {
				prog.Finish()
				return files, fmt.Errorf("run %s: %w", run.Label, err)
			}
			name := "training_eigvals_epochwise_layer_" + fileSafe(layer)
			if len(runs) > 1 {
				name = filepath.Join(fileSafe(run.Label), name)
			}
			if err := save(e, st, f, name, &files); err != nil {
				prog.Finish()
				return files, err
			}
			prog.Advance(1)
		}
		prog.Finish()
	}
	return files, nil
}

func curves(e *stage.Env, st style) ([]string, error) {
	arts := e.Inputs["runs"]
	if len(arts) == 0 {
		return nil, fmt.Errorf(`no training runs: bind them with needs: {runs: ["sgd[*]", ...]}`)
	}
	groups, err := records.GroupBy(arts, e.Params.String("group_by"))
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	if e.Params.Has("labels") {
		names := map[string]bool{}
		for _, g := range groups {
			names[g.Name] = true
		}
		for k, v := range e.Params.Map("labels") {
			if !names[k] {
				return nil, fmt.Errorf("labels names %q, which is no method among the inputs", k)
			}
			labels[k] = v.(string)
		}
	}
	cv := plots.Curves{Title: st.title, LogLoss: e.Params.Bool("log_y"), Width: st.width}
	titles := map[string]bool{}
	for _, g := range groups {
		label := g.Name
		if l, ok := labels[g.Name]; ok {
			label = l
		}
		cv.Groups = append(cv.Groups, label)
		for _, a := range g.Artifacts {
			r, err := records.LoadRun(a)
			if err != nil {
				return nil, err
			}
			if r.Model() != "" && r.Dataset() != "" {
				titles[r.Model()+"+"+r.Dataset()] = true
			} else {
				titles[""] = true
			}
			name := a.Stage
			if r.Meta != nil && r.Meta.Seed != nil {
				name = fmt.Sprintf("seed %d", *r.Meta.Seed)
			}
			m := r.Metrics
			c := plots.Curve{Group: label, Label: name, TrainLoss: m.TrainLoss, TestLoss: m.TestLoss, TrainAcc: m.TrainAcc, TestAcc: m.TestAcc}
			for _, ep := range m.Epoch {
				c.Epoch = append(c.Epoch, float64(ep))
			}
			cv.Runs = append(cv.Runs, c)
		}
	}
	if cv.Title == "" && len(titles) == 1 {
		for t := range titles {
			cv.Title = t
		}
	}
	if len(groups) == 1 && cv.Title != "" {
		cv.Title += " · " + cv.Groups[0]
	}
	f, err := cv.Figure()
	if err != nil {
		return nil, err
	}
	var files []string
	return files, save(e, st, f, "curves", &files)
}

func matchDistros(e *stage.Env, st style) ([]string, error) {
	a, err := e.Input("distances")
	if err != nil {
		return nil, err
	}
	sum, err := records.ReadDistanceSummary(filepath.Join(a.Dir, "summary.json"))
	if err != nil {
		return nil, fmt.Errorf("distances input %s: %w", a.Stage, err)
	}
	if len(sum.Runs) == 0 {
		return nil, fmt.Errorf("distances input %s has no runs", a.Stage)
	}
	type metric struct {
		prefix, name string
		get          func(records.RunDistances) records.MetricDistances
	}
	var metrics []metric
	which := e.Params.String("metric")
	if which == "seed" || which == "both" {
		metrics = append(metrics, metric{"match_distros", "seed's metric: W1 between the value histograms of the τ-transformed log-densities",
			func(r records.RunDistances) records.MetricDistances { return r.Seed }})
	}
	if which == "w1" || which == "both" {
		metrics = append(metrics, metric{"match_distros_eigval", "Wasserstein-1 distance between the densities on the eigenvalue axis",
			func(r records.RunDistances) records.MetricDistances { return r.W1 }})
	}
	heading := st.title
	if heading == "" {
		heading = sum.Title
	}
	prefix := ""
	if heading != "" {
		prefix = heading + ": "
	}
	rule := map[string]string{
		"min_total": "e* = the epoch with the smallest total over layers",
		"seed":      "e* = the seed's hard-coded epoch",
		"fixed":     fmt.Sprintf("e* = epoch %d", sum.Peak.Epoch),
	}[sum.Peak.Rule]
	var files []string
	for _, m := range metrics {
		var total, peak []plots.DepthLine
		for _, r := range sum.Runs {
			md := m.get(r)
			total = append(total, plots.DepthLine{Label: r.Label, Position: r.Positions, Value: md.TotalNorm})
			peak = append(peak, plots.DepthLine{Label: fmt.Sprintf("%s (e* = %d)", r.Label, md.PeakEpoch), Position: r.Positions, Value: md.AtPeakNorm})
		}
		f, err := plots.DepthProfile{Title: prefix + "layer vs full network, distance summed over training",
			Subtitle: m.name, YLabel: "D(l) / max over layers", Lines: total, Width: st.width}.Figure()
		if err != nil {
			return files, err
		}
		if err := save(e, st, f, m.prefix+"_wasserstein", &files); err != nil {
			return files, err
		}
		f, err = plots.DepthProfile{Title: prefix + "layer vs full network at the peak epoch",
			Subtitle: m.name + "; " + rule, YLabel: "d(l, e*) / max over layers", Lines: peak, Width: st.width}.Figure()
		if err != nil {
			return files, err
		}
		if err := save(e, st, f, m.prefix+"_peak", &files); err != nil {
			return files, err
		}
	}
	return files, nil
}
