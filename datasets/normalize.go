package datasets

import (
	"runtime"
	"sync"
)

// Normalize is the seed's preprocessing of one pixel value v of a channel
// with the given mean and std, bit for bit: torchvision's ToTensor gives the
// float32 quotient v/255, then Normalize computes (x − mean)/std in float32,
// with mean and std rounded to float32 first. Each step is rounded to
// float32, as PyTorch does on CPU. (Padding comes first, in raw pixel space,
// so a padded pixel is Normalize(0, …) = −mean/std.)
func Normalize(v uint8, mean, std float64) float32 {
	x := float32(float32(v) / 255)
	d := float32(x - float32(mean))
	return float32(d / float32(std))
}

// lookup returns, per channel, the normalised value of each of the 256 pixel
// values.
func lookup(mean, std []float64) [][256]float32 {
	t := make([][256]float32, len(mean))
	for c := range t {
		for v := 0; v < 256; v++ {
			t[c][v] = Normalize(uint8(v), mean[c], std[c])
		}
	}
	return t
}

// normalizeAll converts images of c channels of hw pixels each, in
// parallel over GOMAXPROCS goroutines (the work is memory-bound: writing
// 4 bytes per pixel).
func normalizeAll(u8 []uint8, c, hw int, mean, std []float64) []float32 {
	t := lookup(mean, std)
	out := make([]float32, len(u8))
	planes := len(u8) / hw // one plane = one channel of one image
	workers := min(runtime.GOMAXPROCS(0), max(planes/1024, 1))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := planes*w/workers, planes*(w+1)/workers
		wg.Go(func() {
			for p := lo; p < hi; p++ {
				lut := &t[p%c]
				dst := out[p*hw : (p+1)*hw]
				for k, v := range u8[p*hw : (p+1)*hw] {
					dst[k] = lut[v]
				}
			}
		})
	}
	wg.Wait()
	return out
}
