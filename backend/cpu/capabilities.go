package cpu

import (
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// supportedOps lists the operations the backend implements (for some
// dtypes: see the kernels).
var supportedOps = []backends.OpType{
	backends.OpTypeParameter, backends.OpTypeConstant, backends.OpTypeIota, backends.OpTypeIdentity,
	// Element-wise.
	backends.OpTypeAbs, backends.OpTypeNeg, backends.OpTypeSign, backends.OpTypeExp, backends.OpTypeExpm1,
	backends.OpTypeLog, backends.OpTypeLog1p, backends.OpTypeSqrt, backends.OpTypeRsqrt, backends.OpTypeTanh,
	backends.OpTypeLogistic, backends.OpTypeSin, backends.OpTypeCos, backends.OpTypeErf, backends.OpTypeFloor,
	backends.OpTypeCeil, backends.OpTypeRound, backends.OpTypeLogicalNot, backends.OpTypeBitwiseNot,
	backends.OpTypeIsFinite, backends.OpTypeIsNaN,
	backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv, backends.OpTypeRem,
	backends.OpTypePow, backends.OpTypeMax, backends.OpTypeMin,
	backends.OpTypeLogicalAnd, backends.OpTypeLogicalOr, backends.OpTypeLogicalXor,
	backends.OpTypeBitwiseAnd, backends.OpTypeBitwiseOr, backends.OpTypeBitwiseXor,
	backends.OpTypeEqual, backends.OpTypeNotEqual, backends.OpTypeGreaterThan, backends.OpTypeGreaterOrEqual,
	backends.OpTypeLessThan, backends.OpTypeLessOrEqual,
	backends.OpTypeWhere, backends.OpTypeClamp, backends.OpTypeConvertDType,
	// Views.
	backends.OpTypeReshape, backends.OpTypeTranspose, backends.OpTypeBroadcast, backends.OpTypeBroadcastInDim,
	backends.OpTypeSlice, backends.OpTypeReverse,
	// Data movement, reductions, products.
	backends.OpTypeConcatenate, backends.OpTypePad,
	backends.OpTypeReduceSum, backends.OpTypeReduceProduct, backends.OpTypeReduceMax, backends.OpTypeReduceMin,
	backends.OpTypeReduceLogicalAnd, backends.OpTypeReduceLogicalOr, backends.OpTypeArgMinMax,
	backends.OpTypeDotGeneral, backends.OpTypeDot,
}

// Capabilities returns the operations and dtypes the backend supports.
func Capabilities() backends.Capabilities {
	c := backends.Capabilities{Operations: map[backends.OpType]bool{}, DTypes: map[dtypes.DType]bool{}}
	for _, op := range supportedOps {
		c.Operations[op] = true
	}
	for _, dt := range supportedDTypes {
		c.DTypes[dt] = true
	}
	return c
}
