//go:build !purego

package gemm

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd asm && go run . -out ../kernel_amd64.s -stubs ../kernel_stubs_amd64.go -pkg gemm"

// asmSupported: the CPU (and the OS, which must save ymm registers) runs
// AVX2 and FMA.
var asmSupported = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The assembly kernels. Blocking (Zen 4/5 and Intel alike: 32–48 KiB L1,
// ≥ 1 MiB L2): kc·nr of B fills at most 16 KiB of L1, mc·kc of A 144 KiB of L2.
var (
	asm6x16 = &kernel[float32]{name: "avx6x16", mr: 6, nr: 16, kc: 256, mc: 144, nc: 2048, strip: strip(sgemm6x16, 16, mask32For), stripMasked: strip(sgemm6x16mb, 16, mask32For)}
	asm12x8 = &kernel[float32]{name: "avx12x8", mr: 12, nr: 8, kc: 256, mc: 144, nc: 2048, strip: strip(sgemm12x8, 8, mask32For), stripMasked: strip(sgemm12x8mb, 8, mask32For)}
	asm6x8  = &kernel[float64]{name: "avx6x8", mr: 6, nr: 8, kc: 256, mc: 72, nc: 1024, strip: strip(dgemm6x8, 8, mask64For), stripMasked: strip(dgemm6x8mb, 8, mask64For)}
	asm12x4 = &kernel[float64]{name: "avx12x4", mr: 12, nr: 4, kc: 256, mc: 72, nc: 1024, strip: strip(dgemm12x4, 4, mask64For), stripMasked: strip(dgemm12x4mb, 4, mask64For)}
)

// Column masks: &mask32[16-nc] is 16 lanes of which the first nc are set.
var (
	mask32 = [32]int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}
	mask64 = [16]int64{-1, -1, -1, -1, -1, -1, -1, -1}
)

func mask32For(nc, nr int) *int32 {
	if nc == nr {
		return nil
	}
	return &mask32[16-nc]
}

func mask64For(nc, nr int) *int64 {
	if nc == nr {
		return nil
	}
	return &mask64[8-nc]
}

// asmFunc is the signature of the generated kernels for T with mask type M.
type asmFunc[T element, M int32 | int64] func(kc, mt int, a *T, rsa, csa, ats int, b *T, rsb int, c *T, ldc int, alpha, beta T, mask *M)

// strip adapts a generated kernel of nr columns to a stripFunc.
func strip[T element, M int32 | int64](f asmFunc[T, M], nr int, maskFor func(nc, nr int) *M) stripFunc[T] {
	return func(kc, mt int, a []T, rsa, csa, ats int, b []T, rsb int, c []T, ldc int, alpha, beta T, nc int) {
		f(kc, mt, &a[0], rsa, csa, ats, &b[0], rsb, &c[0], ldc, alpha, beta, maskFor(nc, nr))
	}
}
