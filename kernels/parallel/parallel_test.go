package parallel

import (
	"github.com/hessian-spectra/runner/kernels/internal/paths"
	"sync"
	"sync/atomic"
	"testing"
)

// counter records which parts ran.
type counter struct {
	ran []atomic.Int32
}

func (c *counter) RunPart(i int) { c.ran[i].Add(1) }

func TestRunEveryPartOnce(t *testing.T) {
	for _, parts := range []int{0, 1, 2, 3, 17} {
		c := &counter{ran: make([]atomic.Int32, parts)}
		Run(c, parts)
		for i := range c.ran {
			if n := c.ran[i].Load(); n != 1 {
				t.Errorf("parts %d: part %d ran %d times", parts, i, n)
			}
		}
	}
}

func TestForCoversRange(t *testing.T) {
	for _, c := range [][2]int{{0, 10}, {5, 10}, {1000, 10}, {1001, 7}, {100000, 1}} {
		n, grain := c[0], c[1]
		seen := make([]int32, n)
		var mu sync.Mutex
		calls := 0
		For(n, grain, func(lo, hi int) {
			mu.Lock()
			calls++
			mu.Unlock()
			if hi-lo < grain && hi != n {
				t.Errorf("n %d grain %d: range [%d,%d) shorter than the grain", n, grain, lo, hi)
			}
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n %d: element %d covered %d times", n, i, s)
			}
		}
		if n > 0 && calls == 0 {
			t.Errorf("n %d: body never called", n)
		}
	}
}

// nested is a task whose parts run Run themselves.
type nested struct {
	depth int
	total *atomic.Int64
}

func (n nested) RunPart(i int) {
	if n.depth == 0 {
		n.total.Add(1)
		return
	}
	Run(nested{n.depth - 1, n.total}, 3)
}

// TestNestedAndConcurrent: nested calls from many goroutines at once finish
// (no deadlock) and run every leaf once.
func TestNestedAndConcurrent(t *testing.T) {
	var total atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Run(nested{3, &total}, 3)
		}()
	}
	wg.Wait()
	if got, want := total.Load(), int64(8*81); got != want {
		t.Errorf("%d leaves ran, want %d", got, want)
	}
}

func TestNoAllocations(t *testing.T) {
	if paths.Race {
		t.Skip("sync.Pool drops items under -race")
	}
	c := &counter{ran: make([]atomic.Int32, 4)}
	body := func(lo, hi int) {}
	if n := testing.AllocsPerRun(100, func() { Run(c, 4); For(1<<20, 1024, body) }); n >= 1 {
		t.Errorf("%g allocations per call", n)
	}
}
