package cputime

import "testing"

// TestUsedGrows: spinning for a while shows up as CPU time.
func TestUsedGrows(t *testing.T) {
	if !Measured() {
		t.Skip("no CPU time on this platform")
	}
	t0 := Used()
	x := 0.0
	for i := 0; i < 50_000_000; i++ {
		x += float64(i)
	}
	t1 := Used()
	if !(t1 > t0) || x == 0 {
		t.Errorf("CPU time %v then %v", t0, t1)
	}
}
