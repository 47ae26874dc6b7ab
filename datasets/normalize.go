package datasets

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

// normalizeAll converts n images of c channels of hw pixels each.
func normalizeAll(u8 []uint8, c, hw int, mean, std []float64) []float32 {
	t := lookup(mean, std)
	out := make([]float32, len(u8))
	for i := 0; i < len(u8); i += c * hw {
		for ch := 0; ch < c; ch++ {
			lut := &t[ch]
			src := u8[i+ch*hw : i+(ch+1)*hw]
			dst := out[i+ch*hw : i+(ch+1)*hw]
			for k, v := range src {
				dst[k] = lut[v]
			}
		}
	}
	return out
}
