package detector

import (
	"context"
	"errors"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestDetectCancelledWaitingForASession: a Detect waiting for the only
// session, busy with another frame, returns its context's error (with the
// frame's size), not an empty result.
func TestDetectCancelledWaitingForASession(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 2 })
	img := readDog(t)
	defer img.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	d.runHook = func(_ int, running bool) {
		if running {
			close(entered)
			<-release
		}
	}
	busy := make(chan error, 1)
	go func() {
		_, err := d.Detect(context.Background(), img, nil)
		busy <- err
	}()
	<-entered // the session is taken until release
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	var (
		res Result
		err error
	)
	go detectWaiting(ctx, d, img, &res, &err, waiting)
	testenv.WaitBlocked(t, 10*time.Second, "the second Detect waiting for the session", "detectWaiting", "(*Job).Infer")
	cancel()
	<-waiting
	if !errors.Is(err, context.Canceled) || res.Width != img.Cols() || res.Height != img.Rows() || len(res.Detections) != 0 {
		t.Errorf("Detect cancelled in Infer = %+v, %v; want context.Canceled and the %dx%d size", res, err, img.Cols(), img.Rows())
	}
	close(release)
	if err := <-busy; err != nil {
		t.Errorf("the busy Detect: %v", err)
	}
}

// detectWaiting is the Detect that waits for the session, named so its
// goroutine can be told from the busy one (both are in Infer).
func detectWaiting(ctx context.Context, d *Detector, img gocv.Mat, res *Result, err *error, done chan<- struct{}) {
	defer close(done)
	*res, *err = d.Detect(ctx, img, nil)
}
