package detector

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTwoSessionsRunAtOnce proves that with Sessions = 2 two inferences are
// inside ONNX Runtime at the same time, not merely queued: a hook around
// the session's Run call counts the callers inside it. The first caller to
// enter waits (up to a generous limit) for a second one before it runs, so
// with two sessions both are inside at once, on different sessions; with
// one session the second caller cannot enter until the first has left, the
// wait times out and the count never exceeds 1.
func TestTwoSessionsRunAtOnce(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 2, 2 })
	img := readDog(t)
	defer img.Close()

	const patience = 10 * time.Second // only spent when the runs do not overlap
	var (
		inside, most atomic.Int32
		mu           sync.Mutex
		sessionsSeen = map[int]bool{}
		both         = make(chan struct{})
		bothOnce     sync.Once
	)
	d.runHook = func(s int, running bool) {
		if !running {
			inside.Add(-1)
			return
		}
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		mu.Lock()
		sessionsSeen[s] = true
		mu.Unlock()
		if n >= 2 {
			bothOnce.Do(func() { close(both) })
		}
		select {
		case <-both:
		case <-time.After(patience):
		}
	}

	jobs := make([]*Job, 2)
	for i := range jobs {
		j, err := d.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Release(j)
		if err := j.Prepare(img); err != nil {
			t.Fatal(err)
		}
		jobs[i] = j
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = j.Infer(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if got := most.Load(); got != 2 {
		t.Errorf("at most %d inference(s) inside ONNX Runtime at once, want 2 with 2 sessions", got)
	}
	if len(sessionsSeen) != 2 {
		t.Errorf("runs used sessions %v, want both", sessionsSeen)
	}
	// Both runs produced the full answer (dog, bicycle, car).
	for i, j := range jobs {
		if res := j.Decode(nil); len(res.Detections) < 3 {
			t.Errorf("job %d: %d detections, want at least 3: %+v", i, len(res.Detections), res.Detections)
		}
	}
}
