package camera

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/testenv"
)

// samplesDir is the shared sample images, relative to this package.
var samplesDir = filepath.Join("..", "..", "shared", "datasets", "samples")

// sampleImages returns the first n sample images in name order (dog.jpg,
// eagle.jpg, giraffe.jpg, horses.jpg, kite.jpg, person.jpg, scream.jpg).
func sampleImages(t testing.TB, n int) []string {
	t.Helper()
	imgs, _ := filepath.Glob(filepath.Join(samplesDir, "*.jpg"))
	if len(imgs) < n {
		t.Fatalf("need %d sample images in %s, found %d: the shared datasets checkout must sit beside the repository (../shared)", n, samplesDir, len(imgs))
	}
	return imgs[:n]
}

// writeClip writes a w×h MJPG clip of n sample images × each frames.
func writeClip(t testing.TB, n, each int, fps float64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.avi")
	if err := testenv.WriteClip(path, sampleImages(t, n), 160, 120, fps, each); err != nil {
		t.Fatalf("write clip: %v", err)
	}
	return path
}

// testLogger logs at debug level into a buffer (and to the test log with -v).
func testLogger(t testing.TB) (*slog.Logger, *logBuf) {
	t.Helper()
	buf := &logBuf{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// running is a Stream whose Run executes in a goroutine.
type running struct {
	s      *Stream
	cancel context.CancelFunc
	done   chan error
}

// start creates and runs a stream. Cleanup cancels it, waits for Run (at
// most 5 s), releases nothing the test still holds, and closes the stream.
func start(t testing.TB, cfg Config, log *slog.Logger) *running {
	t.Helper()
	s, err := NewStream(cfg, log)
	if err != nil {
		t.Fatalf("new stream: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5 s of cancel")
		}
		s.Close()
	})
	return r
}

// wait returns Run's result, failing after d.
func (r *running) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // keep it for cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return nil
	}
}

// next calls Next with a timeout.
func (r *running) next(t testing.TB, d time.Duration) (*Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	f, err := r.s.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: no frame within %v (stats %+v)", d, r.s.Stats())
	}
	return f, err
}

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) cfgtypes.Duration { return cfgtypes.Duration(d) }

// logBuf collects log output (see testenv.Buffer).
type logBuf = testenv.Buffer
