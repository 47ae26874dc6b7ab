// Package cputime reads the CPU time this process has used, so that benchmarks
// on a shared machine can report work per CPU-second beside work per
// wall-clock second: the first barely moves when other processes take the
// cores, the second drops with their load.
package cputime

import "time"

// Used returns the user and system CPU time this process has used so far,
// or 0 where the platform does not say (see Measured).
func Used() time.Duration {
	d, _ := used()
	return d
}

// Measured reports whether Used measures CPU time on this platform.
func Measured() bool {
	_, ok := used()
	return ok
}
