// Package paths runs a test on each code path of a kernel package: its
// assembly, where the CPU has it, and its pure-Go fallback.
package paths

import "testing"

// Each runs f as subtest "asm" with *useAsm = true (skipped, with a log line,
// when supported is false) and as subtest "go" with *useAsm = false, then
// restores *useAsm.
func Each(t *testing.T, supported bool, useAsm *bool, f func(t *testing.T)) {
	t.Helper()
	defer func(saved bool) { *useAsm = saved }(*useAsm)
	for _, asm := range []bool{true, false} {
		name := "go"
		if asm {
			name = "asm"
			if !supported {
				t.Log("no AVX2+FMA: assembly not tested")
				continue
			}
		}
		*useAsm = asm
		t.Run(name, f)
	}
}
