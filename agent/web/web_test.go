package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/testenv"
)

type healthBody struct {
	Status  string `json:"status"`
	Cameras map[string]struct {
		Healthy   bool   `json:"healthy"`
		Reason    string `json:"reason"`
		Connected bool   `json:"connected"`
	} `json:"cameras"`
	Errors []string `json:"errors"`
}

func health(t *testing.T, base string) (int, healthBody) {
	t.Helper()
	code, body := get(t, base+"/healthz")
	var h healthBody
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/healthz: %v in %q", err, body)
	}
	return code, h
}

// progressAt returns a status update recording progress at c's current
// instant, as a pipeline does.
func progressAt(c clock.Clock) func(*web.CameraStatus) {
	return func(s *web.CameraStatus) { s.LastProgress, s.LastProgressMono = c.Now(), c.Mono() }
}

// started returns a status whose pipeline started at c's current instant.
func started(c clock.Clock, st web.CameraStatus) web.CameraStatus {
	st.Started, st.StartedMono = c.Now(), c.Mono()
	return st
}

func TestHealthz(t *testing.T) {
	clk := clock.NewFake(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	front := newStatus(started(clk, web.CameraStatus{Connected: true}))
	clk.Advance(time.Minute)
	front.Set(progressAt(clk))
	back := newStatus(started(clk, web.CameraStatus{Connected: true})) // no frame yet, still in grace
	_, base := startServer(t, web.Options{StallAfter: 10 * time.Second, Clock: clk}, []web.CameraView{
		{Name: "front", Status: front.Get},
		{Name: "back", Status: back.Get},
	})
	clk.Advance(2 * time.Second)

	code, h := health(t, base)
	if code != http.StatusOK || h.Status != "ok" || !h.Cameras["front"].Healthy || !h.Cameras["back"].Healthy || len(h.Errors) != 0 {
		t.Fatalf("healthy cameras: %d %+v, want 200 ok", code, h)
	}

	// front stalls: last frame 12 s ago with stall_after 10 s.
	clk.Advance(10 * time.Second)
	back.Set(progressAt(clk))
	code, h = health(t, base)
	want := `camera "front": no frame processed for 12s (stall_after 10s)`
	if code != http.StatusServiceUnavailable || h.Status != "unhealthy" || len(h.Errors) != 1 || h.Errors[0] != want {
		t.Fatalf("stalled front: %d %+v, want 503 with %q", code, h, want)
	}
	if c := h.Cameras["front"]; c.Healthy || c.Reason != want {
		t.Errorf("front entry %+v, want unhealthy with the reason", c)
	}
	if !h.Cameras["back"].Healthy {
		t.Errorf("back must still be healthy: %+v", h.Cameras["back"])
	}

	// back never produced a frame within stall_after of its start; the
	// camera's last error is part of the reason.
	back.Set(func(s *web.CameraStatus) {
		*s = started(clk, web.CameraStatus{LastError: "open /dev/video2: no such device"})
	})
	clk.Advance(31 * time.Second)
	front.Set(progressAt(clk))
	code, h = health(t, base)
	wantBack := `camera "back": no frame processed since start 31s ago (stall_after 10s); last error: open /dev/video2: no such device`
	if code != http.StatusServiceUnavailable || len(h.Errors) != 1 || h.Errors[0] != wantBack {
		t.Fatalf("never-started back: %d %+v, want 503 with %q", code, h, wantBack)
	}

	// back recovers.
	back.Set(func(s *web.CameraStatus) { progressAt(clk)(s); s.Connected, s.LastError = true, "" })
	code, h = health(t, base)
	if code != http.StatusOK || h.Status != "ok" || len(h.Errors) != 0 {
		t.Fatalf("recovered: %d %+v, want 200 ok", code, h)
	}
}

// TestHealthzIgnoresWallClockSteps: the wall clock steps by days either
// way (an NTP sync on a board without RTC, a wrong manual date) while one
// camera keeps processing and the other stalls. The stalled one is
// reported once stall_after has really passed, and not before; the running
// one never is.
func TestHealthzIgnoresWallClockSteps(t *testing.T) {
	const stallAfter = 10 * time.Second
	for _, step := range []time.Duration{-3 * 24 * time.Hour, 3 * 24 * time.Hour, -400 * 24 * time.Hour, 9 * 365 * 24 * time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			clk := clock.NewFake(time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC))
			running := newStatus(started(clk, web.CameraStatus{Connected: true}))
			stalled := newStatus(started(clk, web.CameraStatus{Connected: true}))
			running.Set(progressAt(clk))
			stalled.Set(progressAt(clk))
			_, base := startServer(t, web.Options{StallAfter: stallAfter, Clock: clk}, []web.CameraView{
				{Name: "running", Status: running.Get},
				{Name: "stalled", Status: stalled.Get},
			})
			tick := func(d time.Duration) {
				clk.Advance(d)
				running.Set(progressAt(clk))
			}
			tick(4 * time.Second)
			clk.StepWall(step)
			tick(5 * time.Second) // 9 s without progress: not yet stalled
			code, h := health(t, base)
			if code != http.StatusOK || !h.Cameras["running"].Healthy || !h.Cameras["stalled"].Healthy {
				t.Fatalf("9s after the last frame, wall stepped %v: %d %+v, want both healthy", step, code, h)
			}
			tick(2 * time.Second) // 11 s
			code, h = health(t, base)
			want := `camera "stalled": no frame processed for 11s (stall_after 10s)`
			if code != http.StatusServiceUnavailable || len(h.Errors) != 1 || h.Errors[0] != want {
				t.Fatalf("11s after the last frame, wall stepped %v: %d %+v, want 503 with only %q", step, code, h, want)
			}
			if !h.Cameras["running"].Healthy {
				t.Errorf("the running camera is judged unhealthy after a wall step of %v: %+v", step, h.Cameras["running"])
			}
		})
	}
}

func TestHealthzDefaultStallAndNoStart(t *testing.T) {
	// StallAfter 0 means 30 s; a camera whose pipeline has not reported a
	// start yet is judged from the server's start.
	clk := clock.NewFake(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	st := newStatus(web.CameraStatus{})
	_, base := startServer(t, web.Options{Clock: clk}, []web.CameraView{{Name: "cam", Status: st.Get}})
	if code, h := health(t, base); code != http.StatusOK {
		t.Fatalf("fresh server: %d %+v", code, h)
	}
	clk.Advance(31 * time.Second)
	code, h := health(t, base)
	if want := `camera "cam": no frame processed since start 31s ago (stall_after 30s)`; code != http.StatusServiceUnavailable || len(h.Errors) != 1 || h.Errors[0] != want {
		t.Fatalf("31s after the server's start, no progress: %d %+v, want 503 %q", code, h, want)
	}
	st.Set(progressAt(clk))
	clk.Advance(29 * time.Second)
	if code, _ := health(t, base); code != http.StatusOK {
		t.Fatalf("29s without progress, default stall_after 30s: %d, want 200", code)
	}
	clk.Advance(2 * time.Second)
	code, h = health(t, base)
	if want := `camera "cam": no frame processed for 31s (stall_after 30s)`; code != http.StatusServiceUnavailable || len(h.Errors) != 1 || h.Errors[0] != want {
		t.Fatalf("31s: %d %+v, want 503 %q", code, h, want)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	st := newStatus(web.CameraStatus{})
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "edgedet_frames_total 42\n")
	})
	_, base := startServer(t, web.Options{Metrics: metrics}, []web.CameraView{{Name: "cam", Status: st.Get}})
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || body != "edgedet_frames_total 42\n" {
		t.Errorf("/metrics: %d %q", code, body)
	}
	_, base = startServer(t, web.Options{}, []web.CameraView{{Name: "cam", Status: st.Get}})
	if code, _ := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a handler: %d, want 404", code)
	}
}

func TestNewServerValidates(t *testing.T) {
	st := newStatus(web.CameraStatus{})
	ok := []web.CameraView{{Name: "cam", Status: st.Get}}
	feed := web.NewFeed(5, 75)
	t.Cleanup(func() { feed.Close() })
	cases := []struct {
		name string
		opts web.Options
		cams []web.CameraView
		want string
	}{
		{"empty listen", web.Options{}, ok, `listen ""`},
		{"no port", web.Options{Listen: "127.0.0.1"}, ok, `listen "127.0.0.1"`},
		{"named port", web.Options{Listen: "127.0.0.1:http"}, ok, `port "http"`},
		{"port too big", web.Options{Listen: ":70000"}, ok, `listen ":70000": port "70000"`},
		{"empty port", web.Options{Listen: "127.0.0.1:"}, ok, `port ""`},
		{"negative stall", web.Options{Listen: ":0", StallAfter: -time.Second}, ok, "stall_after -1s"},
		{"empty name", web.Options{Listen: ":0"}, []web.CameraView{{Status: st.Get}}, "camera 0: empty name"},
		{"twice", web.Options{Listen: ":0"}, []web.CameraView{ok[0], ok[0]}, `camera "cam": listed twice`},
		{"no status", web.Options{Listen: ":0"}, []web.CameraView{{Name: "x"}}, `camera "x": no Status func`},
		{"live view without feed", web.Options{Listen: ":0", LiveView: true}, ok, `camera "cam": live view is on but the camera has no Feed`},
	}
	for _, c := range cases {
		_, err := web.NewServer(c.opts, c.cams)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}

	// The live view on a non-loopback address is allowed, with a warning.
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	withFeed := []web.CameraView{{Name: "cam", Feed: feed, Status: st.Get}}
	for _, c := range []struct {
		listen string
		warn   bool
	}{{"127.0.0.1:0", false}, {"localhost:0", false}, {"[::1]:0", false}, {":0", true}, {"0.0.0.0:0", true}, {"192.168.1.10:9464", true}} {
		before := logs.Count("level=WARN", "live view", "listen="+c.listen)
		if _, err := web.NewServer(web.Options{Listen: c.listen, LiveView: true, Log: log}, withFeed); err != nil {
			t.Fatalf("%s: %v", c.listen, err)
		}
		warned := logs.Count("level=WARN", "live view", "listen="+c.listen) > before
		if warned != c.warn {
			t.Errorf("listen %s: warned %v, want %v; log:\n%s", c.listen, warned, c.warn, logs.String())
		}
	}
	// Without the live view there is nothing to warn about.
	before := logs.Count("level=WARN")
	if _, err := web.NewServer(web.Options{Listen: ":0", Log: log}, ok); err != nil {
		t.Fatal(err)
	}
	if logs.Count("level=WARN") != before {
		t.Errorf("warning without live view:\n%s", logs.String())
	}
}

func TestStartReportsBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st := newStatus(web.CameraStatus{})
	s, err := web.NewServer(web.Options{Listen: ln.Addr().String(), Log: quietLog()}, []web.CameraView{{Name: "cam", Status: st.Get}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q, want empty", s.Addr())
	}
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a busy port: %v, want an error naming %s", err, ln.Addr())
	}
}

func TestFeedOfferWithoutViewerAllocatesNothing(t *testing.T) {
	img := dogFrame(t)
	dets := []detection.Detection{{ClassID: 16, Label: "dog", Score: 0.9, Box: detection.Box{X1: 133, Y1: 207, X2: 327, Y2: 543}}}
	feed := web.NewFeed(5, 75)
	t.Cleanup(func() { feed.Close() })
	if feed.Wanted() {
		t.Fatal("Wanted with no viewer")
	}
	if n := testing.AllocsPerRun(1000, func() { feed.Offer(img, dets, nil) }); n != 0 {
		t.Errorf("Offer without a viewer: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = feed.Wanted() }); n != 0 {
		t.Errorf("Wanted: %v allocs, want 0", n)
	}
	// Offer after Close does nothing, and Close is idempotent.
	if err := feed.Close(); err != nil {
		t.Fatal(err)
	}
	feed.Offer(img, dets, nil)
	if err := feed.Close(); err != nil {
		t.Fatal(err)
	}
}

func liveServer(t *testing.T, feed *web.Feed, st *status) string {
	t.Helper()
	_, base := startServer(t, web.Options{LiveView: true}, []web.CameraView{{Name: "front", Feed: feed, Status: st.Get}})
	return base
}

func TestMJPEGStream(t *testing.T) {
	img := dogFrame(t)
	dets, _ := detectDog(t, img)
	feed := web.NewFeed(20, 75)
	runPipeline(t, feed, img, dets)
	// Health is judged on a fake clock that does not move: the test's
	// duration (and how long the test binary has run) cannot make the
	// camera stall.
	clk := clock.NewFake(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	st := newStatus(started(clk, web.CameraStatus{Connected: true, Detect: true,
		CaptureFPS: 25, ProcessFPS: 9.5, InferenceMs: 41.2, Objects: []web.ObjectCount{{Label: "bicycle", Count: 1}, {Label: "dog", Count: 2}}}))
	st.Set(progressAt(clk))
	_, base := startServer(t, web.Options{LiveView: true, Clock: clk}, []web.CameraView{{Name: "front", Feed: feed, Status: st.Get}})

	if feed.Wanted() {
		t.Fatal("Wanted before any viewer connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := openStream(t, ctx, base+"/cameras/front/stream.mjpg")
	if !feed.Wanted() {
		t.Error("Wanted false while a stream client is connected")
	}
	var first []byte
	for i := range 3 {
		m, b, err := s.next()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if m.Cols() != img.Cols() || m.Rows() != img.Rows() || m.Channels() != 3 {
			t.Errorf("part %d: %dx%dx%d, want %dx%dx3", i, m.Cols(), m.Rows(), m.Channels(), img.Cols(), img.Rows())
		}
		m.Close()
		if i == 0 {
			first = b
		}
	}
	if len(first) < 1000 {
		t.Errorf("first JPEG only %d bytes", len(first))
	}
	s.Close()
	testenv.Eventually(t, 5*time.Second, "Wanted to turn false after the client left", func() bool { return !feed.Wanted() })

	// latest.jpg decodes to the frame size.
	code, body := get(t, base+"/cameras/front/latest.jpg")
	if code != http.StatusOK {
		t.Fatalf("latest.jpg: %d %s", code, body)
	}
	m, err := gocv.IMDecode([]byte(body), gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	if m.Cols() != img.Cols() || m.Rows() != img.Rows() {
		t.Errorf("latest.jpg: %dx%d, want %dx%d", m.Cols(), m.Rows(), img.Cols(), img.Rows())
	}
	m.Close()
	testenv.Eventually(t, 5*time.Second, "Wanted to turn false after latest.jpg", func() bool { return !feed.Wanted() })

	// The page lists the camera with its stream; the API has its stats.
	code, page := get(t, base+"/")
	if code != http.StatusOK || !strings.Contains(page, `src="cameras/front/stream.mjpg"`) || !strings.Contains(page, `data-camera="front"`) {
		t.Errorf("/: %d, want the page with camera front's stream:\n%s", code, page)
	}
	code, api := get(t, base+"/api/cameras")
	var cams map[string]struct {
		Connected   bool    `json:"connected"`
		ProcessFPS  float64 `json:"process_fps"`
		InferenceMs float64 `json:"inference_ms"`
		Objects     []struct {
			Label string `json:"label"`
			Count int    `json:"count"`
		} `json:"objects"`
		Healthy bool `json:"healthy"`
	}
	if err := json.Unmarshal([]byte(api), &cams); err != nil || code != http.StatusOK {
		t.Fatalf("/api/cameras: %d %v %s", code, err, api)
	}
	if c := cams["front"]; !c.Connected || c.ProcessFPS != 9.5 || c.InferenceMs != 41.2 || len(c.Objects) != 2 || c.Objects[0].Label != "bicycle" || c.Objects[0].Count != 1 || c.Objects[1].Label != "dog" || c.Objects[1].Count != 2 || !c.Healthy {
		t.Errorf("/api/cameras front = %+v", c)
	}

	// Unknown cameras are 404 naming them.
	for _, p := range []string{"/cameras/garage/stream.mjpg", "/cameras/garage/latest.jpg"} {
		if code, body := get(t, base+p); code != http.StatusNotFound || !strings.Contains(body, `camera "garage" not found`) {
			t.Errorf("%s: %d %q, want 404 naming the camera", p, code, body)
		}
	}
}

func TestMJPEGRespectsMaxFPS(t *testing.T) {
	img := dogFrame(t)
	dets := []detection.Detection{{ClassID: 16, Label: "dog", Score: 0.9, Box: detection.Box{X1: 133, Y1: 207, X2: 327, Y2: 543}}}
	const fps = 4
	feed := web.NewFeed(fps, 75)
	runPipeline(t, feed, img, dets) // offers every 10 ms: 100 fps
	base := liveServer(t, feed, newStatus(web.CameraStatus{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// No frame is encoded before a viewer connects (Offer returns at once
	// without one), and each offer the feed takes is at least 1/fps after
	// the previous one. So the 4th part cannot arrive before 3 intervals
	// after the request was sent, however late the client reads; a busy
	// machine only makes it later. (Measuring between parts instead could
	// fail when a late read finds several parts already buffered.)
	sent := time.Now()
	s := openStream(t, ctx, base+"/cameras/front/stream.mjpg")
	for range 4 {
		m, _, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	if d := time.Since(sent); d < 3*time.Second/fps {
		t.Errorf("4 parts %v after the request at max %d fps, want >= %v", d, fps, 3*time.Second/fps)
	}
}

func TestLiveViewOff(t *testing.T) {
	clk := clock.NewFake(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)) // health on a clock that does not move
	st := newStatus(started(clk, web.CameraStatus{}))
	_, base := startServer(t, web.Options{Clock: clk}, []web.CameraView{{Name: "front", Status: st.Get}})
	for _, p := range []string{"/", "/api/cameras", "/cameras/front/stream.mjpg", "/cameras/front/latest.jpg"} {
		if code, _ := get(t, base+p); code != http.StatusNotFound {
			t.Errorf("live view off: %s = %d, want 404", p, code)
		}
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
}

func TestRunReturnsPromptlyWithOpenStream(t *testing.T) {
	img := dogFrame(t)
	feed := web.NewFeed(10, 75)
	runPipeline(t, feed, img, nil)
	st := newStatus(web.CameraStatus{})
	var logs testenv.Buffer
	s, err := web.NewServer(web.Options{Listen: "127.0.0.1:0", LiveView: true,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		[]web.CameraView{{Name: "front", Feed: feed, Status: st.Get}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }() // Run binds when Start was not called
	testenv.Eventually(t, 5*time.Second, "Run to bind", func() bool { return s.Addr() != "" })

	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	stream := openStream(t, cctx, "http://"+s.Addr()+"/cameras/front/stream.mjpg")
	m, _, err := stream.next()
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel with a stream open")
	}
	// Promptly: the open stream ended on cancel, so http.Server.Shutdown
	// did not have to wait out its timeout and close the connection.
	if n := logs.Count("shutdown timed out"); n != 0 {
		t.Errorf("the open stream held up the shutdown until its timeout:\n%s", logs.String())
	}
	if logs.Count("web server stopped") != 1 {
		t.Errorf("no 'web server stopped' line:\n%s", logs.String())
	}
	// The client sees its stream end rather than hang.
	for {
		m, _, err := stream.next()
		if err != nil {
			break
		}
		m.Close()
	}
	if feed.Wanted() {
		t.Error("Wanted still true after the server stopped")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run: want an error")
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("server still answers after Run returned (err %v)", err)
	}
}
