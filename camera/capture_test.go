package camera

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

func TestFileLoopRestarts(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 2, 5, 100) // 10 frames, 0.1 s per pass
	r := start(t, Config{Name: "loop", Source: clip, Loop: true}, nil)
	var last uint64
	for last <= 25 { // more than two passes
		f, err := r.next(t, 3*time.Second)
		if err != nil {
			t.Fatalf("Next: %v (stats %+v)", err, r.s.Stats())
		}
		checkFrame(t, f, 160, 120)
		if f.Seq <= last {
			t.Fatalf("seq %d after %d", f.Seq, last)
		}
		last = f.Seq
		r.s.Release(f)
	}
	r.cancel()
	if err := r.wait(t, 3*time.Second); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	st := r.s.Stats()
	if st.Reconnects != 0 || st.LastError != "" {
		t.Errorf("a loop restart is not a reconnect: %+v", st)
	}
	// After Run stopped, Next drains at most the pending frame, then ErrClosed.
	for range 2 {
		f, err := r.next(t, time.Second)
		if err == nil {
			r.s.Release(f)
			continue
		}
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after stop = %v, want ErrClosed", err)
		}
		return
	}
	t.Fatal("Next kept delivering after Run stopped")
}

func TestToBGR(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mt   gocv.MatType
	}{
		{"gray", gocv.MatTypeCV8UC1},
		{"bgra", gocv.MatTypeCV8UC4},
		{"yuyv", gocv.MatTypeCV8UC2},
		{"gray16", gocv.MatTypeCV16UC1},
		{"bgr16", gocv.MatTypeCV16UC3},
		{"bgr", gocv.MatTypeCV8UC3},
	}
	for _, c := range cases {
		for _, inPlace := range []bool{false, true} {
			src := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 200, 200, 255), 4, 6, c.mt)
			dst := gocv.NewMat()
			var err error
			if inPlace {
				err = toBGR(src, &src, true)
				dst.Close()
				dst = src
			} else {
				err = toBGR(src, &dst, false)
				src.Close()
			}
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if dst.Type() != gocv.MatTypeCV8UC3 || dst.Cols() != 6 || dst.Rows() != 4 {
				t.Errorf("%s (in place %v): got type %d %dx%d", c.name, inPlace, dst.Type(), dst.Cols(), dst.Rows())
			}
			dst.Close()
		}
	}
	f32 := gocv.NewMatWithSize(2, 2, gocv.MatTypeCV32FC1)
	defer f32.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	if err := toBGR(f32, &dst, false); !errors.Is(err, ErrReadFailed) {
		t.Errorf("float frame: %v, want an unsupported-type error", err)
	}
}

// TestConcurrentBrokenFileOpens: several file cameras failing to open at
// once must not crash the process. (With CAP_ANY, OpenCV 4.6 falls through
// to its GPHOTO2 backend, which aborts when probed from two threads.)
func TestConcurrentBrokenFileOpens(t *testing.T) {
	t.Parallel()
	junk := filepath.Join(t.TempDir(), "broken.mp4")
	if err := os.WriteFile(junk, []byte("no video here"), 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 40 {
				src, err := Open(context.Background(), Config{Name: "broken", Source: junk}, nil)
				if err == nil {
					src.Close()
					t.Error("a junk file opened")
					return
				}
				if !errors.Is(err, ErrNotOpened) {
					t.Errorf("err = %v, want ErrNotOpened", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
