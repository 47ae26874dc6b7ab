package plots

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

func gaussDensity(mu, sigma float64, n int, std float64) Density {
	d := Density{Grid: make([]float64, n), Values: make([]float64, n), Std: make([]float64, n)}
	for i := range d.Grid {
		d.Grid[i] = mu - 8*sigma + 16*sigma*float64(i)/float64(n-1)
		z := (d.Grid[i] - mu) / sigma
		d.Values[i] = math.Exp(-z*z/2) / (sigma * math.Sqrt(2*math.Pi))
		d.Std[i] = std * d.Values[i]
	}
	// Exact zeros in the tails, as the truncated SLQ kernels give.
	for i := 0; i < n/10; i++ {
		d.Values[i] = 0
	}
	return d
}

func testGrid(epochs int, std float64) SpectraGrid {
	g := SpectraGrid{Run: "LeNet+MNIST", Layer: "conv1.weight", Share: ShareColumn, LogY: true, Floor: 1e-12, Width: 4 * vg.Inch}
	for e := 1; e <= epochs; e++ {
		g.Rows = append(g.Rows, SpectraRow{Epoch: e, Layer: gaussDensity(0, 1, 200, std), Full: gaussDensity(3, 2, 300, std)})
	}
	return g
}

func render(t *testing.T, f *Figure, dpi int) (image.Image, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WritePNG(&buf, dpi); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return img, buf.Bytes()
}

// countNear counts pixels in r within a small distance of c.
func countNear(img image.Image, r image.Rectangle, c color.NRGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			d := math.Abs(float64(p.R)-float64(c.R)) + math.Abs(float64(p.G)-float64(c.G)) + math.Abs(float64(p.B)-float64(c.B))
			if d < 30 {
				n++
			}
		}
	}
	return n
}

func TestSpectraGridPNG(t *testing.T) {
	f, err := testGrid(3, 0.3).Figure()
	if err != nil {
		t.Fatal(err)
	}
	img, b1 := render(t, f, 150)
	// 4 in wide at 150 dpi; 3 rows of 0.2·4+0.1 in plus a 0.7 in heading.
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 600 || math.Abs(float64(h)-150*(0.7+3*0.9)) > 1 {
		t.Errorf("PNG is %d×%d, want 600×%v", w, h, 150*(0.7+3*0.9))
	}
	// The layer's blue is drawn on the left, the full network's violet on
	// the right, and neither on the other side.
	b := img.Bounds()
	left, right := image.Rect(0, 0, b.Dx()/2, b.Dy()), image.Rect(b.Dx()/2, 0, b.Dx(), b.Dy())
	if countNear(img, left, layerColour) < 50 || countNear(img, right, fullColour) < 50 {
		t.Errorf("layer pixels left %d, full pixels right %d; want both drawn", countNear(img, left, layerColour), countNear(img, right, fullColour))
	}
	if countNear(img, left, fullColour) != 0 || countNear(img, right, layerColour) != 0 {
		t.Error("a column has the other column's colour")
	}
	_, b2 := render(t, f, 150)
	if !bytes.Equal(b1, b2) {
		t.Error("two renderings of one figure differ")
	}
}

// svgStyles renders f as SVG and counts its style attributes.
func svgStyles(t *testing.T, f *Figure) map[string]int {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range styleRE.FindAllStringSubmatch(buf.String(), -1) {
		out[m[1]]++
	}
	return out
}

var styleRE = regexp.MustCompile(`style="([^"]*)"`)

// strokes counts the style attributes that stroke in colour c, whatever its
// opacity (SVG writes the colour un-premultiplied, to within a unit).
func strokes(styles map[string]int, c color.NRGBA) int {
	n := 0
	for s, k := range styles {
		m := strokeRE.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var r, g, b int
		fmt.Sscanf(m[1], "%02X%02X%02X", &r, &g, &b)
		if abs(r-int(c.R)) <= 1 && abs(g-int(c.G)) <= 1 && abs(b-int(c.B)) <= 1 {
			n += k
		}
	}
	return n
}

var strokeRE = regexp.MustCompile(`stroke:#([0-9A-F]{6})`)

func abs(x int) int { return max(x, -x) }

func TestSpectraGridLinesAndBand(t *testing.T) {
	// One line per panel in its column's colour; a translucent band per
	// panel only where std is non-zero.
	for _, std := range []float64{0.5, 0} {
		f, err := testGrid(3, std).Figure()
		if err != nil {
			t.Fatal(err)
		}
		st := svgStyles(t, f)
		if strokes(st, layerColour) != 3 || strokes(st, fullColour) != 3 {
			t.Errorf("std %v: %d layer lines, %d full lines; want 3 and 3", std, strokes(st, layerColour), strokes(st, fullColour))
		}
		bands := 0
		for s, k := range st {
			if strings.Contains(s, "fill-opacity") {
				bands += k
			}
		}
		if want := map[bool]int{true: 6, false: 0}[std > 0]; bands != want {
			t.Errorf("std %v: %d bands, want %d", std, bands, want)
		}
	}
}

func TestSpectraGridErrors(t *testing.T) {
	g := testGrid(1, 0)
	g.Floor = 0
	if _, err := g.Figure(); err == nil {
		t.Error("log axis with floor 0: no error")
	}
	g = testGrid(1, 0)
	g.Rows[0].Full.Values = g.Rows[0].Full.Values[:5]
	if _, err := g.Figure(); err == nil || !strings.Contains(err.Error(), "epoch 1") {
		t.Errorf("short density: %v", err)
	}
	g = testGrid(1, 0)
	g.Rows[0].Layer.Values = make([]float64, len(g.Rows[0].Layer.Grid))
	if _, err := g.Figure(); err == nil || !strings.Contains(err.Error(), "no positive") {
		t.Errorf("all-zero density on a log axis: %v", err)
	}
	if _, err := (SpectraGrid{Layer: "x"}).Figure(); err == nil {
		t.Error("no rows: no error")
	}
	// A linear axis takes zeros without a floor.
	g = testGrid(2, 0)
	g.LogY, g.Floor = false, 0
	if f, err := g.Figure(); err != nil {
		t.Error(err)
	} else {
		render(t, f, 30)
	}
}

func TestSVG(t *testing.T) {
	f, err := testGrid(2, 0.1).Figure()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML with the panel titles in it.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
	for _, want := range []string{"conv1.weight · epoch 2", "full · epoch 1", "LeNet+MNIST · conv1.weight"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("SVG lacks the text %q", want)
		}
	}
	var again bytes.Buffer
	f.WriteSVG(&again)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two SVG renderings differ")
	}
}

func TestSave(t *testing.T) {
	f, err := testGrid(1, 0).Figure()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := f.Save(dir, "sub/fig", 30, Formats)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, " ") != "sub/fig.png sub/fig.svg" {
		t.Errorf("Save wrote %v", files)
	}
	for _, name := range files {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := f.Save(dir, "fig", 30, []string{"pdf"}); err == nil {
		t.Error("unknown format: no error")
	}
}

func testCurves(groups ...string) Curves {
	cv := Curves{Title: "t", Groups: groups, LogLoss: true, Width: 6 * vg.Inch}
	for _, g := range groups {
		for s := range 3 {
			c := Curve{Group: g, Label: "seed " + string(rune('0'+s))}
			for e := 1; e <= 20; e++ {
				x := float64(e)
				c.Epoch = append(c.Epoch, x)
				c.TrainLoss = append(c.TrainLoss, math.Exp(-x/5))
				c.TestLoss = append(c.TestLoss, 0.3+math.Exp(-x/5))
				c.TrainAcc = append(c.TrainAcc, 1-0.5*math.Exp(-x/5))
				c.TestAcc = append(c.TestAcc, 0.9-0.5*math.Exp(-x/5))
			}
			cv.Runs = append(cv.Runs, c)
		}
	}
	return cv
}

func TestCurves(t *testing.T) {
	// One group: each rerun its own colour; several: one colour a group.
	for _, c := range []struct {
		groups  []string
		colours int
	}{{[]string{"sgd"}, 3}, {[]string{"sgd", "htr"}, 2}} {
		cv := testCurves(c.groups...)
		cv.Runs[0].TrainLoss[3] = 0 // clamped on the log axis, not a panic
		f, err := cv.Figure()
		if err != nil {
			t.Fatal(err)
		}
		st := svgStyles(t, f)
		alpha := map[bool]float64{true: 1, false: 0.7}[len(c.groups) == 1]
		used := 0
		for i := range palette[:6] { // palette[6] is black, the axes' colour
			// Four panels with one line per run of the colour, and one
			// legend entry.
			if n := strokes(st, colour(i, alpha)); n > 0 {
				used++
				if want := 4*len(cv.Runs)/c.colours + 1; n != want {
					t.Errorf("groups %v: colour %d stroked %d times, want %d", c.groups, i, n, want)
				}
			}
		}
		if used != c.colours {
			t.Errorf("groups %v: %d palette colours drawn, want %d", c.groups, used, c.colours)
		}
	}
	cv := testCurves("sgd")
	cv.Runs[1].Group = "other"
	if _, err := cv.Figure(); err == nil {
		t.Error("run in an undeclared group: no error")
	}
	cv = testCurves("sgd")
	cv.Runs[1].TestAcc = cv.Runs[1].TestAcc[:3]
	if _, err := cv.Figure(); err == nil {
		t.Error("ragged run: no error")
	}
}

func TestDepthProfile(t *testing.T) {
	d := DepthProfile{Title: "x", Subtitle: "s", YLabel: "y", Width: 6 * vg.Inch}
	for i := range 12 {
		d.Lines = append(d.Lines, DepthLine{Label: "run " + string(rune('a'+i)), Position: []float64{0, 0.5, 1}, Value: []float64{1, 0.2 + 0.05*float64(i), 0.9}})
	}
	f, err := d.Figure()
	if err != nil {
		t.Fatal(err)
	}
	// Twelve lines: ten colours, the first two reused; each stroked in the
	// plot and in the legend.
	st := svgStyles(t, f)
	for i := range palette {
		if i == 6 {
			continue // black, the axes' colour
		}
		if want := map[bool]int{true: 4, false: 2}[i < 2]; strokes(st, palette[i]) < want {
			t.Errorf("palette colour %d stroked %d times, want at least %d", i, strokes(st, palette[i]), want)
		}
	}
	d.Lines[0].Value = d.Lines[0].Value[:2]
	if _, err := d.Figure(); err == nil {
		t.Error("line with fewer values than positions: no error")
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(ts []string) []string {
		var out []string
		for _, s := range ts {
			if s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	var got []string
	for _, tk := range (logTicks{maxLabels: 4}).Ticks(3e-13, 0.3) {
		got = append(got, tk.Label)
	}
	// Decades 1e-12 … 0.1 (12 of them), labelled every 3rd from the top.
	if l := labels(got); len(got) != 12 || strings.Join(l, " ") != "1e-10 1e-7 1e-4 0.1" {
		t.Errorf("log ticks over 12 decades: %d ticks, labels %q", len(got), l)
	}
	got = got[:0]
	for _, tk := range (logTicks{maxLabels: 4}).Ticks(0.15, 0.9) {
		got = append(got, tk.Label)
	}
	if l := labels(got); strings.Join(l, " ") != "0.2 0.5" {
		t.Errorf("log ticks within a decade: labels %q", l)
	}
	// A loss between 1.4 and 2.8 holds only the 1-2-5 value 2: linear steps.
	got = got[:0]
	for _, tk := range (logTicks{maxLabels: 4}).Ticks(1.4, 2.8) {
		got = append(got, tk.Label)
	}
	if l := labels(got); len(l) < 3 {
		t.Errorf("log ticks on a narrow axis: labels %q, want at least 3", l)
	}
}

func TestLinearTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		n      int
		want   string
	}{
		{1, 400, 6, "100 200 300 400"},
		{-0.53, 5.2, 5, "0 2 4"},
		{-0.53, 5.2, 2, "0 5"},
		{0, 10, 4, "0.0 2.5 5.0 7.5 10.0"},
		{-30, 280, 5, "0 100 200"},
		{0, 1, 4, "0.00 0.25 0.50 0.75 1.00"},
	} {
		var l []string
		for _, tk := range (linearTicks{n: c.n}).Ticks(c.lo, c.hi) {
			if tk.Label != "" {
				l = append(l, tk.Label)
			}
		}
		if strings.Join(l, " ") != c.want {
			t.Errorf("linear ticks on [%v, %v]: %q, want %q", c.lo, c.hi, l, c.want)
		}
	}
}
