//go:build !amd64 || purego

package gemm

// asmSupported: there are assembly kernels on amd64 only (and not with
// the purego build tag, which builds this fallback configuration there).
const asmSupported = false

// No assembly kernels; kernels32 and kernels64 never reach these.
var (
	asm6x16, asm12x8 *kernel[float32]
	asm6x8, asm12x4  *kernel[float64]
)
