package gemm

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd asm && go run . -out ../kernel_amd64.s -stubs ../kernel_amd64_stubs.go -pkg gemm"

// asmSupported: the CPU (and the OS, which must save ymm registers) runs
// AVX2 and FMA.
var asmSupported = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The assembly kernels. Blocking (Zen 4/5 and Intel alike: 32–48 KiB L1,
// ≥ 1 MiB L2): kc·nr of B fills at most 16 KiB of L1, mc·kc of A 144 KiB of L2.
var (
	asm6x16 = &kernel[float32]{name: "avx6x16", mr: 6, nr: 16, kc: 256, mc: 144, nc: 2048, strip: strip6x16}
	asm12x8 = &kernel[float32]{name: "avx12x8", mr: 12, nr: 8, kc: 256, mc: 144, nc: 2048, strip: strip12x8}
	asm6x8  = &kernel[float64]{name: "avx6x8", mr: 6, nr: 8, kc: 256, mc: 72, nc: 1024, strip: strip6x8}
	asm12x4 = &kernel[float64]{name: "avx12x4", mr: 12, nr: 4, kc: 256, mc: 72, nc: 1024, strip: strip12x4}
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

func strip6x16(kc, mt int, a []float32, rsa, csa, ats int, b, c []float32, ldc int, alpha, beta float32, nc int) {
	sgemm6x16(kc, mt, &a[0], rsa, csa, ats, &b[0], &c[0], ldc, alpha, beta, mask32For(nc, 16))
}

func strip12x8(kc, mt int, a []float32, rsa, csa, ats int, b, c []float32, ldc int, alpha, beta float32, nc int) {
	sgemm12x8(kc, mt, &a[0], rsa, csa, ats, &b[0], &c[0], ldc, alpha, beta, mask32For(nc, 8))
}

func strip6x8(kc, mt int, a []float64, rsa, csa, ats int, b, c []float64, ldc int, alpha, beta float64, nc int) {
	dgemm6x8(kc, mt, &a[0], rsa, csa, ats, &b[0], &c[0], ldc, alpha, beta, mask64For(nc, 8))
}

func strip12x4(kc, mt int, a []float64, rsa, csa, ats int, b, c []float64, ldc int, alpha, beta float64, nc int) {
	dgemm12x4(kc, mt, &a[0], rsa, csa, ats, &b[0], &c[0], ldc, alpha, beta, mask64For(nc, 4))
}
