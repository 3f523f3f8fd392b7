package metrics

import (
	"context"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

var cocoFew = []string{"person", "bicycle", "car"}

func TestHandlerServesAllSeries(t *testing.T) {
	m := New(Options{Version: "1.2.3", Model: "yolo11n", Precision: "int8", Provider: "cpu"})
	front := &fakeSource{c: CameraCounters{Captured: 100, Processed: 80, Dropped: 5, Skipped: 15, Reconnects: 2, Connected: true}}
	back := &fakeSource{c: CameraCounters{Captured: 7, Processed: 3, Skipped: 4}}
	fc := m.AddCamera("front", cocoFew, front.get)
	bc := m.AddCamera("back", cocoFew, back.get)

	fc.ObserveStages(2*time.Millisecond, 30*time.Millisecond, time.Millisecond)
	fc.ObserveStages(4*time.Millisecond, 40*time.Millisecond, 3*time.Millisecond)
	bc.ObserveStages(300*time.Millisecond, 1500*time.Millisecond, 50*time.Microsecond)
	for range 3 {
		fc.AddDetection(0)
	}
	fc.AddDetection(2)
	fc.AddDetection(99)
	fc.AddDetection(-1)
	bc.AddDetection(1)
	m.SetMQTT(func() MQTTCounters {
		return MQTTCounters{Connected: true, Published: 42, Failed: 3, Dropped: 4, QueueDepth: 5, SpoolBytes: 6000, SpoolDropped: 7}
	})

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	f := mustScrape(t, srv.URL)

	wantFamilies := []string{
		"edgedet_camera_capture_fps",
		"edgedet_camera_connected",
		"edgedet_camera_frames_captured_total",
		"edgedet_camera_frames_dropped_total",
		"edgedet_camera_frames_processed_total",
		"edgedet_camera_frames_skipped_total",
		"edgedet_camera_processed_fps",
		"edgedet_camera_reconnects_total",
		"edgedet_detections_total",
		"edgedet_info",
		"edgedet_mqtt_connected",
		"edgedet_mqtt_dropped_total",
		"edgedet_mqtt_failed_total",
		"edgedet_mqtt_published_total",
		"edgedet_mqtt_queue_depth",
		"edgedet_spool_bytes",
		"edgedet_spool_dropped_total",
		"edgedet_stage_duration_seconds",
	}
	if got := f.names("edgedet_"); !slices.Equal(got, wantFamilies) {
		t.Errorf("edgedet families:\n got %v\nwant %v", got, wantFamilies)
	}
	for _, name := range wantFamilies {
		if f[name].GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	types := map[string]dto.MetricType{
		"edgedet_camera_frames_captured_total": dto.MetricType_COUNTER,
		"edgedet_camera_connected":             dto.MetricType_GAUGE,
		"edgedet_camera_capture_fps":           dto.MetricType_GAUGE,
		"edgedet_stage_duration_seconds":       dto.MetricType_HISTOGRAM,
		"edgedet_detections_total":             dto.MetricType_COUNTER,
		"edgedet_mqtt_published_total":         dto.MetricType_COUNTER,
		"edgedet_mqtt_queue_depth":             dto.MetricType_GAUGE,
		"edgedet_spool_bytes":                  dto.MetricType_GAUGE,
		"edgedet_spool_dropped_total":          dto.MetricType_COUNTER,
	}
	for name, want := range types {
		if got := f[name].GetType(); got != want {
			t.Errorf("%s type %v, want %v", name, got, want)
		}
	}

	cameraWant := []struct {
		name        string
		front, back float64
	}{
		{"edgedet_camera_frames_captured_total", 100, 7},
		{"edgedet_camera_frames_processed_total", 80, 3},
		{"edgedet_camera_frames_dropped_total", 5, 0},
		{"edgedet_camera_frames_skipped_total", 15, 4},
		{"edgedet_camera_reconnects_total", 2, 0},
		{"edgedet_camera_connected", 1, 0},
		{"edgedet_camera_capture_fps", 0, 0}, // one reading only
		{"edgedet_camera_processed_fps", 0, 0},
	}
	for _, w := range cameraWant {
		if got := f.value(t, w.name, "camera", "front"); got != w.front {
			t.Errorf("%s{camera=front} = %v, want %v", w.name, got, w.front)
		}
		if got := f.value(t, w.name, "camera", "back"); got != w.back {
			t.Errorf("%s{camera=back} = %v, want %v", w.name, got, w.back)
		}
	}

	// Stage histograms: counts, sums and bucket placement per camera.
	const stage = "edgedet_stage_duration_seconds"
	if n := len(f[stage].GetMetric()); n != 6 {
		t.Errorf("%s has %d series, want 6 (2 cameras x 3 stages)", stage, n)
	}
	hist := func(camera, st string) *dto.Histogram {
		return f.metric(t, stage, "camera", camera, "stage", st).GetHistogram()
	}
	for _, c := range []struct {
		camera, stage string
		count         uint64
		sum           float64
	}{
		{"front", "preprocess", 2, 0.006},
		{"front", "inference", 2, 0.070},
		{"front", "postprocess", 2, 0.004},
		{"back", "preprocess", 1, 0.3},
		{"back", "inference", 1, 1.5},
		{"back", "postprocess", 1, 0.00005},
	} {
		h := hist(c.camera, c.stage)
		if h.GetSampleCount() != c.count || math.Abs(h.GetSampleSum()-c.sum) > 1e-9 {
			t.Errorf("%s{camera=%s,stage=%s}: count %d sum %v, want %d %v",
				stage, c.camera, c.stage, h.GetSampleCount(), h.GetSampleSum(), c.count, c.sum)
		}
	}
	frontInfer := f.metric(t, stage, "camera", "front", "stage", "inference")
	if got := bucket(t, frontInfer, 0.025); got != 0 {
		t.Errorf("front inference le=0.025: %d, want 0", got)
	}
	if got := bucket(t, frontInfer, 0.05); got != 2 {
		t.Errorf("front inference le=0.05: %d, want 2", got)
	}
	backInfer := f.metric(t, stage, "camera", "back", "stage", "inference")
	if got := bucket(t, backInfer, 1); got != 0 {
		t.Errorf("back inference le=1: %d, want 0", got)
	}
	if got := bucket(t, backInfer, 2); got != 1 {
		t.Errorf("back inference le=2: %d, want 1", got)
	}
	if got := bucket(t, f.metric(t, stage, "camera", "back", "stage", "postprocess"), 0.0001); got != 1 {
		t.Errorf("back postprocess le=0.0001: %d, want 1", got)
	}

	// Detections: every class precreated per camera, out-of-range ids under
	// "unknown", and the cameras kept apart.
	const det = "edgedet_detections_total"
	if n := len(f[det].GetMetric()); n != 8 {
		t.Errorf("%s has %d series, want 8 (2 cameras x (3 classes + unknown))", det, n)
	}
	for _, c := range []struct {
		camera, label string
		want          float64
	}{
		{"front", "person", 3}, {"front", "bicycle", 0}, {"front", "car", 1}, {"front", "unknown", 2},
		{"back", "person", 0}, {"back", "bicycle", 1}, {"back", "car", 0}, {"back", "unknown", 0},
	} {
		if got := f.value(t, det, "camera", c.camera, "label", c.label); got != c.want {
			t.Errorf("%s{camera=%s,label=%s} = %v, want %v", det, c.camera, c.label, got, c.want)
		}
	}

	for name, want := range map[string]float64{
		"edgedet_mqtt_connected":       1,
		"edgedet_mqtt_published_total": 42,
		"edgedet_mqtt_failed_total":    3,
		"edgedet_mqtt_dropped_total":   4,
		"edgedet_mqtt_queue_depth":     5,
		"edgedet_spool_bytes":          6000,
		"edgedet_spool_dropped_total":  7,
	} {
		if got := f.value(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	if got := f.value(t, "edgedet_info", "version", "1.2.3", "model", "yolo11n", "precision", "int8", "provider", "cpu"); got != 1 {
		t.Errorf("edgedet_info = %v, want 1", got)
	}
	if got := f.value(t, "process_resident_memory_bytes"); got <= 0 {
		t.Errorf("process_resident_memory_bytes = %v, want > 0", got)
	}
	if got := f.value(t, "go_goroutines"); got <= 0 {
		t.Errorf("go_goroutines = %v, want > 0", got)
	}

	// Counters read from the sources are live: a later scrape sees new totals.
	front.set(160, 120)
	f = mustScrape(t, srv.URL)
	if got := f.value(t, "edgedet_camera_frames_captured_total", "camera", "front"); got != 160 {
		t.Errorf("captured after update = %v, want 160", got)
	}
	if got := f.value(t, "edgedet_camera_frames_captured_total", "camera", "back"); got != 7 {
		t.Errorf("back captured after front update = %v, want 7", got)
	}
}

func TestMQTTSeriesOnlyAfterSetMQTT(t *testing.T) {
	m := New(Options{})
	if got := gather(t, m).names("edgedet_mqtt_"); len(got) != 0 {
		t.Fatalf("MQTT series before SetMQTT: %v", got)
	}
	m.SetMQTT(func() MQTTCounters { return MQTTCounters{QueueDepth: 3} })
	f := gather(t, m)
	if got := f.value(t, "edgedet_mqtt_queue_depth"); got != 3 {
		t.Errorf("edgedet_mqtt_queue_depth = %v, want 3", got)
	}
	if got := f.value(t, "edgedet_mqtt_connected"); got != 0 {
		t.Errorf("edgedet_mqtt_connected = %v, want 0", got)
	}
	m.SetMQTT(nil)
	if got := gather(t, m).names("edgedet_mqtt_"); len(got) != 0 {
		t.Fatalf("MQTT series after SetMQTT(nil): %v", got)
	}
}

func fps(t testing.TB, m *Metrics, camera string) (capture, processed float64) {
	t.Helper()
	f := gather(t, m)
	return f.value(t, "edgedet_camera_capture_fps", "camera", camera),
		f.value(t, "edgedet_camera_processed_fps", "camera", camera)
}

func TestFPSIsRateOverWindow(t *testing.T) {
	m := New(Options{}) // 10 s window
	clk := newFakeClock()
	m.now = clk.now
	src := &fakeSource{}
	m.AddCamera("cam", nil, src.get)

	// One reading (this scrape's) is not a rate.
	if c, p := fps(t, m, "cam"); c != 0 || p != 0 {
		t.Fatalf("fps with one reading = %v, %v, want 0, 0", c, p)
	}
	m.sample() // same instant: still no span to divide by
	if c, p := fps(t, m, "cam"); c != 0 || p != 0 {
		t.Fatalf("fps with no elapsed time = %v, %v, want 0, 0", c, p)
	}

	// 250 frames captured and 100 processed over 10 s.
	for i := uint64(1); i <= 10; i++ {
		clk.advance(time.Second)
		src.set(25*i, 10*i)
		m.sample()
	}
	if c, p := fps(t, m, "cam"); c != 25 || p != 10 {
		t.Fatalf("fps = %v, %v, want 25, 10", c, p)
	}

	// The scrape reads the source itself, so the value is fresh between
	// samples: 0.5 s later with 20 more frames the window runs from t=1s
	// (25 frames) to now (270), 245 frames over 9.5 s.
	clk.advance(500 * time.Millisecond)
	src.set(270, 105)
	if c, p := fps(t, m, "cam"); !near(c, 245/9.5) || !near(p, 95/9.5) {
		t.Fatalf("fps between samples = %v, %v, want %v, %v", c, p, 245/9.5, 95/9.5)
	}

	// Five idle seconds: the window now holds 5 s at 25 fps and 5 s at 0.
	clk.advance(500 * time.Millisecond)
	for range 5 {
		clk.advance(time.Second)
		m.sample()
	}
	if c, _ := fps(t, m, "cam"); !near(c, (270-150)/10.0) {
		t.Fatalf("capture fps after idle = %v, want %v", c, (270-150)/10.0)
	}
}

func TestFPSWindowSlides(t *testing.T) {
	m := New(Options{RateWindow: 3 * time.Second})
	clk := newFakeClock()
	m.now = clk.now
	src := &fakeSource{}
	m.AddCamera("cam", nil, src.get)

	// 10 s at 100 fps, then 10 s at 10 fps: a 3 s window sees only the
	// latter, and the ring has wrapped several times.
	var n uint64
	m.sample()
	for i := range 20 {
		clk.advance(time.Second)
		if i < 10 {
			n += 100
		} else {
			n += 10
		}
		src.set(n, n/2)
		m.sample()
	}
	if c, p := fps(t, m, "cam"); c != 10 || p != 5 {
		t.Fatalf("fps = %v, %v, want 10, 5", c, p)
	}
	if help := gather(t, m)["edgedet_camera_capture_fps"].GetHelp(); !strings.Contains(help, "3s") {
		t.Errorf("capture_fps HELP %q does not name the 3s window", help)
	}
}

func TestFPSSurvivesCounterReset(t *testing.T) {
	m := New(Options{})
	clk := newFakeClock()
	m.now = clk.now
	src := &fakeSource{}
	m.AddCamera("cam", nil, src.get)

	// The source restarts between t=2s and t=3s and counts again from 0:
	// 25 + 25 + 20 + 25 = 95 frames over 4 s, not a negative or huge rate.
	for i, v := range []uint64{1000, 1025, 1050, 20, 45} {
		if i > 0 {
			clk.advance(time.Second)
		}
		src.set(v, v)
		m.sample()
	}
	if c, p := fps(t, m, "cam"); c != 95.0/4 || p != 95.0/4 {
		t.Fatalf("fps across reset = %v, %v, want %v", c, p, 95.0/4)
	}
}

func TestFPSWithoutRunUsesScrapes(t *testing.T) {
	m := New(Options{})
	clk := newFakeClock()
	m.now = clk.now
	src := &fakeSource{}
	m.AddCamera("cam", nil, src.get)

	// With Run not running, scrapes a second or more apart keep the ring
	// filled on their own.
	for i := uint64(0); i <= 4; i++ {
		src.set(30*i, 30*i)
		if i < 4 {
			fps(t, m, "cam")
			clk.advance(2 * time.Second)
		}
	}
	if c, _ := fps(t, m, "cam"); c != 15 {
		t.Fatalf("capture fps from scrapes alone = %v, want 15", c)
	}
}

func TestObserveAndDetectDoNotAllocate(t *testing.T) {
	m := New(Options{})
	c := m.AddCamera("cam", cocoFew, nil)
	c.ObserveStages(time.Millisecond, 20*time.Millisecond, 2*time.Millisecond)
	c.AddDetection(1)
	c.AddDetection(42)

	for name, fn := range map[string]func(){
		"ObserveStages":          func() { c.ObserveStages(time.Millisecond, 20*time.Millisecond, 2*time.Millisecond) },
		"AddDetection":           func() { c.AddDetection(2) },
		"AddDetection(unknown)":  func() { c.AddDetection(42) },
		"AddDetection(negative)": func() { c.AddDetection(-1) },
	} {
		if a := testing.AllocsPerRun(1000, fn); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}

func TestConcurrentObserveWithScrapes(t *testing.T) {
	m := New(Options{})
	m.interval = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		m.Run(ctx)
	}()
	defer func() {
		cancel()
		<-runDone
	}()

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	const workers, perHalf = 8, 500
	cams := []*Camera{
		m.AddCamera("a", cocoFew, nil),
		m.AddCamera("b", cocoFew, nil),
	}
	work := func(w int) {
		c := cams[w%len(cams)]
		for i := range perHalf {
			c.ObserveStages(time.Millisecond, 10*time.Millisecond, time.Millisecond)
			c.AddDetection(i % 4) // 3 is out of range: "unknown"
		}
	}
	check := func(f families, halves int) {
		t.Helper()
		perCam := float64(workers / len(cams) * perHalf * halves) // observations per camera
		for _, cam := range []string{"a", "b"} {
			h := f.metric(t, "edgedet_stage_duration_seconds", "camera", cam, "stage", "inference").GetHistogram()
			if float64(h.GetSampleCount()) != perCam {
				t.Errorf("camera %s inference count %d, want %v", cam, h.GetSampleCount(), perCam)
			}
			for _, l := range []string{"person", "bicycle", "car", "unknown"} {
				if got := f.value(t, "edgedet_detections_total", "camera", cam, "label", l); got != perCam/4 {
					t.Errorf("camera %s label %s = %v, want %v", cam, l, got, perCam/4)
				}
			}
		}
	}

	// First half from every worker, then a scrape that must see exactly it.
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { work(w) })
	}
	wg.Wait()
	check(mustScrape(t, srv.URL), 1)

	// Second half with scrapes running alongside: the workers start once
	// the first of them is under way.
	stop, scraping := make(chan struct{}), make(chan struct{})
	scrapes := make(chan error, 1)
	go func() {
		close(scraping)
		for {
			if _, err := scrape(srv.URL); err != nil {
				scrapes <- err
				return
			}
			select {
			case <-stop:
				scrapes <- nil
				return
			default:
			}
		}
	}()
	<-scraping
	for w := range workers {
		wg.Go(func() { work(w) })
	}
	wg.Wait()
	close(stop)
	if err := <-scrapes; err != nil {
		t.Fatalf("concurrent scrape: %v", err)
	}
	check(mustScrape(t, srv.URL), 2)
}

func TestRunSamplesUntilCancelled(t *testing.T) {
	m := New(Options{})
	m.interval = 5 * time.Millisecond
	c := m.AddCamera("cam", nil, (&fakeSource{}).get)
	samples := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ring.n
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	eventually(t, 5*time.Second, func() bool { return samples() >= 3 })

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestAddCameraSameNameReplacesSource(t *testing.T) {
	m := New(Options{})
	old := m.AddCamera("cam", cocoFew, func() CameraCounters { return CameraCounters{Captured: 5} })
	cur := m.AddCamera("cam", cocoFew, func() CameraCounters { return CameraCounters{Captured: 9} })
	old.ObserveStages(time.Millisecond, time.Millisecond, time.Millisecond)
	cur.ObserveStages(time.Millisecond, time.Millisecond, time.Millisecond)
	old.AddDetection(0)
	cur.AddDetection(0)

	f := gather(t, m) // would fail on duplicate series
	if got := f.value(t, "edgedet_camera_frames_captured_total", "camera", "cam"); got != 9 {
		t.Errorf("captured = %v, want 9 from the newer source", got)
	}
	if got := f.metric(t, "edgedet_stage_duration_seconds", "camera", "cam", "stage", "inference").GetHistogram().GetSampleCount(); got != 2 {
		t.Errorf("inference count = %d, want 2", got)
	}
	if got := f.value(t, "edgedet_detections_total", "camera", "cam", "label", "person"); got != 2 {
		t.Errorf("person detections = %v, want 2", got)
	}
}

func TestOddLabels(t *testing.T) {
	m := New(Options{Version: "v\xff1"})
	c := m.AddCamera("cam\xfe", []string{"person", "", "bad\xff"}, nil)
	c.AddDetection(1)
	c.AddDetection(2)

	f := gather(t, m)
	if got := f.value(t, "edgedet_detections_total", "camera", "cam\uFFFD", "label", "1"); got != 1 {
		t.Errorf("unnamed class 1 = %v, want 1 under label \"1\"", got)
	}
	if got := f.value(t, "edgedet_detections_total", "camera", "cam\uFFFD", "label", "bad\uFFFD"); got != 1 {
		t.Errorf("class with invalid UTF-8 name = %v, want 1", got)
	}
	if got := f.value(t, "edgedet_info", "version", "v\uFFFD1"); got != 1 {
		t.Errorf("edgedet_info = %v, want 1", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
