package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// runLimit bounds every wait on the running agent: generous, so a loaded
// machine only makes the test slower, never fail.
const runLimit = 60 * time.Second

// dogClip writes a clip of dog.jpg (frames at 10 fps) and returns its path.
func dogClip(t *testing.T, frames int) string {
	t.Helper()
	clip := filepath.Join(t.TempDir(), "dog.avi")
	if err := testenv.WriteClip(clip, []string{testenv.Shared(t, "datasets", "samples", "dog.jpg")}, 320, 240, 10, frames); err != nil {
		t.Fatal(err)
	}
	return clip
}

// runConfig is a config for one camera, "front", reading clip, publishing
// to broker (or, for "embedded:host:port", to the embedded broker
// listening there), with an HTTP server on a free port; http and camera
// are added to those sections.
func runConfig(t *testing.T, clip, broker, http, camera string) *Config {
	t.Helper()
	dir := t.TempDir()
	mqttSection := fmt.Sprintf("broker = %q\ndevice = \"box1\"", broker)
	if addr, ok := strings.CutPrefix(broker, "embedded:"); ok {
		mqttSection = fmt.Sprintf("device = \"box1\"\n[mqtt.embedded]\nenabled = true\nlisten = %q", addr)
	}
	text := fmt.Sprintf(`state_dir = "state"

[detector]
model = %q
threads = 1
score_threshold = 0.3

[mqtt]
%s

[http]
listen = "127.0.0.1:0"
%s

[[camera]]
name = "front"
source = %q
%s
`, testenv.Shared(t, "models", "yolox_nano_416.onnx"), mqttSection, http, clip, camera)
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newTestAgent loads the config's detector and builds the agent; the
// detector is closed when the test ends.
func newTestAgent(t *testing.T, cfg *Config, log *slog.Logger) *Agent {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	det, err := detector.New(cfg.Detector, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	a, err := New(cfg, det, log)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startAgent runs a until the test ends (or stop is called) and returns
// stop, which cancels Run and returns its error.
func startAgent(t *testing.T, a *Agent) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var err error
	var stopped atomic.Bool
	stop = func() error {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			select {
			case err = <-done:
			case <-time.After(runLimit):
				t.Fatal("Run did not return after its context was cancelled")
			}
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// nextStats waits for a stats message for which ok holds.
func nextStats(t *testing.T, ch <-chan testenv.Message, what string, ok func(StatsReport) bool) StatsReport {
	t.Helper()
	deadline := time.After(runLimit)
	for {
		select {
		case m := <-ch:
			var r StatsReport
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				t.Fatalf("stats payload %q: %v", m.Payload, err)
			}
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("no stats message with %s within %s", what, runLimit)
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %q: %v", url, body, err)
		}
	}
	return resp.StatusCode
}

// TestRunStatsControlReloadAndHTTP runs the whole agent in process against
// a real Mosquitto, with a looping real-time clip: it publishes stats whose
// rates and stage times come from the frames it processes and which follow
// the control topics and a live reload; /healthz, /api/cameras and
// /metrics serve the same camera; Totals counts the frames; the readiness
// hook runs once; shutdown returns nil and a second Run is refused.
func TestRunStatsControlReloadAndHTTP(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	clip := dogClip(t, 10)
	cfg := runConfig(t, clip, mq.URL, "metrics = true\nlive_view = true\n", `loop = true
realtime = true

[stats]
interval = "300ms"

[log]
stats_interval = "300ms"
`)
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a := newTestAgent(t, cfg, log)
	var ready, beats atomic.Int64
	a.OnReady = func() { ready.Add(1) }
	a.OnHeartbeat = func() { beats.Add(1) }
	if got := a.Totals(); len(got) != 0 {
		t.Fatalf("Totals before Run: %+v, want none", got)
	}
	stats := testenv.Subscribe(t, mq.URL, cfg.MQTT.Topics().Stats())
	states := testenv.Subscribe(t, mq.URL, "edgedet/box1/front/+/state")
	stop := startAgent(t, a)

	info := a.det.Info()
	r := nextStats(t, stats, "frames processed", func(r StatsReport) bool {
		c, ok := r.Cameras["front"]
		return ok && c.ProcessFPS > 0 && c.InferenceMs > 0
	})
	c := r.Cameras["front"]
	if r.Model != info.Name || r.Precision != info.Precision || r.Provider != info.Provider {
		t.Errorf("stats model %q/%q/%q, want the detector's %q/%q/%q", r.Model, r.Precision, r.Provider,
			info.Name, info.Precision, info.Provider)
	}
	if !r.MQTT.Connected || r.UptimeS <= 0 {
		t.Errorf("stats: mqtt %+v, uptime %g s; want connected and a positive uptime", r.MQTT, r.UptimeS)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
		t.Errorf("stats timestamp %q: %v", r.Time, err)
	}
	// Rates are frame counts over the time since the previous message,
	// which the uptimes give exactly: rate × Δuptime is a whole number of
	// frames, and a clip paced at 10 fps delivers at most Δuptime×10 + 2.
	r2 := nextStats(t, stats, "any content", func(StatsReport) bool { return true })
	dt := r2.UptimeS - r.UptimeS
	c2 := r2.Cameras["front"]
	for _, f := range []struct {
		name string
		rate float64
	}{{"camera_fps", c2.CameraFPS}, {"process_fps", c2.ProcessFPS}, {"skipped_fps", c2.SkippedFPS}} {
		n := f.rate * dt
		if math.Abs(n-math.Round(n)) > 1e-6 || n < 0 || n > dt*10+2 {
			t.Errorf("%s %g over %g s = %g frames: want a whole number from 0 to %g", f.name, f.rate, dt, n, dt*10+2)
		}
	}
	if !c.Detect || c.Threshold != 0.3 || !c.Connected {
		t.Errorf("camera stats %+v: want detect on, threshold 0.3, connected", c)
	}

	// Switching detection off by MQTT: the state is echoed, later stats
	// say so and count the frames as skipped, none as processed.
	ctrl := cfg.MQTT.Topics()
	testenv.Publish(t, mq.URL, ctrl.Set("front", string(control.SettingDetect)), []byte("OFF"), false)
	waitMessage(t, states, ctrl.State("front", string(control.SettingDetect)), "OFF")
	nextStats(t, stats, "detection off and no frame processed", func(r StatsReport) bool {
		c := r.Cameras["front"]
		return !c.Detect && c.ProcessFPS == 0 && c.SkippedFPS > 0 && c.InferenceMs == 0
	})
	testenv.Publish(t, mq.URL, ctrl.Set("front", string(control.SettingDetect)), []byte("ON"), false)
	// An unknown camera and a bad value change nothing.
	testenv.Publish(t, mq.URL, ctrl.Set("back", string(control.SettingDetect)), []byte("OFF"), false)
	testenv.Publish(t, mq.URL, ctrl.Set("front", string(control.SettingThreshold)), []byte("2"), false)
	nextStats(t, stats, "detection back on", func(r StatsReport) bool {
		c := r.Cameras["front"]
		return c.Detect && c.ProcessFPS > 0 && c.Threshold == 0.3
	})
	if !strings.Contains(logs.String(), "control message rejected") {
		t.Error("threshold 2 was not logged as rejected")
	}

	// A reload changes the threshold of the running camera.
	next := *cfg
	next.Detector.ScoreThreshold = 0.5
	applied, restart, err := a.Reload(&next)
	if err != nil || !slices.Equal(applied, []string{"detector.score_threshold"}) || len(restart) != 0 {
		t.Fatalf("Reload: applied %v, restart %v, err %v; want the threshold applied live", applied, restart, err)
	}
	// (The retained threshold/state topic is not republished by Reload; it
	// catches up at the next reconnect.)
	nextStats(t, stats, "the reloaded threshold", func(r StatsReport) bool { return r.Cameras["front"].Threshold == 0.5 })

	// The HTTP server shows the same camera.
	base := "http://" + a.HTTPAddr()
	if a.HTTPAddr() == "" {
		t.Fatal("HTTPAddr empty while the http server runs")
	}
	var health struct {
		Status  string `json:"status"`
		Cameras map[string]struct {
			Connected bool `json:"connected"`
		} `json:"cameras"`
	}
	if code := getJSON(t, base+"/healthz", &health); code != http.StatusOK || health.Status != "ok" || !health.Cameras["front"].Connected {
		t.Errorf("/healthz: %d %+v, want 200, ok, front connected", code, health)
	}
	// The live rates are sampled every rateEvery.
	testenv.Eventually(t, runLimit, "/api/cameras shows rates", func() bool {
		var cams map[string]struct {
			CaptureFPS  float64 `json:"capture_fps"`
			ProcessFPS  float64 `json:"process_fps"`
			InferenceMs float64 `json:"inference_ms"`
			Detect      bool    `json:"detect"`
		}
		getJSON(t, base+"/api/cameras", &cams)
		f := cams["front"]
		return f.CaptureFPS > 0 && f.ProcessFPS > 0 && f.InferenceMs > 0 && f.Detect
	})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `edgedet_info{`) || !strings.Contains(string(body), `camera="front"`) {
		t.Errorf("/metrics lacks edgedet_info or the front camera:\n%.2000s", body)
	}

	testenv.Eventually(t, runLimit, "periodic stats log lines", func() bool {
		return logs.Count("camera stats", "camera=front") > 0 && logs.Count("mqtt stats", "connected=true") > 0
	})
	tot := a.Totals()
	if len(tot) != 1 || tot[0].Name != "front" || tot[0].Captured == 0 || tot[0].Processed == 0 ||
		tot[0].Processed > tot[0].Captured || tot[0].Inference <= 0 || tot[0].Skipped == 0 {
		t.Errorf("Totals %+v: want front with frames captured, processed (<= captured), skipped while off, inference time", tot)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := ready.Load(); n != 1 {
		t.Errorf("OnReady ran %d times, want once", n)
	}
	if b := beats.Load(); b < int64(tot[0].Processed) {
		t.Errorf("OnHeartbeat ran %d times for at least %d processed frames", b, tot[0].Processed)
	}
	if got := a.Totals(); len(got) != 0 {
		t.Errorf("Totals after Run: %+v, want none", got)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run: %v, want an error", err)
	}
}

// waitMessage waits for a message on topic with payload.
func waitMessage(t *testing.T, ch <-chan testenv.Message, topic, payload string) {
	t.Helper()
	testenv.Eventually(t, runLimit, topic+" = "+payload, func() bool {
		for {
			select {
			case m := <-ch:
				if m.Topic == topic && string(m.Payload) == payload {
					return true
				}
			default:
				return false
			}
		}
	})
}

// TestRunEndsWithTheCameras: with a clip that is not looped, Run returns
// nil once the clip has ended, after ending every object still in view:
// each "new" event on the camera's events topic gets its "end" (reason
// shutdown), and the open-object file no longer lists them.
func TestRunEndsWithTheCameras(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	clip := dogClip(t, 12)
	cfg := runConfig(t, clip, mq.URL, "", "realtime = false\n")
	if !cfg.Events.Enabled {
		t.Fatal("events are off by default; this test needs them")
	}
	events := testenv.Subscribe(t, mq.URL, cfg.MQTT.Topics().Events("front"))
	a := newTestAgent(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when its context expired, not when the clip ended")
	}
	type ev struct {
		Type      string `json:"type"`
		EndReason string `json:"end_reason"`
		After     struct {
			ID    string `json:"id"`
			Label string `json:"label"`
		} `json:"after"`
	}
	opened := map[string]string{} // id -> label, until ended
	var dogs int
	testenv.Eventually(t, runLimit, "a new and an end event for the dog", func() bool {
		for {
			select {
			case m := <-events:
				var e ev
				if err := json.Unmarshal(m.Payload, &e); err != nil {
					t.Fatalf("event %q: %v", m.Payload, err)
				}
				switch e.Type {
				case "new":
					opened[e.After.ID] = e.After.Label
				case "end":
					if e.EndReason != "shutdown" {
						t.Errorf("end event %s: reason %q, want shutdown (the clip ended with it in view)", m.Payload, e.EndReason)
					}
					if opened[e.After.ID] == "dog" {
						dogs++
					}
					delete(opened, e.After.ID)
				}
			default:
				return dogs > 0 && len(opened) == 0
			}
		}
	})
	data, err := os.ReadFile(filepath.Join(cfg.StateDir, openObjectsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"dog"`) {
		t.Errorf("open-object file after a clean end still lists the dog:\n%s", data)
	}
}

// TestRunEmbeddedBroker: with mqtt.embedded on, Run starts the broker and
// the agent publishes through it: a client of that broker sees the
// camera's retained control states.
func TestRunEmbeddedBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := runConfig(t, dogClip(t, 10), "embedded:"+addr, "", "loop = true\nrealtime = true\n")
	a := newTestAgent(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stop := startAgent(t, a)
	ctrl := cfg.MQTT.Topics()
	var states <-chan testenv.Message
	testenv.Eventually(t, runLimit, "the embedded broker accepts connections", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	states = testenv.Subscribe(t, "tcp://"+addr, ctrl.State("front", string(control.SettingDetect)))
	waitMessage(t, states, ctrl.State("front", string(control.SettingDetect)), "ON")
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestNewRejects: New refuses an invalid config and a nil detector.
func TestNewRejects(t *testing.T) {
	cfg := &Config{}
	if _, err := New(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("New accepted an empty config")
	}
	dir, text := minimal(t)
	good, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(good, nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "nil detector") {
		t.Errorf("New with a nil detector: %v", err)
	}
}

// TestGuardTurnsPanicIntoError: a panicking stage becomes an error naming
// the stage, the value and the stack; errors and nil pass through.
func TestGuardTurnsPanicIntoError(t *testing.T) {
	err := guard("detect front", func() error { panic("boom") })
	if err == nil || !strings.HasPrefix(err.Error(), "detect front: panic: boom\n") || !strings.Contains(err.Error(), "TestGuardTurnsPanicIntoError") {
		t.Errorf("guard: %v", err)
	}
	sentinel := errors.New("x")
	if err := guard("s", func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("guard changed an error: %v", err)
	}
	if err := guard("s", func() error { return nil }); err != nil {
		t.Errorf("guard: %v, want nil", err)
	}
}

// TestRunStoppedWhileStarting: a stop asked for while the agent starts (a
// SIGTERM right after systemd started it) ends Run cleanly: the start-up
// stage that saw the context end does not make it a failure. Any other
// start-up error still is one, also when a stop was asked for, and so is a
// context error while the agent's own context is live (a SUBACK timeout).
func TestRunStoppedWhileStarting(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	cfg := runConfig(t, dogClip(t, 2), mq.URL, "", "")
	a := newTestAgent(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Errorf("Run with its context ended before it started: %v, want a clean stop", err)
	}

	other := errors.New("subscribe to control topics: not authorised")
	timeout := fmt.Errorf("mqtt subscribe: no SUBACK within 5s: %w", context.DeadlineExceeded)
	cancelled := fmt.Errorf("subscribe to control topics: mqtt subscribe: %w", context.Canceled)
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"stopped while subscribing", ctx, cancelled, nil},
		{"another error during a stop", ctx, other, other},
		{"a timeout while running", context.Background(), timeout, timeout},
		{"a cancellation that is not the agent's", context.Background(), cancelled, cancelled},
	} {
		if got := a.startupError(c.ctx, c.err); got != c.want {
			t.Errorf("%s: startupError = %v, want %v", c.name, got, c.want)
		}
	}
}
