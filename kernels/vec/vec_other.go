//go:build !amd64 || purego

package vec

import "math"

// asmSupported: there is assembly on amd64 only (and not with the purego
// build tag, which builds this fallback configuration there).
const asmSupported = false

// Without assembly the …Asm functions handle nothing.

func binaryAsm[T Float](binaryOp, []T, []T, []T) int { return 0 }
func scalarAsm[T Float](scalarOp, []T, []T, T) int   { return 0 }
func axpyAsm[T Float](T, []T, []T) int               { return 0 }
func fmaAsm[T Float]([]T, []T, []T, []T) int         { return 0 }
func sumAsm[T Float]([]T) (T, int)                   { return 0, 0 }
func dotAsm[T Float]([]T, []T) (T, int)              { return 0, 0 }
func reduceMaxAsm[T Float]([]T) (T, int)             { return T(math.Inf(-1)), 0 }
