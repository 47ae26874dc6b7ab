package cputime

import "testing"

// TestSecondsGrows: spinning for a while shows up as CPU time.
func TestSecondsGrows(t *testing.T) {
	t0, ok := Seconds()
	if !ok {
		t.Skip("no CPU time on this platform")
	}
	x := 0.0
	for i := 0; i < 50_000_000; i++ {
		x += float64(i)
	}
	t1, _ := Seconds()
	if !(t1 > t0) || x == 0 {
		t.Errorf("CPU time %g then %g", t0, t1)
	}
}
