package artifacts

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchArtifactMiB is the size of the benchmark artifact, 2 GiB by default;
// RUNNER_BENCH_HASH_MIB overrides it.
func benchArtifactMiB() int {
	if n, err := strconv.Atoi(os.Getenv("RUNNER_BENCH_HASH_MIB")); err == nil && n > 0 {
		return n
	}
	return 2048
}

// writeBenchFile writes size bytes of a non-constant pattern.
func writeBenchFile(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*31 + i>>8)
	}
	for size > 0 {
		n := min(size, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			b.Fatal(err)
		}
		size -= n
		buf[0]++
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// peakHeap samples the heap in use while fn runs and returns the peak.
func peakHeap(fn func()) uint64 {
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	mu.Lock()
	defer mu.Unlock()
	return peak
}

// BenchmarkHashDir hashes a multi-GB artifact, streamed: one file of the
// whole size (a single SHA-256 stream), and the same size split into 16
// files (hashed by several goroutines). It reports throughput and the peak
// heap in use, which stays flat whatever the size. The files sit in the page
// cache after they are written, so this measures hashing, not the disk.
func BenchmarkHashDir(b *testing.B) {
	total := int64(benchArtifactMiB()) << 20
	for _, files := range []int{1, 16} {
		b.Run(fmt.Sprintf("%dMiB-in-%d-files", total>>20, files), func(b *testing.B) {
			dir := b.TempDir()
			for i := 0; i < files; i++ {
				writeBenchFile(b, filepath.Join(dir, fmt.Sprintf("part-%02d.bin", i)), total/int64(files))
			}
			runtime.GC()
			b.SetBytes(total)
			b.ResetTimer()
			var peak uint64
			for i := 0; i < b.N; i++ {
				p := peakHeap(func() {
					m, err := HashDir(dir)
					if err != nil || len(m) != files {
						b.Fatalf("HashDir: %d files, %v", len(m), err)
					}
				})
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
