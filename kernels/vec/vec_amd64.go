//go:build !purego

package vec

import (
	"math"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd asm && go run . -out ../vec_amd64.s -stubs ../vec_stubs_amd64.go -pkg vec"

// asmSupported: the CPU (and the OS) runs AVX2 and FMA.
var asmSupported = cpu.X86.HasAVX2 && cpu.X86.HasFMA

var (
	binary32 = [numBinary]func(dst, x, y *float32, n int){add32, sub32, mul32, div32, max32, selectPositive32}
	binary64 = [numBinary]func(dst, x, y *float64, n int){add64, sub64, mul64, div64, max64, selectPositive64}
	scalar32 = [numScalar]func(dst, x *float32, s float32, n int){scale32, addScalar32, maxScalar32}
	scalar64 = [numScalar]func(dst, x *float64, s float64, n int){scale64, addScalar64, maxScalar64}
)

// The …Asm functions run the assembly on the vector part of a loop and
// return how many elements it handled (with the partial result of a
// reduction).

func binaryAsm[T Float](op binaryOp, dst, x, y []T) int {
	n := vectorPart[T](len(dst))
	if n == 0 {
		return 0
	}
	if is32[T]() {
		binary32[op](p32(dst), p32(x), p32(y), n)
	} else {
		binary64[op](p64(dst), p64(x), p64(y), n)
	}
	return n
}

func scalarAsm[T Float](op scalarOp, dst, x []T, s T) int {
	n := vectorPart[T](len(dst))
	if n == 0 {
		return 0
	}
	if is32[T]() {
		scalar32[op](p32(dst), p32(x), float32(s), n)
	} else {
		scalar64[op](p64(dst), p64(x), float64(s), n)
	}
	return n
}

func axpyAsm[T Float](alpha T, x, y []T) int {
	n := vectorPart[T](len(y))
	if n == 0 {
		return 0
	}
	if is32[T]() {
		axpy32(float32(alpha), p32(x), p32(y), n)
	} else {
		axpy64(float64(alpha), p64(x), p64(y), n)
	}
	return n
}

func fmaAsm[T Float](dst, x, y, z []T) int {
	n := vectorPart[T](len(dst))
	if n == 0 {
		return 0
	}
	if is32[T]() {
		fma32(p32(dst), p32(x), p32(y), p32(z), n)
	} else {
		fma64(p64(dst), p64(x), p64(y), p64(z), n)
	}
	return n
}

func sumAsm[T Float](x []T) (T, int) {
	n := vectorPart[T](len(x))
	if n == 0 {
		return 0, 0
	}
	if is32[T]() {
		return T(sum32(p32(x), n)), n
	}
	return T(sum64(p64(x), n)), n
}

func dotAsm[T Float](x, y []T) (T, int) {
	n := vectorPart[T](len(x))
	if n == 0 {
		return 0, 0
	}
	if is32[T]() {
		return T(dot32(p32(x), p32(y), n)), n
	}
	return T(dot64(p64(x), p64(y), n)), n
}

func reduceMaxAsm[T Float](x []T) (T, int) {
	n := vectorPart[T](len(x))
	if n == 0 {
		return T(math.Inf(-1)), 0
	}
	if is32[T]() {
		return T(reduceMax32(p32(x), n)), n
	}
	return T(reduceMax64(p64(x), n)), n
}
