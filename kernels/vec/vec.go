package vec

import "unsafe"

// Float is the element type: float32 or float64.
type Float interface{ ~float32 | ~float64 }

// Grain is the least number of elements worth a goroutine of their own in
// these loops: below it, handing work to a helper costs more than it saves.
const Grain = 1 << 15

// useAsm selects the assembly loops where the CPU has them; the tests switch
// it off to run the Go loops on the same machine.
var useAsm = asmSupported

// HasAsm reports whether the functions run the AVX2 assembly.
func HasAsm() bool { return useAsm }

// binaryOp names the two-operand elementwise operations.
type binaryOp int

const (
	opAdd binaryOp = iota
	opSub
	opMul
	opDiv
	opMax
	opSelectPositive
	numBinary
)

// scalarOp names the operations of a slice and a scalar.
type scalarOp int

const (
	opScale scalarOp = iota
	opAddScalar
	opMaxScalar
	numScalar
)

// Add sets dst[i] = x[i] + y[i].
func Add[T Float](dst, x, y []T) { binary(opAdd, dst, x, y) }

// Sub sets dst[i] = x[i] - y[i].
func Sub[T Float](dst, x, y []T) { binary(opSub, dst, x, y) }

// Mul sets dst[i] = x[i] · y[i].
func Mul[T Float](dst, x, y []T) { binary(opMul, dst, x, y) }

// Div sets dst[i] = x[i] / y[i].
func Div[T Float](dst, x, y []T) { binary(opDiv, dst, x, y) }

// Max sets dst[i] to the larger of x[i] and y[i], NaN if either is NaN.
func Max[T Float](dst, x, y []T) { binary(opMax, dst, x, y) }

// SelectPositive sets dst[i] = x[i] where c[i] > 0, else 0: the backward
// pass of ReLU (c its input, x the incoming gradient). NaN in c selects 0.
func SelectPositive[T Float](dst, c, x []T) { binary(opSelectPositive, dst, c, x) }

// Scale sets dst[i] = alpha · x[i].
func Scale[T Float](dst []T, alpha T, x []T) { scalar(opScale, dst, x, alpha) }

// AddScalar sets dst[i] = x[i] + s.
func AddScalar[T Float](dst, x []T, s T) { scalar(opAddScalar, dst, x, s) }

// MaxScalar sets dst[i] to the larger of x[i] and s, NaN if either is NaN:
// MaxScalar(dst, x, 0) is ReLU.
func MaxScalar[T Float](dst, x []T, s T) {
	if s != s {
		for i := range dst {
			dst[i] = s
		}
		_ = x[:len(dst)]
		return
	}
	scalar(opMaxScalar, dst, x, s)
}

// Axpy sets y[i] += alpha · x[i] for i < len(y).
func Axpy[T Float](alpha T, x, y []T) {
	x = x[:len(y)]
	i := axpyAsm(alpha, x, y)
	for ; i < len(y); i++ {
		y[i] += alpha * x[i]
	}
}

// FMA sets dst[i] = x[i]·y[i] + z[i].
func FMA[T Float](dst, x, y, z []T) {
	n := len(dst)
	x, y, z = x[:n], y[:n], z[:n]
	i := fmaAsm(dst, x, y, z)
	for ; i < n; i++ {
		dst[i] = x[i]*y[i] + z[i]
	}
}

// Sum returns the sum of x.
func Sum[T Float](x []T) T {
	s, i := sumAsm(x)
	for ; i < len(x); i++ {
		s += x[i]
	}
	return s
}

// Dot returns Σ x[i]·y[i] over i < len(x).
func Dot[T Float](x, y []T) T {
	y = y[:len(x)]
	s, i := dotAsm(x, y)
	for ; i < len(x); i++ {
		s += x[i] * y[i]
	}
	return s
}

// ReduceMax returns the largest element of x, NaN if any is NaN, -Inf if x
// is empty.
func ReduceMax[T Float](x []T) T {
	m, i := reduceMaxAsm(x)
	for ; i < len(x); i++ {
		m = max2(m, x[i])
	}
	return m
}

// max2 is the NaN-propagating maximum.
func max2[T Float](a, b T) T {
	if a != a || a > b {
		return a
	}
	return b
}

// binary applies op elementwise: dst[i] = op(x[i], y[i]).
func binary[T Float](op binaryOp, dst, x, y []T) {
	n := len(dst)
	x, y = x[:n], y[:n]
	i := binaryAsm(op, dst, x, y)
	dst, x, y = dst[i:], x[i:], y[i:]
	switch op {
	case opAdd:
		for j := range dst {
			dst[j] = x[j] + y[j]
		}
	case opSub:
		for j := range dst {
			dst[j] = x[j] - y[j]
		}
	case opMul:
		for j := range dst {
			dst[j] = x[j] * y[j]
		}
	case opDiv:
		for j := range dst {
			dst[j] = x[j] / y[j]
		}
	case opMax:
		for j := range dst {
			dst[j] = max2(x[j], y[j])
		}
	case opSelectPositive:
		for j := range dst {
			v := y[j]
			if !(x[j] > 0) {
				v = 0
			}
			dst[j] = v
		}
	}
}

// scalar applies op elementwise: dst[i] = op(x[i], s).
func scalar[T Float](op scalarOp, dst, x []T, s T) {
	n := len(dst)
	x = x[:n]
	i := scalarAsm(op, dst, x, s)
	dst, x = dst[i:], x[i:]
	switch op {
	case opScale:
		for j := range dst {
			dst[j] = s * x[j]
		}
	case opAddScalar:
		for j := range dst {
			dst[j] = x[j] + s
		}
	case opMaxScalar:
		for j := range dst {
			dst[j] = max2(x[j], s)
		}
	}
}

// is32 reports whether T is float32-sized.
func is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// lanes is the number of T in a 256-bit vector.
func lanes[T Float]() int {
	if is32[T]() {
		return 8
	}
	return 4
}

// vectorPart is the length of the prefix of an n-element loop that the
// assembly handles: a multiple of the vector width, 0 without assembly.
func vectorPart[T Float](n int) int {
	if !useAsm {
		return 0
	}
	return n &^ (lanes[T]() - 1)
}

// The pointers at which the assembly reads a slice, reinterpreted for T's
// size (only called when the slice is not empty).
func p32[T Float](s []T) *float32 { return (*float32)(unsafe.Pointer(unsafe.SliceData(s))) }
func p64[T Float](s []T) *float64 { return (*float64)(unsafe.Pointer(unsafe.SliceData(s))) }
