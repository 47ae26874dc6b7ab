package plots

import (
	"io"
	"testing"
)

// BenchmarkSpectraGrid50 renders a 50-epoch grid of 1024-point densities
// with bands, at the plot kind's default size and 100 dpi: the largest
// figure a seed-sized study draws, once per layer.
func BenchmarkSpectraGrid50(b *testing.B) {
	g := SpectraGrid{Layer: "conv1.weight", Share: ShareColumn, LogY: true, Floor: 1e-12}
	for e := 1; e <= 50; e++ {
		g.Rows = append(g.Rows, SpectraRow{Epoch: e, Layer: gaussDensity(0, 1, 1024, 0.3), Full: gaussDensity(3, 2, 1024, 0.3)})
	}
	for b.Loop() {
		f, err := g.Figure()
		if err != nil {
			b.Fatal(err)
		}
		if err := f.WritePNG(io.Discard, 100); err != nil {
			b.Fatal(err)
		}
	}
}
