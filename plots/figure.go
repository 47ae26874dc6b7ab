// Package plots draws the runner's figures — per-layer spectral-density
// grids, training curves and layer-versus-full distance profiles — with
// gonum/plot, and writes them as PNG and SVG.
package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is a drawing of a fixed size that can be written as PNG or SVG. The
// same figure always gives the same bytes.
type Figure struct {
	Width, Height vg.Length
	draw          func(c draw.Canvas)
}

// Formats are the file formats a Figure is written in, by file extension.
var Formats = []string{"png", "svg"}

// WritePNG rasterises the figure at dpi dots per inch and writes it as PNG.
func (f *Figure) WritePNG(w io.Writer, dpi int) (err error) {
	if dpi < 1 {
		return fmt.Errorf("png: dpi %d, want at least 1", dpi)
	}
	defer recoverInto(&err, "png")
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))}
	f.draw(draw.New(c))
	_, err = c.WriteTo(w)
	return err
}

// WriteSVG writes the figure as SVG. Fonts are named, not embedded.
func (f *Figure) WriteSVG(w io.Writer) (err error) {
	defer recoverInto(&err, "svg")
	c := vgsvg.New(f.Width, f.Height)
	f.draw(draw.New(c))
	_, err = c.WriteTo(w)
	return err
}

// Save writes the figure as dir/name.<format> for each format ("png" or
// "svg"), PNG at dpi, and returns the file names written.
func (f *Figure) Save(dir, name string, dpi int, formats []string) ([]string, error) {
	var files []string
	for _, format := range formats {
		var buf bytes.Buffer
		var err error
		switch format {
		case "png":
			err = f.WritePNG(&buf, dpi)
		case "svg":
			err = f.WriteSVG(&buf)
		default:
			err = fmt.Errorf("unknown format %q (want png or svg)", format)
		}
		if err != nil {
			return files, fmt.Errorf("figure %s: %w", name, err)
		}
		file := name + "." + format
		path := filepath.Join(dir, file)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return files, err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return files, fmt.Errorf("figure %s: %w", name, err)
		}
		files = append(files, file)
	}
	return files, nil
}

// recoverInto turns a panic of the drawing code (gonum/plot panics on, for
// example, a non-positive value on a log axis) into an error.
func recoverInto(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: drawing failed: %v", what, r)
	}
}

// Text sizes, in points, of the figures' parts.
const (
	titleSize  = 11
	headSize   = 13
	labelSize  = 9
	tickSize   = 7.5
	legendSize = 9
)

// sans returns the figures' font at size points.
func sans(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// newPlot returns a plot with the figures' fonts and sizes.
func newPlot() *plot.Plot {
	p := plot.New()
	p.Title.TextStyle.Font = sans(titleSize)
	p.Title.Padding = vg.Points(3)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = sans(labelSize)
		ax.Tick.Label.Font = sans(tickSize)
		ax.Padding = vg.Points(2)
		ax.Tick.Length = vg.Points(3)
	}
	p.Legend.TextStyle.Font = sans(legendSize)
	return p
}

// palette is a set of colours that stay apart for readers with common colour
// vision deficiencies (Okabe–Ito, then Tableau's), in drawing order.
var palette = []color.NRGBA{
	{0x00, 0x72, 0xB2, 0xFF}, // blue
	{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xFF}, // orange
	{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	{0x00, 0x00, 0x00, 0xFF}, // black
	{0x8C, 0x56, 0x4B, 0xFF}, // brown
	{0x7F, 0x7F, 0x7F, 0xFF}, // grey
	{0xBC, 0xBD, 0x22, 0xFF}, // olive
}

// colour returns the i-th palette colour with alpha a in [0, 1].
func colour(i int, a float64) color.NRGBA {
	c := palette[i%len(palette)]
	c.A = uint8(a*255 + 0.5)
	return c
}

// textBox draws txt centred in c at size points.
func textBox(c draw.Canvas, txt string, size vg.Length) {
	sty := draw.TextStyle{
		Color:   color.Black,
		Font:    sans(size),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: plot.DefaultTextHandler,
	}
	c.FillText(sty, c.Center(), txt)
}
