//go:build !cgo || noxla

package backend

import "testing"

func TestNoXLA(t *testing.T) {
	checkErrors(t, []errorCase{{"xla:cuda", []string{"built without XLA", "--backend cpu"}}})
}
