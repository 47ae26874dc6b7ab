package cpu

import (
	"math"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Element-wise kernels. Each computes n values into dst from up to three
// operands of n values each; all are plain loops over slices of equal length
// (so the compiler drops the bounds checks), chosen once per fused node at
// compile time.

// kfn is an element-wise kernel.
type kfn func(dst, a, b, c unsafe.Pointer, n int)

type floatT interface{ ~float32 | ~float64 }
type intT interface{ ~int32 | ~int64 | ~uint8 }
type numT interface{ floatT | intT }

// sl views n values of type T at p.
func sl[T any](p unsafe.Pointer, n int) []T { return unsafe.Slice((*T)(p), n) }

// forDType returns the kernel for dt among the instantiations given (nil
// where the dtype has none).
func forDType(dt dtypes.DType, f32, f64, i32, i64, u8 kfn) kfn {
	switch dt {
	case dtypes.Float32:
		return f32
	case dtypes.Float64:
		return f64
	case dtypes.Int32:
		return i32
	case dtypes.Int64:
		return i64
	case dtypes.Uint8:
		return u8
	}
	return nil
}

// unaryKernel returns the kernel of a unary op on dt, or nil.
func unaryKernel(op backends.OpType, dt dtypes.DType) kfn {
	fl := func(f32, f64 kfn) kfn { return forDType(dt, f32, f64, nil, nil, nil) }
	switch op {
	case backends.OpTypeNeg:
		return forDType(dt, kNeg[float32], kNeg[float64], kNeg[int32], kNeg[int64], nil)
	case backends.OpTypeAbs:
		return forDType(dt, kAbsF[float32], kAbsF[float64], kAbsI[int32], kAbsI[int64], kCopy[uint8])
	case backends.OpTypeSign:
		return forDType(dt, kSignF[float32], kSignF[float64], kSignI[int32], kSignI[int64], kSignI[uint8])
	case backends.OpTypeExp:
		return fl(kMath[float32](math.Exp), kMath[float64](math.Exp))
	case backends.OpTypeExpm1:
		return fl(kMath[float32](math.Expm1), kMath[float64](math.Expm1))
	case backends.OpTypeLog:
		return fl(kMath[float32](math.Log), kMath[float64](math.Log))
	case backends.OpTypeLog1p:
		return fl(kMath[float32](math.Log1p), kMath[float64](math.Log1p))
	case backends.OpTypeSqrt:
		return fl(kSqrt[float32], kSqrt[float64])
	case backends.OpTypeRsqrt:
		return fl(kRsqrt[float32], kRsqrt[float64])
	case backends.OpTypeTanh:
		return fl(kMath[float32](math.Tanh), kMath[float64](math.Tanh))
	case backends.OpTypeLogistic:
		return fl(kMath[float32](logistic), kMath[float64](logistic))
	case backends.OpTypeSin:
		return fl(kMath[float32](math.Sin), kMath[float64](math.Sin))
	case backends.OpTypeCos:
		return fl(kMath[float32](math.Cos), kMath[float64](math.Cos))
	case backends.OpTypeErf:
		return fl(kMath[float32](math.Erf), kMath[float64](math.Erf))
	case backends.OpTypeFloor:
		return fl(kMath[float32](math.Floor), kMath[float64](math.Floor))
	case backends.OpTypeCeil:
		return fl(kMath[float32](math.Ceil), kMath[float64](math.Ceil))
	case backends.OpTypeRound:
		return fl(kMath[float32](math.RoundToEven), kMath[float64](math.RoundToEven))
	case backends.OpTypeBitwiseNot:
		return forDType(dt, nil, nil, kBitNot[int32], kBitNot[int64], kBitNot[uint8])
	case backends.OpTypeLogicalNot:
		if dt == dtypes.Bool {
			return kNot
		}
	case backends.OpTypeIsFinite:
		return fl(kIsFinite[float32], kIsFinite[float64])
	case backends.OpTypeIsNaN:
		return fl(kIsNaN[float32], kIsNaN[float64])
	}
	return nil
}

func unarySupported(op backends.OpType, dt dtypes.DType) bool { return unaryKernel(op, dt) != nil }

// binaryKernel returns the kernel of a binary op (arithmetic, logical or a
// comparison) whose operands have dtype dt, or nil.
func binaryKernel(op backends.OpType, dt dtypes.DType) kfn {
	switch op {
	case backends.OpTypeAdd:
		return forDType(dt, vecKernel(addF32), vecKernel(addF64), kAdd[int32], kAdd[int64], kAdd[uint8])
	case backends.OpTypeSub:
		return forDType(dt, vecKernel(subF32), vecKernel(subF64), kSub[int32], kSub[int64], kSub[uint8])
	case backends.OpTypeMul:
		return forDType(dt, vecKernel(mulF32), vecKernel(mulF64), kMul[int32], kMul[int64], kMul[uint8])
	case backends.OpTypeDiv:
		return forDType(dt, vecKernel(divF32), vecKernel(divF64), kDiv[int32], kDiv[int64], kDiv[uint8])
	case backends.OpTypeMax:
		return forDType(dt, vecKernel(maxF32), vecKernel(maxF64), kMax[int32], kMax[int64], kMax[uint8])
	case backends.OpTypeMin:
		return forDType(dt, kMin[float32], kMin[float64], kMin[int32], kMin[int64], kMin[uint8])
	case backends.OpTypePow:
		return forDType(dt, kPowF[float32], kPowF[float64], kPowI[int32], kPowI[int64], kPowI[uint8])
	case backends.OpTypeRem:
		return forDType(dt, kRemF[float32], kRemF[float64], kRemI[int32], kRemI[int64], kRemI[uint8])
	case backends.OpTypeBitwiseAnd:
		return forDType(dt, nil, nil, kAnd[int32], kAnd[int64], kAnd[uint8])
	case backends.OpTypeBitwiseOr:
		return forDType(dt, nil, nil, kOr[int32], kOr[int64], kOr[uint8])
	case backends.OpTypeBitwiseXor:
		return forDType(dt, nil, nil, kXor[int32], kXor[int64], kXor[uint8])
	case backends.OpTypeLogicalAnd:
		if dt == dtypes.Bool {
			return kLAnd
		}
	case backends.OpTypeLogicalOr:
		if dt == dtypes.Bool {
			return kLOr
		}
	case backends.OpTypeLogicalXor:
		if dt == dtypes.Bool {
			return kLXor
		}
	case backends.OpTypeEqual:
		if dt == dtypes.Bool {
			return kEq[bool]
		}
		return forDType(dt, kEq[float32], kEq[float64], kEq[int32], kEq[int64], kEq[uint8])
	case backends.OpTypeNotEqual:
		if dt == dtypes.Bool {
			return kNe[bool]
		}
		return forDType(dt, kNe[float32], kNe[float64], kNe[int32], kNe[int64], kNe[uint8])
	case backends.OpTypeGreaterThan:
		return forDType(dt, kGt[float32], kGt[float64], kGt[int32], kGt[int64], kGt[uint8])
	case backends.OpTypeGreaterOrEqual:
		return forDType(dt, kGe[float32], kGe[float64], kGe[int32], kGe[int64], kGe[uint8])
	case backends.OpTypeLessThan:
		return forDType(dt, kLt[float32], kLt[float64], kLt[int32], kLt[int64], kLt[uint8])
	case backends.OpTypeLessOrEqual:
		return forDType(dt, kLe[float32], kLe[float64], kLe[int32], kLe[int64], kLe[uint8])
	}
	return nil
}

func binarySupported(op backends.OpType, dt dtypes.DType) bool { return binaryKernel(op, dt) != nil }

// whereKernel selects b where a (bool) holds, else c, without branches (the
// condition of a ReLU or a max-pool is unpredictable).
func whereKernel(dt dtypes.DType) kfn {
	switch dt.Size() {
	case 1:
		return kWhere[uint8]
	case 4:
		return kWhere[uint32]
	}
	return kWhere[uint64]
}

// clampKernel computes min(max(b, a), c).
func clampKernel(dt dtypes.DType) kfn {
	return forDType(dt, kClamp[float32], kClamp[float64], kClamp[int32], kClamp[int64], kClamp[uint8])
}

// copyKernel copies n values of dt.
func copyKernel(dt dtypes.DType) kfn {
	switch dt.Size() {
	case 1:
		return kCopy[uint8]
	case 4:
		return kCopy[uint32]
	}
	return kCopy[uint64]
}

// convertKernel converts from one dtype to another.
func convertKernel(from, to dtypes.DType) kfn {
	switch from {
	case dtypes.Float32:
		return convertFrom[float32](to)
	case dtypes.Float64:
		return convertFrom[float64](to)
	case dtypes.Int32:
		return convertFrom[int32](to)
	case dtypes.Int64:
		return convertFrom[int64](to)
	case dtypes.Uint8:
		return convertFrom[uint8](to)
	case dtypes.Bool:
		switch to {
		case dtypes.Float32:
			return kFromBool[float32]
		case dtypes.Float64:
			return kFromBool[float64]
		case dtypes.Int32:
			return kFromBool[int32]
		case dtypes.Int64:
			return kFromBool[int64]
		case dtypes.Uint8:
			return kFromBool[uint8]
		case dtypes.Bool:
			return kCopy[uint8]
		}
	}
	return nil
}

func convertFrom[F numT](to dtypes.DType) kfn {
	switch to {
	case dtypes.Float32:
		return kConv[F, float32]
	case dtypes.Float64:
		return kConv[F, float64]
	case dtypes.Int32:
		return kConv[F, int32]
	case dtypes.Int64:
		return kConv[F, int64]
	case dtypes.Uint8:
		return kConv[F, uint8]
	case dtypes.Bool:
		return kToBool[F]
	}
	return nil
}

func logistic(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func kCopy[T any](d, a, _, _ unsafe.Pointer, n int) { copy(sl[T](d, n), sl[T](a, n)) }

func kNeg[T numT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = -aa[i]
	}
}

func kAbsF[T floatT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = T(math.Abs(float64(aa[i])))
	}
}

func kAbsI[T intT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		v := aa[i]
		if v < 0 {
			v = -v
		}
		dd[i] = v
	}
}

func kSignF[T floatT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		v := aa[i]
		switch {
		case v > 0:
			dd[i] = 1
		case v < 0:
			dd[i] = -1
		default:
			dd[i] = v // 0, −0 or NaN
		}
	}
}

func kSignI[T intT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		v := aa[i]
		switch {
		case v > 0:
			dd[i] = 1
		case v < 0:
			var one T = 1
			dd[i] = -one
		default:
			dd[i] = 0
		}
	}
}

func kMath[T floatT](f func(float64) float64) kfn {
	return func(d, a, _, _ unsafe.Pointer, n int) {
		dd := sl[T](d, n)
		aa := sl[T](a, n)[:len(dd)]
		for i := range dd {
			dd[i] = T(f(float64(aa[i])))
		}
	}
}

func kSqrt[T floatT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = T(math.Sqrt(float64(aa[i])))
	}
}

func kRsqrt[T floatT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = T(1 / math.Sqrt(float64(aa[i])))
	}
}

func kBitNot[T intT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = ^aa[i]
	}
}

func kNot(d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[bool](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = !aa[i]
	}
}

func kIsFinite[T floatT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		v := float64(aa[i])
		dd[i] = !math.IsInf(v, 0) && !math.IsNaN(v)
	}
}

func kIsNaN[T floatT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] != aa[i]
	}
}

func kAdd[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] + bb[i]
	}
}

func kSub[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] - bb[i]
	}
}

func kMul[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] * bb[i]
	}
}

func kDiv[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] / bb[i]
	}
}

func kMax[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = max(aa[i], bb[i])
	}
}

func kMin[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = min(aa[i], bb[i])
	}
}

func kPowF[T floatT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = T(math.Pow(float64(aa[i]), float64(bb[i])))
	}
}

func kPowI[T intT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		base, e, r := aa[i], bb[i], T(1)
		for ; e > 0; e >>= 1 {
			if e&1 == 1 {
				r *= base
			}
			base *= base
		}
		dd[i] = r
	}
}

func kRemF[T floatT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = T(math.Mod(float64(aa[i]), float64(bb[i])))
	}
}

func kRemI[T intT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] % bb[i]
	}
}

func kAnd[T intT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] & bb[i]
	}
}

func kOr[T intT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] | bb[i]
	}
}

func kXor[T intT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] ^ bb[i]
	}
}

func kLAnd(d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[bool](a, n)[:len(dd)]
	bb := sl[bool](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] && bb[i]
	}
}

func kLOr(d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[bool](a, n)[:len(dd)]
	bb := sl[bool](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] || bb[i]
	}
}

func kLXor(d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[bool](a, n)[:len(dd)]
	bb := sl[bool](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] != bb[i]
	}
}

func kEq[T comparable](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] == bb[i]
	}
}

func kNe[T comparable](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] != bb[i]
	}
}

func kGt[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] > bb[i]
	}
}

func kGe[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] >= bb[i]
	}
}

func kLt[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] < bb[i]
	}
}

func kLe[T numT](d, a, b, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[T](a, n)[:len(dd)]
	bb := sl[T](b, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] <= bb[i]
	}
}

func kWhere[T uint8 | uint32 | uint64](d, a, b, c unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	cond := sl[uint8](a, n)[:len(dd)] // bools are bytes 0 or 1
	bb := sl[T](b, n)[:len(dd)]
	cc := sl[T](c, n)[:len(dd)]
	for i := range dd {
		m := -T(cond[i])
		dd[i] = bb[i]&m | cc[i]&^m
	}
}

func kClamp[T numT](d, a, b, c unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	lo := sl[T](a, n)[:len(dd)]
	x := sl[T](b, n)[:len(dd)]
	hi := sl[T](c, n)[:len(dd)]
	for i := range dd {
		dd[i] = min(max(x[i], lo[i]), hi[i])
	}
}

func kConv[F, T numT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[F](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = T(aa[i])
	}
}

func kToBool[F numT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[bool](d, n)
	aa := sl[F](a, n)[:len(dd)]
	for i := range dd {
		dd[i] = aa[i] != 0
	}
}

func kFromBool[T numT](d, a, _, _ unsafe.Pointer, n int) {
	dd := sl[T](d, n)
	aa := sl[bool](a, n)[:len(dd)]
	for i := range dd {
		if aa[i] {
			dd[i] = 1
		} else {
			dd[i] = 0
		}
	}
}
