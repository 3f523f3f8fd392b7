package agent

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// fakeDetector is a Detector without a model: every frame it runs on
// yields the same detections. It counts what the pipeline asked of it.
type fakeDetector struct {
	info      detector.ModelInfo
	dets      []detection.Detection
	jobs      chan *fakeJob
	prepared  atomic.Int64 // Prepare calls
	infers    atomic.Int64 // Infer calls
	threshold float32      // the last SetScoreThreshold
}

var _ Detector = (*fakeDetector)(nil)

// fakeLabels are the fake model's labels: a giraffe, which nothing in the
// test clips looks like, shows that a detection came from the fake.
var fakeLabels = []string{"person", "giraffe"}

// newFakeDetector returns a fake with two jobs (prepare may hold one
// while finish runs the other) whose every inference finds dets.
func newFakeDetector(dets ...detection.Detection) *fakeDetector {
	d := &fakeDetector{
		info: detector.ModelInfo{Name: "fake", Precision: "fp32", Provider: "none", Labels: fakeLabels,
			Spec: detection.Spec{InputWidth: 416, InputHeight: 416}},
		dets: dets,
		jobs: make(chan *fakeJob, 2),
	}
	for range cap(d.jobs) {
		d.jobs <- &fakeJob{d: d}
	}
	return d
}

func (d *fakeDetector) Info() detector.ModelInfo          { return d.info }
func (d *fakeDetector) SetScoreThreshold(t float32) error { d.threshold = t; return nil }

func (d *fakeDetector) Acquire(ctx context.Context) (Job, error) {
	select {
	case j := <-d.jobs:
		j.prepared, j.ran = false, false
		return j, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *fakeDetector) Release(j Job) {
	if j, ok := j.(*fakeJob); ok && j != nil {
		d.jobs <- j
	}
}

type fakeJob struct {
	d             *fakeDetector
	width, height int
	prepared, ran bool
}

func (j *fakeJob) Prepare(img gocv.Mat) error {
	j.d.prepared.Add(1)
	j.width, j.height, j.prepared, j.ran = img.Cols(), img.Rows(), true, false
	return nil
}

func (j *fakeJob) Infer(context.Context) error {
	if !j.prepared {
		return errors.New("fake detector: Infer before Prepare")
	}
	j.d.infers.Add(1)
	j.ran = true
	return nil
}

func (j *fakeJob) Decode(dst []detection.Detection) detector.Result {
	res := detector.Result{Width: j.width, Height: j.height, Detections: dst[:0]}
	if j.ran {
		res.Detections = append(res.Detections, j.d.dets...)
		res.Timings = detector.Timings{Preprocess: time.Millisecond, Inference: 2 * time.Millisecond, Postprocess: time.Millisecond}
	}
	return res
}

// giraffe is the fake's detection in the 320×240 test clips.
var giraffe = detection.Detection{ClassID: 1, Label: "giraffe", Score: 0.9, Box: detection.Box{X1: 40, Y1: 30, X2: 200, Y2: 180}}

// TestPipelineGatesTheFakeDetector: through prepare and finish, a fake
// detector is asked for nothing while the scene is still, runs on the
// frames in which the dog moves, and its detections become tracked
// objects whose events are queued.
func TestPipelineGatesTheFakeDetector(t *testing.T) {
	sc := dogScene(t, 640, 360, 160, image.Pt(-150, 150), image.Pt(300, 170))
	fake := newFakeDetector(giraffe)
	p, _ := testPipelineWith(t, CameraConfig{Motion: MotionConfig{Enabled: true}}, fake)
	const frames = 75 // the dog moves in 40..70
	r := runScene(t, p, sc, scenePast, frames, "giraffe")

	t.Logf("the fake ran on %d of %d frames, %d of the 28 the dog moved in", r.runs(0, frames), frames, r.runs(42, 70))
	if n := r.runs(0, 40); n != 0 {
		t.Errorf("the fake ran on %d of the 40 still frames before the dog came", n)
	}
	if n := r.runs(42, 70); n < 20 {
		t.Errorf("the fake ran on %d of the 28 frames the dog moved in", n)
	}
	if got, want := fake.infers.Load(), int64(r.runs(0, frames)); got != want || got != int64(p.stats.inferences.Load()) {
		t.Errorf("the fake ran %d times; the pipeline saw %d runs and counted %d inferences", got, want, p.stats.inferences.Load())
	}
	if got, want := fake.prepared.Load(), fake.infers.Load(); got != want {
		t.Errorf("%d frames prepared for the fake, %d run: a prepared job was dropped", got, want)
	}
	if n := p.stats.gated.Load(); n+p.stats.processed.Load() != frames || n < 40 {
		t.Errorf("gated %d and processed %d of %d frames", n, p.stats.processed.Load(), frames)
	}
	if got := eventTypes(r.events, "giraffe"); len(got) == 0 || got[0] != track.EventNew {
		t.Errorf("giraffe events %v, want the fake's detection to open one", got)
	}
	for i, n := range r.found {
		if r.ran[i] && n != 1 {
			t.Errorf("frame %d: %d giraffes kept of the fake's one", i, n)
		}
	}
}

// TestRunWithFakeDetector runs the whole agent with a fake detector on a
// real Mosquitto. Without motion gating the fake runs on every frame of
// the clip and its detection reaches the broker as detections and as an
// event that opens and ends at shutdown; with gating on the same still
// clip the fake is never asked, no frame counts as ready, yet every frame
// feeds the watchdog.
func TestRunWithFakeDetector(t *testing.T) {
	const frames = 12
	mq := testenv.StartMosquitto(t)
	clip := dogClip(t, frames)
	for _, tc := range []struct {
		name   string
		camera string
		gated  bool
	}{
		{"ungated", "realtime = false\n\n[detections]\nenabled = true\n", false},
		{"gated", "realtime = false\n[camera.motion]\nenabled = true\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := runConfig(t, clip, mq.URL, "", tc.camera)
			cfg.MQTT.Device = "fake_" + tc.name // each case its own topics
			topics := cfg.MQTT.Topics()
			events := testenv.Subscribe(t, mq.URL, topics.Events("front"))
			dets := testenv.Subscribe(t, mq.URL, topics.Detections("front"))
			fake := newFakeDetector(giraffe)
			a, err := newAgent(cfg, fake, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var ready, beats atomic.Int64
			a.OnReady = func() { ready.Add(1) }
			a.OnHeartbeat = func() { beats.Add(1) }
			ctx, cancel := context.WithTimeout(context.Background(), runLimit)
			defer cancel()
			if err := a.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Run returned only when its context expired, not when the clip ended")
			}
			if b := beats.Load(); b != frames {
				t.Errorf("OnHeartbeat ran %d times for a clip of %d frames", b, frames)
			}
			if tc.gated {
				if n := fake.prepared.Load() + fake.infers.Load(); n != 0 {
					t.Errorf("on a still clip with motion gating the fake prepared %d and ran %d frames, want none",
						fake.prepared.Load(), fake.infers.Load())
				}
				if n := ready.Load(); n != 0 {
					t.Errorf("OnReady ran %d times though no frame went through the detector", n)
				}
				return
			}
			if n := fake.infers.Load(); n != frames {
				t.Errorf("the fake ran %d times on a clip of %d frames read unpaced", n, frames)
			}
			if n := ready.Load(); n != 1 {
				t.Errorf("OnReady ran %d times, want once", n)
			}
			waitGiraffeDetections(t, dets)
			waitGiraffeEvents(t, events)
		})
	}
}

// waitGiraffeDetections waits for a detections message carrying the
// fake's giraffe, box and score as the fake gave them.
func waitGiraffeDetections(t *testing.T, ch <-chan testenv.Message) {
	t.Helper()
	testenv.Eventually(t, runLimit, "the fake's giraffe on the detections topic", func() bool {
		for {
			select {
			case m := <-ch:
				var fr struct {
					Model      string `json:"model"`
					Detections []struct {
						Label string     `json:"label"`
						Score float64    `json:"score"`
						Box   [4]float64 `json:"box"`
					} `json:"detections"`
				}
				if err := json.Unmarshal(m.Payload, &fr); err != nil {
					t.Fatalf("detections %q: %v", m.Payload, err)
				}
				if fr.Model != "fake" || len(fr.Detections) != 1 {
					t.Fatalf("detections %s: want the fake model's one detection", m.Payload)
				}
				d := fr.Detections[0]
				b := giraffe.Box
				if d.Label != "giraffe" || !near(d.Score, 0.9) || !near(d.Box[0], float64(b.X1)) || !near(d.Box[3], float64(b.Y2)) {
					t.Fatalf("detections %s: want the fake's giraffe at %+v", m.Payload, b)
				}
				return true
			default:
				return false
			}
		}
	})
}

// waitGiraffeEvents waits for the giraffe's "new" and its "end" (reason
// shutdown: the clip ended with it in view).
func waitGiraffeEvents(t *testing.T, ch <-chan testenv.Message) {
	t.Helper()
	var seen []string
	testenv.Eventually(t, runLimit, "a new and an end event for the fake's giraffe", func() bool {
		for {
			select {
			case m := <-ch:
				var e struct {
					Type      string `json:"type"`
					EndReason string `json:"end_reason"`
					After     struct {
						Label string `json:"label"`
					} `json:"after"`
				}
				if err := json.Unmarshal(m.Payload, &e); err != nil {
					t.Fatalf("event %q: %v", m.Payload, err)
				}
				if e.After.Label != "giraffe" {
					t.Fatalf("event %s: want only the fake's giraffe", m.Payload)
				}
				switch e.Type {
				case "new":
					seen = append(seen, "new")
				case "end":
					seen = append(seen, "end/"+e.EndReason)
				}
			default:
				return len(seen) == 2
			}
		}
	})
	if seen[0] != "new" || seen[1] != "end/shutdown" {
		t.Errorf("giraffe events %v, want new then end/shutdown", seen)
	}
}

func near(a, b float64) bool { return a-b < 1e-3 && b-a < 1e-3 }
