package plots

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// DepthLine is one run's normalised distance at each layer position.
type DepthLine struct {
	Label    string
	Position []float64
	Value    []float64
}

// DepthProfile describes a match_distros figure: one line per run, x the
// layer's relative depth i/(L−1), y its normalised layer-versus-full
// distance, the legend outside the axes on the right.
type DepthProfile struct {
	// Title and Subtitle head the figure, across its whole width.
	Title, Subtitle, YLabel string
	Lines                   []DepthLine
	// Width is the figure's width; 0 means 9 inches.
	Width vg.Length
}

// glyphs are marker shapes, cycled with a period (7) prime to the palette's
// (10), so that lines sharing a colour differ in marker.
var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
	draw.RingGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

// Figure draws the profile.
func (d DepthProfile) Figure() (*Figure, error) {
	if len(d.Lines) == 0 {
		return nil, fmt.Errorf("depth profile %q: no lines", d.Title)
	}
	p := newPlot()
	p.X.Label.Text = "relative depth i/(L−1): 0 = first layer, 1 = last"
	p.Y.Label.Text = d.YLabel
	p.X.Tick.Marker = plot.ConstantTicks{
		{Value: 0, Label: "0 (first)"}, {Value: 0.25, Label: "0.25"}, {Value: 0.5, Label: "0.5"},
		{Value: 0.75, Label: "0.75"}, {Value: 1, Label: "1 (last)"},
	}
	p.Y.Tick.Marker = linearTicks{n: 5}
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.TextStyle.Font = sans(legendSize)
	legend.Top, legend.Left = true, true
	legend.ThumbnailWidth = vg.Points(24)
	legend.Padding = vg.Points(3)
	for i, l := range d.Lines {
		if len(l.Position) == 0 || len(l.Position) != len(l.Value) {
			return nil, fmt.Errorf("depth profile %q: line %s has %d positions and %d values", d.Title, l.Label, len(l.Position), len(l.Value))
		}
		pts := make(plotter.XYs, len(l.Value))
		for k := range pts {
			pts[k] = plotter.XY{X: l.Position[k], Y: l.Value[k]}
		}
		line, marks, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("depth profile %q: line %s: %w", d.Title, l.Label, err)
		}
		c := colour(i, 1)
		line.Color = c
		line.Width = vg.Points(1.4)
		if i >= len(palette) {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(2)}
		}
		marks.Color = c
		marks.Shape = glyphs[i%len(glyphs)]
		marks.Radius = vg.Points(3)
		p.Add(line, marks)
		legend.Add(l.Label, line, marks)
	}
	p.X.Min, p.X.Max = -0.03, 1.03
	p.Y.Min, p.Y.Max = 0, 1.05

	width := d.Width
	if width == 0 {
		width = 9 * vg.Inch
	}
	legendW := legend.Rectangle(draw.Canvas{}).Size().X + vg.Inch/3
	head := vg.Inch * 0.6
	return &Figure{
		Width:  width,
		Height: head + (width-legendW)*0.6,
		draw: func(dc draw.Canvas) {
			top := dc
			top.Min.Y = dc.Max.Y - head
			line1, line2 := top, top
			line1.Min.Y = top.Max.Y - head/2
			line2.Max.Y = line1.Min.Y
			textBox(line1, d.Title, headSize)
			textBox(line2, d.Subtitle, labelSize)
			body := dc
			body.Max.Y -= head
			body.Max.X -= legendW
			body = draw.Crop(body, vg.Inch/10, -vg.Inch/10, vg.Inch/10, -vg.Inch/10)
			p.Draw(body)
			leg := dc
			leg.Min.X = body.Max.X + vg.Inch/5
			leg.Max.Y = body.Max.Y
			legend.Draw(leg)
		},
	}, nil
}
