package analysis

import "testing"

// BenchmarkLayerVsFull measures both distances for one pair of 1024-point
// densities, the unit of work of a distances table (12 runs × up to 21
// layers × 50 epochs of them for the seed's study).
func BenchmarkLayerVsFull(b *testing.B) {
	x1, p1 := gaussian(0, 1, -8, 8, 1024)
	x2, p2 := gaussian(1, 2, -15, 17, 1024)
	for b.Loop() {
		if _, err := SeedDistance(p1, p2); err != nil {
			b.Fatal(err)
		}
		if _, err := DensityW1(x1, p1, x2, p2); err != nil {
			b.Fatal(err)
		}
	}
}
