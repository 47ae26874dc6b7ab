package cpu

import "unsafe"

// The float loops that a vectorised package with the same semantics (such as
// the project's kernels/vec, AVX2+FMA) can replace: dst[i] = x[i] op y[i]
// (dst may be x or y; Max is NaN when an operand is), and the sum of a slice
// (in an order that depends on its length only). Today they are the plain Go
// loops below.
var (
	addF32, subF32, mulF32, divF32, maxF32 = goAdd[float32], goSub[float32], goMul[float32], goDiv[float32], goMax[float32]
	addF64, subF64, mulF64, divF64, maxF64 = goAdd[float64], goSub[float64], goMul[float64], goDiv[float64], goMax[float64]
	sumF32, sumF64                         = goSum[float32], goSum[float64]
)

func goAdd[T floatT](dst, x, y []T) {
	x, y = x[:len(dst)], y[:len(dst)]
	for i := range dst {
		dst[i] = x[i] + y[i]
	}
}

func goSub[T floatT](dst, x, y []T) {
	x, y = x[:len(dst)], y[:len(dst)]
	for i := range dst {
		dst[i] = x[i] - y[i]
	}
}

func goMul[T floatT](dst, x, y []T) {
	x, y = x[:len(dst)], y[:len(dst)]
	for i := range dst {
		dst[i] = x[i] * y[i]
	}
}

func goDiv[T floatT](dst, x, y []T) {
	x, y = x[:len(dst)], y[:len(dst)]
	for i := range dst {
		dst[i] = x[i] / y[i]
	}
}

func goMax[T floatT](dst, x, y []T) {
	x, y = x[:len(dst)], y[:len(dst)]
	for i := range dst {
		dst[i] = max(x[i], y[i])
	}
}

func goSum[T floatT](x []T) T {
	var s T
	for _, v := range x {
		s += v
	}
	return s
}

// vecKernel adapts a slice loop to a kernel.
func vecKernel[T floatT](f func(dst, x, y []T)) kfn {
	return func(d, a, b, _ unsafe.Pointer, n int) { f(sl[T](d, n), sl[T](a, n), sl[T](b, n)) }
}
