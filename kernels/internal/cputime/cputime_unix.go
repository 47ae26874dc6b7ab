//go:build unix

package cputime

import "syscall"

func seconds() (float64, bool) {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return 0, false
	}
	return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e9, true
}
