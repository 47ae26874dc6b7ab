package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Curve is one training run's per-epoch metrics. Accuracies are fractions in
// [0, 1]; they are drawn in percent.
type Curve struct {
	// Group is the run's method (colour); Label names the rerun, e.g.
	// "seed 3".
	Group, Label                           string
	Epoch                                  []float64
	TrainLoss, TestLoss, TrainAcc, TestAcc []float64
}

// Curves describes the training-curves figure: loss and accuracy, train and
// test, one line per run. With one group each run gets its own colour and
// legend entry; with several, each group gets a colour and a dash pattern
// and its reruns share them, slightly transparent.
type Curves struct {
	Title string
	// Groups lists the groups in legend order; every run's Group must be
	// one of them.
	Groups []string
	Runs   []Curve
	// LogLoss draws losses on a log axis (non-positive values at the
	// smallest positive loss).
	LogLoss bool
	// Width is the figure's width; 0 means 10 inches.
	Width vg.Length
}

// Figure lays the curves out: losses on top, accuracies below, train on
// the left, test on the right, both panels of a row on one y range, and the
// legend to the right of the panels so that it covers no data.
func (cv Curves) Figure() (*Figure, error) {
	groups, err := cv.check()
	if err != nil {
		return nil, err
	}
	floor := cv.lossFloor()
	panels := curvePanels(cv.LogLoss && !math.IsInf(floor, 1))
	legend := plot.NewLegend()
	legend.TextStyle.Font = sans(legendSize)
	legend.Top, legend.Left = true, true
	legend.ThumbnailWidth = vg.Points(20)
	legend.Padding = vg.Points(2)
	inLegend := map[int]bool{}
	plots := make([][]*plot.Plot, len(panels))
	for row := range panels {
		if plots[row], err = cv.row(panels[row], groups, floor, &legend, inLegend); err != nil {
			return nil, err
		}
	}
	return cv.layout(plots, legend), nil
}

// check validates the runs and returns each group's index.
func (cv Curves) check() (map[string]int, error) {
	if len(cv.Runs) == 0 {
		return nil, fmt.Errorf("curves: no runs")
	}
	groups := map[string]int{}
	for i, g := range cv.Groups {
		groups[g] = i
	}
	for _, r := range cv.Runs {
		if _, ok := groups[r.Group]; !ok {
			return nil, fmt.Errorf("curves: run %s is in group %q, not among %q", r.Label, r.Group, cv.Groups)
		}
		n := len(r.Epoch)
		if n == 0 || len(r.TrainLoss) != n || len(r.TestLoss) != n || len(r.TrainAcc) != n || len(r.TestAcc) != n {
			return nil, fmt.Errorf("curves: run %s: %d epochs but %d, %d, %d, %d values", r.Label, n, len(r.TrainLoss), len(r.TestLoss), len(r.TrainAcc), len(r.TestAcc))
		}
	}
	return groups, nil
}

// lossFloor is where a log axis draws non-positive losses: the smallest
// positive loss (+Inf when there is none).
func (cv Curves) lossFloor() float64 {
	floor := math.Inf(1)
	for _, r := range cv.Runs {
		for _, vs := range [][]float64{r.TrainLoss, r.TestLoss} {
			for _, v := range vs {
				if v > 0 && v < floor {
					floor = v
				}
			}
		}
	}
	return floor
}

// curvePanel is one panel of the curves figure: a metric of every run.
type curvePanel struct {
	title, ylabel string
	value         func(Curve) []float64
	log           bool
}

// curvePanels are the figure's panels, rows then columns.
func curvePanels(logLoss bool) [2][2]curvePanel {
	pct := func(a []float64) []float64 {
		out := make([]float64, len(a))
		for i, v := range a {
			out[i] = 100 * v
		}
		return out
	}
	scale := ""
	if logLoss {
		scale = " (log scale)"
	}
	return [2][2]curvePanel{
		// No y label on the loss row: gonum/plot v0.17 centres an axis
		// label at the arithmetic mid-range, which on a log axis lies near
		// the top and pushes the panel down; the title says it instead.
		{{"train cross-entropy loss" + scale, "", func(c Curve) []float64 { return c.TrainLoss }, logLoss},
			{"test cross-entropy loss" + scale, "", func(c Curve) []float64 { return c.TestLoss }, logLoss}},
		{{"train accuracy", "accuracy (%)", func(c Curve) []float64 { return pct(c.TrainAcc) }, false},
			{"test accuracy", "accuracy (%)", func(c Curve) []float64 { return pct(c.TestAcc) }, false}},
	}
}

// newPlot returns the panel's empty plot; the first column carries the y
// label.
func (pn curvePanel) newPlot(first bool) *plot.Plot {
	p := newPlot()
	p.Title.Text = pn.title
	p.X.Label.Text = "epoch"
	if first {
		p.Y.Label.Text = pn.ylabel
	}
	p.X.Tick.Marker = linearTicks{n: 6}
	if pn.log {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{maxLabels: 6}
	} else {
		p.Y.Tick.Marker = linearTicks{n: 5}
	}
	return p
}

// row draws one row of panels, adding each colour to the legend the first
// time it appears, and gives both panels the row's y range.
func (cv Curves) row(panels [2]curvePanel, groups map[string]int, floor float64, legend *plot.Legend, inLegend map[int]bool) ([]*plot.Plot, error) {
	byRun := len(cv.Groups) == 1
	plots := make([]*plot.Plot, len(panels))
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for col, pn := range panels {
		p := pn.newPlot(col == 0)
		for i, r := range cv.Runs {
			ys := pn.value(r)
			pts := make(plotter.XYs, len(ys))
			for k := range ys {
				y := ys[k]
				if pn.log && !(y > 0) {
					y = floor
				}
				pts[k] = plotter.XY{X: r.Epoch[k], Y: y}
				ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
			}
			line, err := plotter.NewLine(pts)
			if err != nil {
				return nil, fmt.Errorf("curves: run %s, %s: %w", r.Label, pn.title, err)
			}
			c, alpha := groups[r.Group], 0.7 // reruns of a group overlap
			if byRun {
				c, alpha = i, 1
			}
			line.Color = colour(c, alpha)
			line.Width = vg.Points(1)
			if !byRun {
				// Methods can coincide (L2 1e-5 barely moves SGD): a
				// dash per group keeps the one drawn first visible
				// under the next.
				line.Dashes = groupDashes(c)
			}
			p.Add(line)
			if !inLegend[c] {
				inLegend[c] = true
				name := r.Label
				if !byRun {
					name = fmt.Sprintf("%s (%d reruns)", r.Group, countGroup(cv.Runs, r.Group))
				}
				legend.Add(name, line)
			}
		}
		plots[col] = p
	}
	for _, p := range plots {
		if panels[0].log {
			p.Y.Min, p.Y.Max = ymin/1.2, ymax*1.2
		} else {
			pad := 0.04 * (ymax - ymin)
			if pad == 0 {
				pad = 1
			}
			p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
		}
	}
	return plots, nil
}

// layout places the title, the panels in a 2×2 grid and the legend on
// their right.
func (cv Curves) layout(plots [][]*plot.Plot, legend plot.Legend) *Figure {
	width := cv.Width
	if width == 0 {
		width = 10 * vg.Inch
	}
	legendW := legend.Rectangle(draw.Canvas{}).Size().X + vg.Inch/4
	head := vg.Inch * 0.45
	if cv.Title == "" {
		head = vg.Inch / 8
	}
	return &Figure{
		Width:  width,
		Height: head + (width-legendW)*0.7,
		draw: func(dc draw.Canvas) {
			if cv.Title != "" {
				top := dc
				top.Min.Y = dc.Max.Y - head
				textBox(top, cv.Title, headSize)
			}
			body := dc
			body.Max.Y -= head
			body.Max.X -= legendW
			tiles := draw.Tiles{
				Rows: 2, Cols: 2,
				PadX: vg.Inch / 4, PadY: vg.Inch / 5,
				PadLeft: vg.Inch / 10, PadRight: vg.Inch / 10, PadBottom: vg.Inch / 10,
			}
			cs := plot.Align(plots, tiles, body)
			for r := range plots {
				for c := range plots[r] {
					plots[r][c].Draw(cs[r][c])
				}
			}
			leg := dc
			leg.Min.X = body.Max.X + vg.Inch/8
			leg.Max.Y = body.Max.Y - vg.Inch/5
			legend.Draw(leg)
		},
	}
}

// groupDashes is group g's dash pattern: solid, dashed, dotted,
// dash-dotted, then again.
func groupDashes(g int) []vg.Length {
	p := vg.Points
	switch g % 4 {
	case 1:
		return []vg.Length{p(6), p(3)}
	case 2:
		return []vg.Length{p(1.5), p(2)}
	case 3:
		return []vg.Length{p(6), p(2), p(1.5), p(2)}
	}
	return nil
}

func countGroup(runs []Curve, g string) int {
	n := 0
	for _, r := range runs {
		if r.Group == g {
			n++
		}
	}
	return n
}
