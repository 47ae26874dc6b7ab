// Command asm generates the AVX2 loops of package vec with avo:
//
//	go run . -out ../vec_amd64.s -stubs ../vec_stubs_amd64.go -pkg vec
//
// (run by go generate in the parent package). It is a module of its own so
// that the runner module does not depend on avo.
//
// Every function processes n elements, n a multiple of the vector width (8
// float32 or 4 float64); the Go callers do the remainder. The main loops
// handle four vectors a step, then single vectors. Names end in 32 or 64.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// elem describes one element type's instructions.
type elem struct {
	suffix, goType string
	size, lanes    int
	add, sub, mul  func(...Op)
	div, max, cmp  func(...Op)
	and, or        func(...Op)
	blend          func(mask, src, other, dst Op)
	fma231, fma213 func(...Op)
	broadcast      func(...Op)
	// hsum and hmax reduce a ymm register to its scalar in the low lane.
	hsum, hmax func(y VecVirtual) Register
}

var f32, f64 elem

func init() {
	f32 = elem{
		suffix: "32", goType: "float32", size: 4, lanes: 8,
		add: VADDPS, sub: VSUBPS, mul: VMULPS, div: VDIVPS, max: VMAXPS, cmp: VCMPPS,
		and: VANDPS, or: VORPS, blend: VBLENDVPS,
		fma231: VFMADD231PS, fma213: VFMADD213PS, broadcast: VBROADCASTSS,
	}
	f32.hsum = func(y VecVirtual) Register { return horizontal32(y, VADDPS) }
	f32.hmax = func(y VecVirtual) Register { return horizontal32(y, VMAXPS) }
	f64 = elem{
		suffix: "64", goType: "float64", size: 8, lanes: 4,
		add: VADDPD, sub: VSUBPD, mul: VMULPD, div: VDIVPD, max: VMAXPD, cmp: VCMPPD,
		and: VANDPD, or: VORPD, blend: VBLENDVPD,
		fma231: VFMADD231PD, fma213: VFMADD213PD, broadcast: VBROADCASTSD,
	}
	f64.hsum = func(y VecVirtual) Register { return horizontal64(y, VADDPD) }
	f64.hmax = func(y VecVirtual) Register { return horizontal64(y, VMAXPD) }
}

// Comparison predicates (VCMPPS immediates).
const (
	cmpUnord = 3    // either operand NaN
	cmpGT    = 0x1e // greater than, ordered, quiet
)

func main() {
	ConstraintExpr("!purego") // the purego tag builds the Go fallback on amd64 too
	for _, e := range []elem{f32, f64} {
		binary("add", e, func(x, y, r VecVirtual) { e.add(y, x, r) })
		binary("sub", e, func(x, y, r VecVirtual) { e.sub(y, x, r) })
		binary("mul", e, func(x, y, r VecVirtual) { e.mul(y, x, r) })
		binary("div", e, func(x, y, r VecVirtual) { e.div(y, x, r) })
		binary("max", e, func(x, y, r VecVirtual) { maxNaN(e, x, y, r) })
		binary("selectPositive", e, func(c, x, r VecVirtual) {
			// r = x where c > 0 (ordered: NaN is not), else 0
			zero := YMM()
			VXORPS(zero, zero, zero)
			e.cmp(U8(cmpGT), zero, c, r)
			e.and(x, r, r)
		})
		scalar("scale", e, func(s, x, r VecVirtual) { e.mul(s, x, r) })
		scalar("addScalar", e, func(s, x, r VecVirtual) { e.add(s, x, r) })
		scalar("maxScalar", e, func(s, x, r VecVirtual) { e.max(x, s, r) }) // NaN x wins; s is not NaN (checked in Go)
		axpy(e)
		fma(e)
		sum(e)
		dot(e)
		reduceMax(e)
	}
	Generate()
}

// maxNaN sets r = max(x, y), NaN when either is.
func maxNaN(e elem, x, y, r VecVirtual) {
	// MAXPS returns its second source when either is NaN: that is x here.
	e.max(x, y, r)
	nan := YMM()
	e.cmp(U8(cmpUnord), y, y, nan)
	e.blend(nan, y, r, r)
}

// stream emits the loop shared by all functions: body(i) handles the vector
// at byte offset 32·i from the current pointers, four at a time then one.
// advance moves the pointers on by the given number of bytes.
func stream(name string, n Register, e elem, body func(i int), advance func(bytes int)) {
	Label(name + "_loop4")
	CMPQ(n, U32(4*e.lanes))
	JL(LabelRef(name + "_loop1"))
	for i := 0; i < 4; i++ {
		body(i)
	}
	advance(4 * 32)
	SUBQ(U32(4*e.lanes), n)
	JMP(LabelRef(name + "_loop4"))
	Label(name + "_loop1")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body(0)
	advance(32)
	SUBQ(U32(e.lanes), n)
	JMP(LabelRef(name + "_loop1"))
	Label(name + "_done")
}

func pointers(names ...string) []Register {
	var rs []Register
	for _, n := range names {
		rs = append(rs, Load(Param(n), GP64()))
	}
	return rs
}

func advanceAll(ps []Register) func(int) {
	return func(b int) {
		for _, p := range ps {
			ADDQ(U32(b), p)
		}
	}
}

// binary: dst[i] = op(x[i], y[i]).
func binary(op string, e elem, f func(x, y, r VecVirtual)) {
	name := op + e.suffix
	TEXT(name, NOSPLIT, fmt.Sprintf("func(dst, x, y *%s, n int)", e.goType))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s applies %s to n elements of x and y into dst.", name, op))
	ps := pointers("dst", "x", "y")
	n := Load(Param("n"), GP64())
	stream(name, n, e, func(i int) {
		x, y, r := YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: ps[1], Disp: 32 * i}, x)
		VMOVUPS(Mem{Base: ps[2], Disp: 32 * i}, y)
		f(x, y, r)
		VMOVUPS(r, Mem{Base: ps[0], Disp: 32 * i})
	}, advanceAll(ps))
	VZEROUPPER()
	RET()
}

// scalar: dst[i] = op(s, x[i]).
func scalar(op string, e elem, f func(s, x, r VecVirtual)) {
	name := op + e.suffix
	TEXT(name, NOSPLIT, fmt.Sprintf("func(dst, x *%s, s %s, n int)", e.goType, e.goType))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s applies %s with scalar s to n elements of x into dst.", name, op))
	ps := pointers("dst", "x")
	s := YMM()
	e.broadcast(paramAddr("s"), s)
	n := Load(Param("n"), GP64())
	stream(name, n, e, func(i int) {
		x, r := YMM(), YMM()
		VMOVUPS(Mem{Base: ps[1], Disp: 32 * i}, x)
		f(s, x, r)
		VMOVUPS(r, Mem{Base: ps[0], Disp: 32 * i})
	}, advanceAll(ps))
	VZEROUPPER()
	RET()
}

func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// axpy: y[i] += alpha·x[i].
func axpy(e elem) {
	name := "axpy" + e.suffix
	TEXT(name, NOSPLIT, fmt.Sprintf("func(alpha %s, x, y *%s, n int)", e.goType, e.goType))
	Pragma("noescape")
	Doc(name + " adds alpha·x to y, n elements, with fused multiply-adds.")
	ps := pointers("x", "y")
	a := YMM()
	e.broadcast(paramAddr("alpha"), a)
	n := Load(Param("n"), GP64())
	stream(name, n, e, func(i int) {
		y := YMM()
		VMOVUPS(Mem{Base: ps[1], Disp: 32 * i}, y)
		e.fma231(Mem{Base: ps[0], Disp: 32 * i}, a, y)
		VMOVUPS(y, Mem{Base: ps[1], Disp: 32 * i})
	}, advanceAll(ps))
	VZEROUPPER()
	RET()
}

// fma: dst[i] = x[i]·y[i] + z[i], one rounding.
func fma(e elem) {
	name := "fma" + e.suffix
	TEXT(name, NOSPLIT, fmt.Sprintf("func(dst, x, y, z *%s, n int)", e.goType))
	Pragma("noescape")
	Doc(name + " sets dst = x·y + z, n elements, fused (one rounding).")
	ps := pointers("dst", "x", "y", "z")
	n := Load(Param("n"), GP64())
	stream(name, n, e, func(i int) {
		r, y := YMM(), YMM()
		VMOVUPS(Mem{Base: ps[1], Disp: 32 * i}, r)
		VMOVUPS(Mem{Base: ps[2], Disp: 32 * i}, y)
		e.fma213(Mem{Base: ps[3], Disp: 32 * i}, y, r) // r = y·r + z
		VMOVUPS(r, Mem{Base: ps[0], Disp: 32 * i})
	}, advanceAll(ps))
	VZEROUPPER()
	RET()
}

// reduction emits a four-accumulator reduction over x (and y when two is
// set): init(acc, ps) sets an accumulator up, given the pointer registers;
// step(acc, i) folds the vector at offset 32·i into acc; combine merges
// accumulators; finish reduces the last to a scalar.
func reduction(name, doc string, e elem, two bool, init func(acc VecVirtual, ps []Register), step func(acc VecVirtual, i int, ps []Register), combine func(a, b VecVirtual), finish func(acc VecVirtual) Register) {
	params := "x *%[1]s, n int"
	if two {
		params = "x, y *%[1]s, n int"
	}
	TEXT(name, NOSPLIT, fmt.Sprintf("func("+params+") %[1]s", e.goType))
	Pragma("noescape")
	Doc(doc)
	names := []string{"x"}
	if two {
		names = append(names, "y")
	}
	ps := pointers(names...)
	n := Load(Param("n"), GP64())
	acc := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for _, a := range acc {
		init(a, ps)
	}
	stream(name, n, e, func(i int) { step(acc[i], i, ps) }, advanceAll(ps))
	combine(acc[0], acc[1])
	combine(acc[2], acc[3])
	combine(acc[0], acc[2])
	Store(finish(acc[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func zero(a VecVirtual, _ []Register) { VXORPS(a, a, a) }

func sum(e elem) {
	name := "sum" + e.suffix
	reduction(name, name+" returns the sum of n elements of x (four vector accumulators).", e, false, zero, func(acc VecVirtual, i int, ps []Register) {
		e.add(Mem{Base: ps[0], Disp: 32 * i}, acc, acc)
	}, func(a, b VecVirtual) { e.add(b, a, a) }, e.hsum)
}

func dot(e elem) {
	name := "dot" + e.suffix
	reduction(name, name+" returns the dot product of n elements of x and y (four vector accumulators, fused multiply-adds).", e, true, zero, func(acc VecVirtual, i int, ps []Register) {
		x := YMM()
		VMOVUPS(Mem{Base: ps[0], Disp: 32 * i}, x)
		e.fma231(Mem{Base: ps[1], Disp: 32 * i}, x, acc)
	}, func(a, b VecVirtual) { e.add(b, a, a) }, e.hsum)
}

// reduceMax: the NaN-propagating maximum, n ≥ one vector (the caller makes
// sure): accumulators start at the first vector.
func reduceMax(e elem) {
	name := "reduceMax" + e.suffix
	reduction(name, name+" returns the largest of n ≥ 1 vector of elements of x, NaN if any is NaN.", e, false, func(acc VecVirtual, ps []Register) {
		VMOVUPS(Mem{Base: ps[0]}, acc)
	}, func(acc VecVirtual, i int, ps []Register) {
		x := YMM()
		VMOVUPS(Mem{Base: ps[0], Disp: 32 * i}, x)
		maxNaN(e, acc, x, acc)
	}, func(a, b VecVirtual) { maxNaN(e, a, b, a) }, func(acc VecVirtual) Register {
		// hmax loses NaNs (MAXPS): reduce a NaN flag alongside.
		nan := YMM()
		e.cmp(U8(cmpUnord), acc, acc, nan)
		m := e.hmax(acc)
		flag := e.hsum(nan) // NaN bits or zero summed: NaN iff any lane was
		e.add(flag, m, m)
		return m
	})
}

// horizontal32 reduces the 8 lanes of y with op into the low lane.
func horizontal32(y VecVirtual, op func(...Op)) Register {
	lo := horizontal64(y, op)
	t := XMM()
	VPSHUFD(U8(1), lo, t)
	op(t, lo, lo)
	return lo
}

// horizontal64 reduces the 4 lanes of y with op into the low lane (and the
// 8 lanes of a float32 vector into its low two lanes).
func horizontal64(y VecVirtual, op func(...Op)) Register {
	hi := XMM()
	VEXTRACTF128(U8(1), y, hi)
	lo := y.AsX()
	op(hi, lo, lo)
	t := XMM()
	VMOVHLPS(lo, lo, t)
	op(t, lo, lo)
	return lo
}
