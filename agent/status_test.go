package agent

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestStallDetectionSurvivesWallClockSteps: a camera pipeline and the
// /healthz server share a clock whose wall time steps by days either way.
// The camera that keeps processing frames stays healthy; the one that
// stopped is reported after stall_after of real (monotonic) time, not
// earlier (forward step) nor later (backward step).
func TestStallDetectionSurvivesWallClockSteps(t *testing.T) {
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	defer img.Close()
	running, _ := testPipeline(t, CameraConfig{})
	stalled, _ := testPipeline(t, CameraConfig{})
	ctx := context.Background()
	st := newFrameState()
	for _, step := range []time.Duration{-5 * 24 * time.Hour, 5 * 24 * time.Hour, 8 * 365 * 24 * time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			clk := clock.NewFake(time.Date(2030, 6, 7, 8, 9, 10, 0, time.UTC))
			frame := func(p *pipeline) {
				t.Helper()
				j, err := p.det.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := j.Prepare(img); err != nil {
					t.Fatal(err)
				}
				p.process(ctx, prepared{job: j, frame: &camera.Frame{Mat: img, Time: clk.Now()}}, st)
			}
			for _, p := range []*pipeline{running, stalled} {
				p.clock = clk
				p.started, p.startedMono = clk.Now(), clk.Mono()
				frame(p)
			}
			if got := stalled.status(); !got.LastProgress.Equal(clk.Now()) || got.LastProgressMono != clk.Mono() {
				t.Fatalf("status after a frame: progress %v (mono %v), want %v (mono %v)",
					got.LastProgress, got.LastProgressMono, clk.Now(), clk.Mono())
			}
			srv, err := web.NewServer(web.Options{Listen: "127.0.0.1:0", StallAfter: 10 * time.Second, Clock: clk, Log: testLog()},
				[]web.CameraView{{Name: "running", Status: running.status}, {Name: "stalled", Status: stalled.status}})
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- srv.Run(runCtx) }()
			t.Cleanup(func() {
				stop()
				if err := <-done; err != nil {
					t.Error(err)
				}
			})
			healthy := func() map[string]bool {
				t.Helper()
				resp, err := http.Get("http://" + srv.Addr() + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				var h struct {
					Cameras map[string]struct {
						Healthy bool `json:"healthy"`
					} `json:"cameras"`
				}
				if err := json.Unmarshal(body, &h); err != nil {
					t.Fatalf("/healthz %q: %v", body, err)
				}
				return map[string]bool{"running": h.Cameras["running"].Healthy, "stalled": h.Cameras["stalled"].Healthy}
			}

			clk.Advance(3 * time.Second)
			frame(running)
			clk.StepWall(step)
			clk.Advance(6 * time.Second)
			frame(running)
			if h := healthy(); !h["running"] || !h["stalled"] {
				t.Fatalf("9s after the stalled camera's last frame, wall stepped %v: %v, want both healthy", step, h)
			}
			clk.Advance(2 * time.Second)
			frame(running)
			if h := healthy(); !h["running"] || h["stalled"] {
				t.Fatalf("11s after the stalled camera's last frame, wall stepped %v: %v, want only the stalled one unhealthy", step, h)
			}
		})
	}
}

// TestStatsSince: rates between two totals are per second of monotonic
// time and stage times per processed frame; with no time or no frame
// between them they are 0, never NaN or Inf.
func TestStatsSince(t *testing.T) {
	old := statsState{at: 10 * time.Second, captured: 100, processed: 40, skipped: 5, off: 7,
		infer: int64(400 * time.Millisecond), pre: int64(40 * time.Millisecond), post: int64(20 * time.Millisecond)}
	cur := statsState{at: 12 * time.Second, captured: 120, processed: 50, skipped: 9, off: 13,
		infer: int64(500 * time.Millisecond), pre: int64(60 * time.Millisecond), post: int64(25 * time.Millisecond)}
	got := cur.since(old)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"camera_fps", got.CameraFPS, 10}, {"process_fps", got.ProcessFPS, 5}, {"skipped_fps", got.SkippedFPS, 5},
		{"inference_ms", got.InferenceMs, 10}, {"preprocess_ms", got.PreprocessMs, 2}, {"postprocess_ms", got.PostMs, 0.5},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
	if z := old.since(old); z != (CameraStats{}) {
		t.Errorf("no time and no frames between the totals: %+v, want zeros", z)
	}
}
