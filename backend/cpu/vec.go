package cpu

import (
	"unsafe"

	"github.com/hessian-spectra/runner/kernels/vec"
)

// The float loops that a vectorised package with the same semantics (such as
// the project's kernels/vec, AVX2+FMA) can replace: dst[i] = x[i] op y[i]
// (dst may be x or y; Max is NaN when an operand is), and the sum of a slice
// (in an order that depends on its length only). They are kernels/vec's
// (AVX2 where the CPU has it); the plain kernels of kernels.go (kAdd, …) are
// the same operations, and the tests compare them.
var (
	addF32, subF32, mulF32, divF32, maxF32 = vec.Add[float32], vec.Sub[float32], vec.Mul[float32], vec.Div[float32], vec.Max[float32]
	addF64, subF64, mulF64, divF64, maxF64 = vec.Add[float64], vec.Sub[float64], vec.Mul[float64], vec.Div[float64], vec.Max[float64]
	sumF32, sumF64                         = vec.Sum[float32], vec.Sum[float64]
)

// vecKernel adapts a slice loop to a kernel.
func vecKernel[T floatT](f func(dst, x, y []T)) kfn {
	return func(d, a, b, _ unsafe.Pointer, n int) { f(sl[T](d, n), sl[T](a, n), sl[T](b, n)) }
}
