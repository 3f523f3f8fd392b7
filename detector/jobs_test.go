package detector_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

func yoloxConfig(t testing.TB) detector.Config {
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.Threads = 1
	return cfg
}

// TestDetectAllocatesNothing: the steady-state frame (preprocess, run,
// decode, NMS) makes no Go heap allocation.
func TestDetectAllocatesNothing(t *testing.T) {
	d := newDetector(t, yoloxConfig(t))
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	dst := make([]detection.Detection, 0, 128)
	ctx := context.Background()
	var n int
	allocs := testing.AllocsPerRun(5, func() {
		res, err := d.Detect(ctx, img, dst)
		if err != nil {
			t.Fatal(err)
		}
		n = len(res.Detections)
	})
	if n < 3 {
		t.Fatalf("found %d objects on dog.jpg, want at least dog, bicycle, car", n)
	}
	if allocs != 0 {
		t.Errorf("Detect allocates %g times per frame, want 0", allocs)
	}
}

// TestSessionsRunInParallelWithSameResults: with two sessions, frames from
// several goroutines run and give exactly the single-session answer.
func TestSessionsRunInParallelWithSameResults(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	one := newDetector(t, yoloxConfig(t))
	ref, err := one.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := yoloxConfig(t)
	cfg.Sessions, cfg.Slots = 2, 4
	two := newDetector(t, cfg)
	if two.Slots() != 4 {
		t.Fatalf("Slots() = %d, want 4", two.Slots())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var mu sync.Mutex
	maxBusy, busy := 0, 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				j, err := two.Acquire(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if err := j.Prepare(img); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				busy++
				maxBusy = max(maxBusy, busy)
				mu.Unlock()
				err = j.Infer(context.Background())
				mu.Lock()
				busy--
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				res := j.Decode(nil)
				two.Release(j)
				if len(res.Detections) != len(ref.Detections) {
					errs <- errors.New("different number of detections")
					return
				}
				for k, d := range res.Detections {
					if d.Label != ref.Detections[k].Label || d.Box != ref.Detections[k].Box {
						errs <- errors.New("different detections: " + d.Label + " vs " + ref.Detections[k].Label)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if maxBusy < 2 {
		t.Errorf("at most %d frames were inferring at once; 4 slots should let several through", maxBusy)
	}
}

// TestJobLifecycle: Acquire waits for a free slot and honours ctx; Infer
// before Prepare is refused; Close waits for outstanding jobs and then
// makes everything fail with ErrClosed.
func TestJobLifecycle(t *testing.T) {
	cfg := yoloxConfig(t)
	cfg.Slots = 1
	d := newDetector(t, cfg)
	j, err := d.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Infer(context.Background()); err == nil {
		t.Error("Infer before Prepare succeeded")
	}
	if res := j.Decode(nil); len(res.Detections) != 0 {
		t.Error("Decode without a run returned detections")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with every slot taken = %v, want deadline exceeded", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a job was out", err)
	case <-time.After(100 * time.Millisecond):
	}
	d.Release(j)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the job was released")
	}
	if _, err := d.Acquire(context.Background()); !errors.Is(err, detector.ErrClosed) {
		t.Errorf("Acquire after Close = %v, want ErrClosed", err)
	}
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	if _, err := d.Detect(context.Background(), img, nil); !errors.Is(err, detector.ErrClosed) {
		t.Errorf("Detect after Close = %v, want ErrClosed", err)
	}
}

// TestAcquireIsFirstComeFirstServed: a caller that keeps re-acquiring
// cannot overtake one already waiting.
func TestAcquireIsFirstComeFirstServed(t *testing.T) {
	cfg := yoloxConfig(t)
	cfg.Slots = 1
	d := newDetector(t, cfg)
	j, err := d.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *detector.Job, 1)
	go func() {
		w, err := d.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	// The waiter is queued once its goroutine is parked inside Acquire.
	testenv.WaitBlocked(t, 10*time.Second, "the second caller waiting in Acquire",
		"TestAcquireIsFirstComeFirstServed.func", "(*Detector).Acquire")
	d.Release(j)
	// The greedy caller asks again at once; the waiter must win.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if greedy, err := d.Acquire(ctx); err == nil {
		d.Release(greedy)
		t.Fatal("the releasing caller re-acquired the slot ahead of the waiting one")
	}
	d.Release(<-got)
}
