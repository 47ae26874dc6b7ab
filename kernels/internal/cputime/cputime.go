// Package cputime reads the CPU time a process has used, so that benchmarks
// on a shared machine can report work per CPU-second beside work per
// wall-clock second: the first barely moves when other processes take the
// cores, the second drops with their load.
package cputime

// Seconds returns the user and system CPU time of this process so far, and
// false where the platform does not say.
func Seconds() (float64, bool) { return seconds() }
