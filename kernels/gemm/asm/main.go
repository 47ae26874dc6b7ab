// Command asm generates the AVX2+FMA microkernels of package gemm with avo:
//
//	go run . -out ../kernel_amd64.s -stubs ../kernel_stubs_amd64.go -pkg gemm
//
// (run by go generate in the parent package). It is a module of its own so
// that the runner module does not depend on avo.
//
// Each kernel computes mt tiles of mr×nr entries of C stacked vertically, with
// the mr×nr accumulators held in 12 ymm registers (Y0–Y11):
//
//	C[t·mr+i, j] = alpha·Σ_{p<kc} A_t(i, p)·B(p, j) + beta·C[t·mr+i, j]
//
// where A_t(i, p) is at a + (t·ats + i·rsa + p·csa) elements, so one loop
// reads packed panels (rsa = 1, csa = mr), row-major A in place (rsa = lda,
// csa = 1) and transposed A in place (rsa = 1, csa = lda); B(p, j) is the
// b[p·rsb + j] (a packed panel: rsb = nr; B in place: rsb = ldb); C[r, j] is
// c[r·ldc + j]. Each k step loads nr/8 (float32) vectors of B, broadcasts mr
// values of A and issues 12 FMAs. A nil mask stores whole rows; otherwise
// mask points at nr integers, -1 for the columns to load and store
// (VMASKMOVPS), 0 for those to leave alone. The kernels named …mb also load
// B under that mask, so that a partial panel of B is read in place without
// touching memory beyond its columns. beta = 0 (either sign) writes C
// without reading it.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// elem describes one element type's instructions.
type elem struct {
	goType, maskType string
	size, shift      int // bytes per element, log2(size)
	lanes            int // elements per ymm register
	broadcast        func(...Op)
	fma              func(...Op)
	mul              func(...Op)
	maskMove         func(m, mask, dst Op)
	// betaIsZero leaves ZF set when the beta argument is ±0.
	betaIsZero func(beta Mem)
}

var (
	f32 = elem{
		goType: "float32", maskType: "int32", size: 4, shift: 2, lanes: 8,
		broadcast: VBROADCASTSS, fma: VFMADD231PS, mul: VMULPS, maskMove: VMASKMOVPS,
		betaIsZero: func(beta Mem) {
			t := GP32()
			MOVL(beta, t)
			ANDL(U32(0x7fffffff), t)
		},
	}
	f64 = elem{
		goType: "float64", maskType: "int64", size: 8, shift: 3, lanes: 4,
		broadcast: VBROADCASTSD, fma: VFMADD231PD, mul: VMULPD, maskMove: VMASKMOVPD,
		betaIsZero: func(beta Mem) {
			t := GP64()
			MOVQ(beta, t)
			SHLQ(U8(1), t)
		},
	}
)

// prefetchKShift: A is prefetched 1<<prefetchKShift k steps ahead. 8, 16,
// 32 and 64 steps measured alike within the noise of the shared machine
// (2x swings between rounds); 16 steps cover an L2 miss and most of a miss
// to memory when each k step reads a new line.
const prefetchKShift = 4

func main() {
	ConstraintExpr("!purego") // the purego tag builds the Go fallback on amd64 too
	for _, maskB := range []bool{false, true} {
		kernel("sgemm6x16", f32, 6, 2, maskB)
		kernel("sgemm12x8", f32, 12, 1, maskB)
		kernel("dgemm6x8", f64, 6, 2, maskB)
		kernel("dgemm12x4", f64, 12, 1, maskB)
	}
	Generate()
}

// paramAddr is the stack address of a scalar argument.
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// loadBytes loads an element-count argument and converts it to bytes.
func loadBytes(name string, e elem) Register {
	r := Load(Param(name), GP64())
	SHLQ(U8(e.shift), r)
	return r
}

// kernel generates one microkernel of mr rows and nv vectors of columns;
// mr·nv must be 12. With maskB, B is loaded under the column mask (B read
// in place, partial panel), and the name gets the suffix "mb".
func kernel(name string, e elem, mr, nv int, maskB bool) {
	if mr*nv != 12 || mr%3 != 0 {
		panic("kernel shape")
	}
	nr := nv * e.lanes
	doc := fmt.Sprintf("%s computes mt stacked %d×%d tiles of C = alpha·A·B + beta·C (see the generator for the operands).", name, mr, nr)
	if maskB {
		name += "mb"
		doc = fmt.Sprintf("%s is %s with B loaded under the column mask.", name, name[:len(name)-2])
	}
	TEXT(name, NOSPLIT, fmt.Sprintf("func(kc, mt int, a *%[1]s, rsa, csa, ats int, b *%[1]s, rsb int, c *%[1]s, ldc int, alpha, beta %[1]s, mask *%[2]s)", e.goType, e.maskType))
	Pragma("noescape")
	Doc(doc)

	acc := make([][]VecPhysical, mr)
	for i := range acc {
		acc[i] = make([]VecPhysical, nv)
		for v := range acc[i] {
			acc[i][v] = yRegs[i*nv+v]
		}
	}
	bVec := []VecPhysical{Y12, Y13}[:nv]
	bcast := []VecPhysical{Y14, Y15}
	if nv == 1 {
		bcast = []VecPhysical{Y13, Y14, Y15}
	}
	// With maskB, the last register holds the mask of column vector v
	// (reloaded per vector when nv > 1) instead of a broadcast.
	var bMask VecPhysical
	if maskB {
		bMask = bcast[len(bcast)-1]
		bcast = bcast[:len(bcast)-1]
	}

	// a, c and mt live in their argument slots, advanced there tile by
	// tile, to leave registers for the k loop.
	Label(name + "_tile")
	Comment("Zero the accumulators.")
	for i := range acc {
		for _, r := range acc[i] {
			VXORPS(r, r, r)
		}
	}
	a := Load(Param("a"), GP64())
	kk := Load(Param("kc"), GP64())
	rsa := loadBytes("rsa", e)
	csa := loadBytes("csa", e)
	rsa3 := GP64()
	LEAQ(Mem{Base: rsa, Index: rsa, Scale: 2}, rsa3)
	bases := make([]Register, mr/3) // bases[q] points at row 3q of the tile
	for q := range bases {
		bases[q] = GP64()
		if q == 0 {
			MOVQ(a, bases[q])
		} else {
			LEAQ(Mem{Base: bases[q-1], Index: rsa3, Scale: 1}, bases[q])
		}
	}
	rowAddr := func(i int) Mem {
		m := Mem{Base: bases[i/3]}
		if i%3 > 0 {
			m.Index, m.Scale = rsa, uint8(i%3)
		}
		return m
	}
	bp := Load(Param("b"), GP64())
	rsb := loadBytes("rsb", e)
	var maskP Register
	if maskB {
		maskP = Load(Param("mask"), GP64())
	}
	// Prefetch: one line a k step from two tiles ahead (A in place or
	// packed, where a tile is contiguous) and row 0 prefetchK k steps ahead
	// (A transposed in place, where each k step is a new line).
	pf := GP64()
	ats := loadBytes("ats", e)
	LEAQ(Mem{Base: a, Index: ats, Scale: 2}, pf)
	pfK := GP64()
	MOVQ(csa, pfK)
	SHLQ(U8(prefetchKShift), pfK)
	ADDQ(bases[0], pfK)

	Label(name + "_k")
	PREFETCHT0(Mem{Base: pf})
	PREFETCHT0(Mem{Base: pfK})
	for v, r := range bVec {
		if !maskB {
			VMOVUPS(Mem{Base: bp, Disp: 32 * v}, r)
			continue
		}
		if v == 0 || nv > 1 {
			VMOVUPS(Mem{Base: maskP, Disp: 32 * v}, bMask)
		}
		e.maskMove(Mem{Base: bp, Disp: 32 * v}, bMask, r)
	}
	for i := 0; i < mr; i++ {
		t := bcast[i%len(bcast)]
		e.broadcast(rowAddr(i), t)
		for v := range bVec {
			e.fma(bVec[v], t, acc[i][v])
		}
	}
	ADDQ(rsb, bp)
	ADDQ(U8(64), pf)
	ADDQ(csa, pfK)
	for _, base := range bases {
		ADDQ(csa, base)
	}
	DECQ(kk)
	JNZ(LabelRef(name + "_k"))

	Comment("C = alpha·AB + beta·C")
	alpha, beta, mask, tmp := Y12, Y13, Y14, Y15
	e.broadcast(paramAddr("alpha"), alpha)
	for i := range acc {
		for _, r := range acc[i] {
			e.mul(alpha, r, r)
		}
	}
	ldc := loadBytes("ldc", e)
	c := Load(Param("c"), GP64())
	maskPtr := Load(Param("mask"), GP64())
	e.betaIsZero(paramAddr("beta"))
	JZ(LabelRef(name + "_beta0"))
	e.broadcast(paramAddr("beta"), beta)
	TESTQ(maskPtr, maskPtr)
	JNZ(LabelRef(name + "_masked"))
	store(acc, c, ldc, func(i, v int, m Mem) {
		e.fma(m, beta, acc[i][v])
		VMOVUPS(acc[i][v], m)
	})
	JMP(LabelRef(name + "_next"))

	Label(name + "_masked")
	storeMasked(acc, c, ldc, maskPtr, mask, func(i, v int, m Mem) {
		e.maskMove(m, mask, tmp)
		e.fma(tmp, beta, acc[i][v])
		e.maskMove(acc[i][v], mask, m)
	})
	JMP(LabelRef(name + "_next"))

	Label(name + "_beta0")
	TESTQ(maskPtr, maskPtr)
	JNZ(LabelRef(name + "_beta0_masked"))
	store(acc, c, ldc, func(i, v int, m Mem) {
		VMOVUPS(acc[i][v], m)
	})
	JMP(LabelRef(name + "_next"))

	Label(name + "_beta0_masked")
	storeMasked(acc, c, ldc, maskPtr, mask, func(i, v int, m Mem) {
		e.maskMove(acc[i][v], mask, m)
	})

	Label(name + "_next")
	ats = loadBytes("ats", e)
	ADDQ(ats, paramAddr("a"))
	step := GP64()
	IMUL3Q(U32(mr), ldc, step)
	ADDQ(step, paramAddr("c"))
	DECQ(paramAddr("mt"))
	JNZ(LabelRef(name + "_tile"))
	VZEROUPPER()
	RET()
}

var yRegs = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11}

// store emits op for every accumulator with the address of its C vector,
// row by row.
func store(acc [][]VecPhysical, c, ldc Register, op func(i, v int, m Mem)) {
	row := GP64()
	MOVQ(c, row)
	for i := range acc {
		for v := range acc[i] {
			op(i, v, Mem{Base: row, Disp: 32 * v})
		}
		if i < len(acc)-1 {
			ADDQ(ldc, row)
		}
	}
}

// storeMasked is store for partial tiles: one column vector at a time, its
// mask loaded into the mask register first.
func storeMasked(acc [][]VecPhysical, c, ldc, maskPtr Register, mask VecPhysical, op func(i, v int, m Mem)) {
	for v := range acc[0] {
		VMOVUPS(Mem{Base: maskPtr, Disp: 32 * v}, mask)
		row := GP64()
		MOVQ(c, row)
		for i := range acc {
			op(i, v, Mem{Base: row, Disp: 32 * v})
			if i < len(acc)-1 {
				ADDQ(ldc, row)
			}
		}
	}
}
