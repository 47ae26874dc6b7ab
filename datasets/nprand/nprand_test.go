package nprand

import (
	"slices"
	"testing"
)

// Every expected value below was printed by NumPy 1.24.2 (Debian's
// python3-numpy, /usr/bin/python3) with the expression quoted beside
// it; none comes from this package.

func TestUint32MatchesNumPy(t *testing.T) {
	// rs = np.random.RandomState(seed); rs._bit_generator.random_raw(3), then
	// the last of the next 1000 draws (so the state is twisted twice).
	tests := []struct {
		seed  uint32
		first []uint32
		d1003 uint32
	}{
		{0, []uint32{2357136044, 2546248239, 3071714933}, 1602172539},
		{1, []uint32{1791095845, 4282876139, 3093770124}, 976287876},
		{42, []uint32{1608637542, 3421126067, 4083286876}, 2302516368},
		{4294967295, []uint32{419326371, 479346978, 3918654476}, 1862446538},
	}
	for _, tt := range tests {
		r := New(tt.seed)
		got := []uint32{r.Uint32(), r.Uint32(), r.Uint32()}
		if !slices.Equal(got, tt.first) {
			t.Errorf("seed %d: first draws %v, want %v", tt.seed, got, tt.first)
		}
		var last uint32
		for range 1000 {
			last = r.Uint32()
		}
		if last != tt.d1003 {
			t.Errorf("seed %d: draw 1003 = %d, want %d", tt.seed, last, tt.d1003)
		}
	}
}

func TestPermutationMatchesNumPy(t *testing.T) {
	tests := []struct {
		seed  uint32
		count int
		head  []int // np.random.seed(seed); np.random.permutation(count)[:len(head)]
		tail  []int // ...[-len(tail):]
	}{
		{0, 20, []int{18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12}, nil},
		{1, 20, []int{3, 16, 6, 10, 2, 14, 4, 17, 7, 1, 13, 0, 19, 18, 9, 15, 8, 12, 11, 5}, nil},
		{42, 20, []int{0, 17, 15, 1, 8, 5, 11, 3, 18, 16, 13, 2, 9, 19, 4, 12, 7, 10, 14, 6}, nil},
		{4294967295, 20, []int{11, 17, 19, 15, 1, 5, 8, 16, 13, 18, 14, 9, 10, 6, 0, 4, 7, 12, 2, 3}, nil},
		{7, 1000, []int{778, 334, 271, 802, 216, 408, 812, 94, 487, 170}, nil},
		{123, 70000, []int{21971, 16953, 48447, 42344, 4376, 65743, 64717, 2820, 57997, 25377},
			[]int{63206, 61404, 17730, 28030, 15725}},
		// 2¹⁶+1 makes the mask twice the bound: most draws are rejected.
		{3, 1<<16 + 1, []int{43125, 60809, 43113, 18997, 16118}, nil},
	}
	for _, tt := range tests {
		p := New(tt.seed).Permutation(tt.count)
		if got := p[:len(tt.head)]; !slices.Equal(got, tt.head) {
			t.Errorf("seed %d, permutation(%d) head = %v, want %v", tt.seed, tt.count, got, tt.head)
		}
		if got := p[len(p)-len(tt.tail):]; !slices.Equal(got, tt.tail) {
			t.Errorf("seed %d, permutation(%d) tail = %v, want %v", tt.seed, tt.count, got, tt.tail)
		}
		sorted := slices.Clone(p)
		slices.Sort(sorted)
		for i, v := range sorted {
			if v != i {
				t.Fatalf("seed %d: permutation(%d) is not a permutation (sorted[%d] = %d)", tt.seed, tt.count, i, v)
			}
		}
	}
}

func TestNewFromArrayMatchesNumPy(t *testing.T) {
	// rs = np.random.RandomState(key); rs._bit_generator.random_raw(4), and
	// np.random.RandomState(key).permutation(10).
	tests := []struct {
		key  []uint32
		raw  []uint32
		perm []int
	}{
		{[]uint32{0, 0}, []uint32{647325673, 1560931061, 839849605, 532981786}, []int{3, 7, 6, 4, 1, 0, 2, 8, 5, 9}},
		{[]uint32{0, 1}, []uint32{485306839, 1508871100, 1794561286, 4014597330}, []int{9, 4, 0, 8, 1, 5, 3, 2, 6, 7}},
		{[]uint32{5, 3}, []uint32{681448717, 1756784838, 2521066028, 278945454}, []int{3, 9, 8, 0, 5, 7, 1, 4, 2, 6}},
		{[]uint32{12345, 678, 9}, []uint32{43359849, 3653640036, 2309671165, 1963068364}, []int{2, 1, 6, 0, 7, 3, 8, 5, 4, 9}},
		{[]uint32{4294967295}, []uint32{2728839433, 2661025012, 872737089, 924893097}, []int{0, 6, 2, 3, 5, 8, 7, 1, 4, 9}},
	}
	for _, tt := range tests {
		r, err := NewFromArray(tt.key)
		if err != nil {
			t.Fatal(err)
		}
		got := []uint32{r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32()}
		if !slices.Equal(got, tt.raw) {
			t.Errorf("key %v: raw %v, want %v", tt.key, got, tt.raw)
		}
		r, _ = NewFromArray(tt.key)
		if p := r.Permutation(10); !slices.Equal(p, tt.perm) {
			t.Errorf("key %v: permutation(10) = %v, want %v", tt.key, p, tt.perm)
		}
	}
	if _, err := NewFromArray(nil); err == nil {
		t.Error("NewFromArray(nil) succeeded, want an error as NumPy gives")
	}
}

func TestChoiceMatchesNumPy(t *testing.T) {
	pop := make([]int, 20)
	for i := range pop {
		pop[i] = 100 + i
	}
	// np.random.seed(0); np.random.choice(np.arange(100, 120), 5, replace=False)
	got, err := New(0).Choice(pop, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{118, 101, 119, 108, 110}; !slices.Equal(got, want) {
		t.Errorf("choice = %v, want %v", got, want)
	}
	if _, err := New(0).Choice(pop, 21); err == nil {
		t.Error("choice of 21 from 20 without replacement succeeded")
	}
}

func TestIntervalBounds(t *testing.T) {
	r := New(9)
	for _, max := range []uint32{0, 1, 2, 5, 255, 256, 1<<31 + 1, 1<<32 - 1} {
		for range 200 {
			if v := r.Interval(max); v > max {
				t.Fatalf("Interval(%d) = %d", max, v)
			}
		}
	}
}
