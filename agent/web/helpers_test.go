package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// status is a camera status the test changes while the server reads it.
type status struct {
	mu sync.Mutex
	st web.CameraStatus
}

func newStatus(st web.CameraStatus) *status { return &status{st: st} }

func (s *status) Get() web.CameraStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *status) Set(f func(*web.CameraStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
}

// startServer builds, binds and runs a server on a free loopback port. Its
// Run is stopped in t.Cleanup, which fails the test if Run errs or hangs.
func startServer(t testing.TB, opts web.Options, cams []web.CameraView) (*web.Server, string) {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	s, err := web.NewServer(opts, cams)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("server Run did not return within 10s of cancel")
		}
	})
	return s, "http://" + s.Addr()
}

// dogFrame is ../shared/datasets/samples/dog.jpg (768x576 BGR), closed in
// t.Cleanup.
func dogFrame(t testing.TB) gocv.Mat {
	t.Helper()
	path := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	m := gocv.IMRead(path, gocv.IMReadColor)
	if m.Empty() {
		m.Close()
		t.Fatalf("cannot decode %s", path)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// detectDog runs the real YOLOX-nano detector on img and returns its
// detections, failing unless a dog is among them.
func detectDog(t testing.TB, img gocv.Mat) (all []detection.Detection, dog detection.Detection) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.ScoreThreshold = 0.3
	cfg.Threads = 1
	d, err := detector.New(cfg, quietLog())
	if err != nil {
		t.Fatalf("load %s: %v", cfg.Model, err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("close detector: %v", err)
		}
	}()
	res, err := d.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, det := range res.Detections {
		if det.Label == "dog" {
			return res.Detections, det
		}
	}
	t.Fatalf("yolox_nano found no dog in dog.jpg: %+v", res.Detections)
	return nil, detection.Detection{}
}

// runPipeline plays the detect loop's part: it runs feed's encoder and
// offers img with dets every 10 ms, as a camera would, until the test ends;
// then it stops both and closes the feed.
func runPipeline(t testing.TB, feed *web.Feed, img gocv.Mat, dets []detection.Detection) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		feed.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				feed.Offer(img, dets, nil)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := feed.Close(); err != nil {
			t.Errorf("close feed: %v", err)
		}
	})
}

// get fetches url and returns the status code and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// mjpeg is an open MJPEG stream.
type mjpeg struct {
	resp *http.Response
	mr   *multipart.Reader
}

// openStream starts reading url as multipart/x-mixed-replace; the stream
// is closed in t.Cleanup unless the test closes it first.
func openStream(t testing.TB, ctx context.Context, url string) *mjpeg {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("GET %s: Content-Type %q, want multipart/x-mixed-replace with a boundary (err %v)",
			url, resp.Header.Get("Content-Type"), err)
	}
	return &mjpeg{resp: resp, mr: multipart.NewReader(resp.Body, params["boundary"])}
}

// next reads one part and decodes it as a JPEG; the caller closes the Mat.
func (s *mjpeg) next() (gocv.Mat, []byte, error) {
	p, err := s.mr.NextPart()
	if err != nil {
		return gocv.Mat{}, nil, fmt.Errorf("next part: %w", err)
	}
	if ct := p.Header.Get("Content-Type"); ct != "image/jpeg" {
		return gocv.Mat{}, nil, fmt.Errorf("part Content-Type %q, want image/jpeg", ct)
	}
	b, err := io.ReadAll(p)
	if err != nil {
		return gocv.Mat{}, nil, fmt.Errorf("read part: %w", err)
	}
	m, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil {
		return gocv.Mat{}, nil, fmt.Errorf("decode part: %w", err)
	}
	if m.Empty() {
		m.Close()
		return gocv.Mat{}, nil, errors.New("decode part: not a JPEG")
	}
	return m, b, nil
}

func (s *mjpeg) Close() { s.resp.Body.Close() }
