package gemm

// kernel is one register-tiled microkernel and the cache blocking that suits
// it. Its strip function computes mt tiles of mr×nr entries of C stacked
// vertically: for t < mt, i < mr, j < nc (nc ≤ nr),
//
//	C[t·mr+i, j] = alpha·Σ_{p<kc} A_t(i, p)·B(p, j) + beta·C[t·mr+i, j]
//
// where C[r, j] is c[r·ldc+j], A_t(i, p) is a[t·ats + i·rsa + p·csa] and
// B(p, j) is b[p·rsb+j]: a packed panel (rsb = nr, zero beyond nc) or B in
// place (rsb = ldb). strip reads all nr columns of B; stripMaskedB reads only
// the nc columns, for a partial panel in place. When beta is 0, C is not
// read. Columns j ≥ nc of C are neither read nor written.
type kernel[T element] struct {
	name   string
	mr, nr int
	// kc, mc, nc: the k, row and column extents of the packed blocks
	// (kc·nr of B in L1, mc·kc of A in L2, kc·nc of B in L3).
	kc, mc, nc int
	// packed: strip only accepts packed A (rsa = 1, csa = mr, ats = mr·kc)
	// and packed B (rsb = nr).
	packed             bool
	strip, stripMasked stripFunc[T]
}

// stripFunc is the signature of a kernel's strip functions.
type stripFunc[T element] func(kc, mt int, a []T, rsa, csa, ats int, b []T, rsb int, c []T, ldc int, alpha, beta T, nc int)

// useAsm selects the assembly kernels where the CPU has them; the tests
// switch it off to run the Go kernels on the same machine.
var useAsm = asmSupported

// HasAsm reports whether products run on the AVX2+FMA assembly kernels
// (false: on the pure-Go kernels).
func HasAsm() bool { return useAsm }

// The Go kernels: 2×4 tiles, A and B packed.
var (
	goKernel32 = &kernel[float32]{name: "go2x4", mr: 2, nr: 4, kc: 256, mc: 128, nc: 1024, packed: true, strip: stripGo[float32]}
	goKernel64 = &kernel[float64]{name: "go2x4", mr: 2, nr: 4, kc: 256, mc: 64, nc: 1024, packed: true, strip: stripGo[float64]}
)

// kernels32 picks the float32 kernel for m×n products.
func kernels32(m, n int) *kernel[float32] {
	if useAsm {
		return pickNarrow(m, n, asm6x16, asm12x8)
	}
	return goKernel32
}

// kernels64 picks the float64 kernel for m×n products.
func kernels64(m, n int) *kernel[float64] {
	if useAsm {
		return pickNarrow(m, n, asm6x8, asm12x4)
	}
	return goKernel64
}

// pickNarrow returns the narrow kernel (half the columns, twice the rows)
// when it pads the m×n product to fewer entries than the wide one: n = 6
// computes 8 columns instead of 16, while m = 6 keeps the wide kernel's 6
// rows rather than 12.
func pickNarrow[T element](m, n int, wide, narrow *kernel[T]) *kernel[T] {
	if paddedArea(m, n, narrow) < paddedArea(m, n, wide) {
		return narrow
	}
	return wide
}

// paddedArea is the number of entries kernel kr computes for an m×n product
// (a float64: m·n may overflow an int on 32-bit platforms).
func paddedArea[T element](m, n int, kr *kernel[T]) float64 {
	return float64(roundUp(m, kr.mr)) * float64(roundUp(n, kr.nr))
}

// roundUp rounds n up to a multiple of m.
func roundUp(n, m int) int { return (n + m - 1) / m * m }

// stripGo is the pure-Go 2×4 kernel; A and B must be packed. Its 8
// accumulators, 4 values of B and 2 of A fit the 15 float registers that Go
// has on amd64 (a 4×4 tile spilled and ran at 2/3 of the speed).
func stripGo[T element](kc, mt int, a []T, _, _, ats int, b []T, _ int, c []T, ldc int, alpha, beta T, nc int) {
	b = b[:kc*4]
	for t := 0; t < mt; t++ {
		at := a[t*ats : t*ats+kc*2]
		var c00, c01, c02, c03, c10, c11, c12, c13 T
		for aa, bb := at, b; len(aa) >= 2 && len(bb) >= 4; aa, bb = aa[2:], bb[4:] {
			b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
			a0, a1 := aa[0], aa[1]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
		}
		acc := [2][4]T{{c00, c01, c02, c03}, {c10, c11, c12, c13}}
		ct := c[t*2*ldc:]
		for i := range acc {
			row := ct[i*ldc : i*ldc+nc]
			for j := range row {
				v := alpha * acc[i][j]
				if beta != 0 {
					v += beta * row[j]
				}
				row[j] = v
			}
		}
	}
}
