package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Density is a spectral density on its eigenvalue grid. Std, when it has a
// non-zero entry, is the per-point standard deviation over probes, drawn as
// a band of ± one std around the density.
type Density struct {
	Grid, Values, Std []float64
}

// SpectraRow is one epoch's pair of densities: the layer Hessian's and the
// full Hessian's.
type SpectraRow struct {
	Epoch       int
	Layer, Full Density
}

// Axis sharing of a spectra grid, the values of SpectraGrid.Share.
const (
	// ShareColumn gives all panels of a column (one Hessian, every epoch)
	// the same axes, so that its evolution over training reads top to
	// bottom: the default.
	ShareColumn = "column"
	// ShareRow gives the layer and full panels of one epoch the same axes.
	ShareRow = "row"
	// ShareNone fits each panel to its own data.
	ShareNone = "none"
)

// SpectraGrid describes the figure of one layer: a row per epoch, the layer
// Hessian's density on the left and the full Hessian's on the right.
type SpectraGrid struct {
	// Run names the run in the figure's heading, e.g. "LeNet+FashionMNIST".
	Run string
	// Layer is the layer's parameter name.
	Layer string
	Rows  []SpectraRow
	// Share is ShareColumn, ShareRow or ShareNone.
	Share string
	// LogY draws densities on a log axis. Values below Floor × the largest
	// value sharing the axis (zeros among them) are drawn at that floor.
	LogY  bool
	Floor float64
	// Width is the figure's width; 0 means 8 inches. Each row is 0.2 × the
	// width + 0.1 inch high.
	Width vg.Length
}

// Colours of the two columns: the seed's blue and dark violet.
var (
	layerColour = color.NRGBA{0x1F, 0x77, 0xB4, 0xFF}
	fullColour  = color.NRGBA{0x94, 0x00, 0xD3, 0xFF}
)

// Figure lays the grid out.
func (g SpectraGrid) Figure() (*Figure, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	ranges := g.ranges()
	plots := make([][]*plot.Plot, len(g.Rows))
	for r, row := range g.Rows {
		plots[r] = make([]*plot.Plot, 2)
		for c, d := range []Density{row.Layer, row.Full} {
			q := ranges[g.shareGroup(r, c)]
			name, col := g.Layer, layerColour
			if c == 1 {
				name, col = "full", fullColour
			}
			p, err := densityPanel(d, col, q.xmin, q.xmax, q.ymax, g.LogY, g.Floor)
			if err != nil {
				return nil, fmt.Errorf("spectra grid %s: epoch %d, %s: %w", g.Layer, row.Epoch, name, err)
			}
			p.Title.Text = fmt.Sprintf("%s · epoch %d", name, row.Epoch)
			if r == len(g.Rows)-1 {
				p.X.Label.Text = "eigenvalue"
			}
			plots[r][c] = p
		}
	}
	return g.layout(plots), nil
}

// check validates the grid.
func (g SpectraGrid) check() error {
	if len(g.Rows) == 0 {
		return fmt.Errorf("spectra grid %s: no epochs", g.Layer)
	}
	if g.LogY && !(g.Floor > 0 && g.Floor < 1) {
		return fmt.Errorf("spectra grid %s: floor %g, want a fraction in (0, 1) for a log axis", g.Layer, g.Floor)
	}
	for _, r := range g.Rows {
		for _, d := range []Density{r.Layer, r.Full} {
			if len(d.Grid) < 2 || len(d.Values) != len(d.Grid) || (d.Std != nil && len(d.Std) != len(d.Grid)) {
				return fmt.Errorf("spectra grid %s: epoch %d: grid of %d points, %d values, %d stds", g.Layer, r.Epoch, len(d.Grid), len(d.Values), len(d.Std))
			}
		}
	}
	return nil
}

// shareGroup returns the axis-sharing group of the panel in row r, column
// c (see Share).
func (g SpectraGrid) shareGroup(r, c int) int {
	switch g.Share {
	case ShareRow:
		return r
	case ShareNone:
		return 2*r + c
	}
	return c
}

// axisRange is the axes a share group's panels have in common.
type axisRange struct{ xmin, xmax, ymax float64 }

// ranges returns each share group's axes: the union of its panels' grids,
// and the largest density (plus std) among them.
func (g SpectraGrid) ranges() map[int]*axisRange {
	ranges := map[int]*axisRange{}
	for r, row := range g.Rows {
		for c, d := range []Density{row.Layer, row.Full} {
			k := g.shareGroup(r, c)
			if ranges[k] == nil {
				ranges[k] = &axisRange{math.Inf(1), math.Inf(-1), math.Inf(-1)}
			}
			q := ranges[k]
			q.xmin, q.xmax = math.Min(q.xmin, d.Grid[0]), math.Max(q.xmax, d.Grid[len(d.Grid)-1])
			for i, v := range d.Values {
				if d.Std != nil {
					v += d.Std[i]
				}
				q.ymax = math.Max(q.ymax, v)
			}
		}
	}
	return ranges
}

// layout places the heading, the subtitle and the panels, a row per epoch.
func (g SpectraGrid) layout(plots [][]*plot.Plot) *Figure {
	width := g.Width
	if width == 0 {
		width = 8 * vg.Inch
	}
	rowH := width/5 + vg.Inch/10
	head := vg.Inch * 0.7
	n := len(plots)
	scale := "linear"
	if g.LogY {
		scale = fmt.Sprintf("log scale, floor %g × max", g.Floor)
	}
	heading := g.Layer
	if g.Run != "" {
		heading = g.Run + " · " + g.Layer
	}
	sub := fmt.Sprintf("density of eigenvalues (%s); left: layer Hessian, right: full Hessian", scale)
	return &Figure{
		Width:  width,
		Height: head + vg.Length(n)*rowH,
		draw: func(dc draw.Canvas) {
			top := dc
			top.Min.Y = dc.Max.Y - head
			// Heading, subtitle, then a gap above the first panel titles.
			line1, line2 := top, top
			line1.Min.Y = top.Max.Y - head*0.45
			line2.Max.Y = line1.Min.Y
			line2.Min.Y = line2.Max.Y - head*0.3
			textBox(line1, heading, headSize)
			textBox(line2, sub, labelSize)
			body := dc
			body.Max.Y -= head
			tiles := draw.Tiles{
				Rows: n, Cols: 2,
				PadX: vg.Inch / 5, PadY: vg.Inch / 12,
				PadLeft: vg.Inch / 10, PadRight: vg.Inch / 8, PadBottom: vg.Inch / 20,
			}
			cs := plot.Align(plots, tiles, body)
			for r := range plots {
				for c := range plots[r] {
					plots[r][c].Draw(cs[r][c])
				}
			}
		},
	}
}

// densityPanel plots one density in colour col on the given x range and a y
// axis up to ymax: log scaled from floor × ymax when logY, linear from 0
// otherwise.
func densityPanel(d Density, col color.NRGBA, xmin, xmax, ymax float64, logY bool, floor float64) (*plot.Plot, error) {
	p := newPlot()
	p.Title.TextStyle.Font = sans(labelSize)
	lo := 0.0
	if logY {
		if !(ymax > 0) {
			return nil, fmt.Errorf("no positive density value to draw on a log axis")
		}
		lo = floor * ymax
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{maxLabels: 4}
	} else {
		p.Y.Tick.Marker = linearTicks{n: 4}
	}
	clamp := func(v float64) float64 {
		if logY && v < lo {
			return lo
		}
		return v
	}
	if hasBand(d.Std) {
		band := make(plotter.XYs, 0, 2*len(d.Grid))
		for i := range d.Grid {
			band = append(band, plotter.XY{X: d.Grid[i], Y: clamp(d.Values[i] + d.Std[i])})
		}
		for i := len(d.Grid) - 1; i >= 0; i-- {
			band = append(band, plotter.XY{X: d.Grid[i], Y: clamp(d.Values[i] - d.Std[i])})
		}
		poly, err := plotter.NewPolygon(band)
		if err != nil {
			return nil, err
		}
		fill := col
		fill.A = 0x30
		poly.Color = fill
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	pts := make(plotter.XYs, len(d.Grid))
	for i := range d.Grid {
		pts[i] = plotter.XY{X: d.Grid[i], Y: clamp(d.Values[i])}
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	line.Color = col
	line.Width = vg.Points(0.9)
	p.Add(line)
	p.X.Tick.Marker = linearTicks{n: 5}
	p.X.Min, p.X.Max = xmin, xmax
	p.Y.Min, p.Y.Max = lo, ymax
	if !logY {
		p.Y.Max *= 1.05
	}
	return p, nil
}

func hasBand(std []float64) bool {
	for _, v := range std {
		if v != 0 {
			return true
		}
	}
	return false
}
