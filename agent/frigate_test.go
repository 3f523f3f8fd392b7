package agent

import (
	"context"
	"encoding/json"
	"image"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/agent/zone"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/testenv"
	"gocv.io/x/gocv"
)

// TestFrigateModeScene runs the dog scene through a pipeline in Frigate
// mode, with motion gating and a zone, delivering to a real Mosquitto, and
// reads it as a Frigate consumer would: frigate/events with before/after
// (each before the previous after of the same id, zones included), the
// camera's and the zone's counts with "all", and the motion topic going
// ON while the dog moves and OFF again without flapping.
func TestFrigateModeScene(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "frigate/#")
	lawn := zone.Config{Name: "lawn", Points: []zone.Point{{640, 0}, {1280, 0}, {1280, 720}, {640, 720}}, Objects: []string{"dog"}}
	clk := clock.NewFake(scenePast)
	cc := CameraConfig{Zones: []zone.Config{lawn}, Motion: MotionConfig{Enabled: true, OffDelay: cfgtypes.Duration(time.Second)}}
	p, _ := testPipeline(t, cc, withClock(clk), withTopics(topic.Tree{Prefix: "frigate", Device: "t", Frigate: true}))
	deliverTo(t, p, broker.URL)
	sc := dogScene(t, 1280, 720, 260, image.Pt(-200, 300), image.Pt(600, 330))
	const frames = 160
	runScene(t, p, sc, scenePast, frames, "dog")
	clk.Advance(frames * frameInterval)
	p.flushTracks(clk.Now())

	type object struct {
		ID           string   `json:"id"`
		Camera       string   `json:"camera"`
		Label        string   `json:"label"`
		FrameTime    float64  `json:"frame_time"`
		StartTime    float64  `json:"start_time"`
		EndTime      *float64 `json:"end_time"`
		Box          []int    `json:"box"`
		CurrentZones []string `json:"current_zones"`
		EnteredZones []string `json:"entered_zones"`
	}
	var (
		last    = map[string]object{} // id → the after of its latest message
		types   []string
		counts  = map[string]string{} // topic → payloads
		motion  []string
		entered bool
	)
	done := func() bool {
		return len(types) > 0 && types[len(types)-1] == "end" && len(motion) > 0 && motion[len(motion)-1] == "OFF" &&
			strings.HasSuffix(counts["frigate/lawn/all"], "0 ") && strings.HasSuffix(counts["frigate/static/all"], "0 ")
	}
	deadline := time.After(20 * time.Second)
	for !done() {
		var m testenv.Message
		select {
		case m = <-sub:
		case <-deadline:
			t.Fatalf("timed out: events %v, motion %v, counts %v", types, motion, counts)
		}
		switch {
		case m.Topic == "frigate/events":
			var ev struct {
				Type          string `json:"type"`
				Before, After *object
			}
			if err := json.Unmarshal(m.Payload, &ev); err != nil || ev.Before == nil || ev.After == nil {
				t.Fatalf("event %s: %v", m.Payload, err)
			}
			a := *ev.After
			if a.Label != "dog" {
				continue
			}
			types = append(types, ev.Type)
			if a.Camera != "static" || len(a.Box) != 4 || a.StartTime < float64(scenePast.Unix()) || a.FrameTime < a.StartTime {
				t.Errorf("bad object: %s", m.Payload)
			}
			if prev, ok := last[a.ID]; ok && !reflect.DeepEqual(*ev.Before, prev) {
				t.Errorf("%s: before is not the previous message's after:\n%s", ev.Type, m.Payload)
			}
			if (ev.Type == "end") != (a.EndTime != nil) {
				t.Errorf("%s with end_time %v", ev.Type, a.EndTime)
			}
			entered = entered || strings.Join(a.EnteredZones, ",") == "lawn"
			last[a.ID] = a
		case m.Topic == "frigate/static/motion":
			motion = append(motion, string(m.Payload))
		case strings.HasPrefix(m.Topic, "frigate/static/") || strings.HasPrefix(m.Topic, "frigate/lawn/"):
			counts[m.Topic] += string(m.Payload) + " "
		}
	}
	if types[0] != "new" || len(last) != 1 {
		t.Errorf("dog events %v for %d objects, want one object, new first", types, len(last))
	}
	if !entered {
		t.Error("no event says the dog entered the lawn")
	}
	for _, tp := range []string{"frigate/static/dog", "frigate/static/all", "frigate/lawn/dog", "frigate/lawn/all", "frigate/lawn/dog/active"} {
		if got := counts[tp]; !strings.Contains(got, "1 ") || !strings.HasSuffix(got, "0 ") {
			t.Errorf("%s published %q, want 1 then 0", tp, got)
		}
	}
	// Motion: ON while the dog moved, OFF again; held, not flapping with
	// every frame. (The start's OFF went to the outbox deliverTo replaced.)
	if len(motion) < 2 || motion[0] != "ON" || len(motion) > 6 {
		t.Errorf("motion published %v, want ON, …, OFF with few changes", motion)
	}
	t.Logf("motion: %v", motion)
}

// TestFrigateStats: the stats report in Frigate's /api/stats shape — per
// camera rates and detection_enabled, totals, one detector with the
// process-weighted inference time, service uptime and version.
func TestFrigateStats(t *testing.T) {
	r := StatsReport{UptimeS: 61.7, Provider: "xnnpack", Cameras: map[string]CameraStats{
		"front": {CameraFPS: 10, ProcessFPS: 4, SkippedFPS: 6, InferenceMs: 20, Detect: true},
		"back":  {CameraFPS: 5.555, ProcessFPS: 1, SkippedFPS: 4.555, InferenceMs: 40},
	}}
	now := time.Unix(1700000000, 0)
	b, err := json.Marshal(toFrigateStats(r, "v1.2", 42, now))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cameras": map[string]any{
			"front": map[string]any{"camera_fps": 10.0, "process_fps": 4.0, "skipped_fps": 6.0, "detection_fps": 4.0,
				"detection_enabled": true, "pid": 42.0, "capture_pid": 42.0, "ffmpeg_pid": nil},
			"back": map[string]any{"camera_fps": 5.56, "process_fps": 1.0, "skipped_fps": 4.56, "detection_fps": 1.0,
				"detection_enabled": false, "pid": 42.0, "capture_pid": 42.0, "ffmpeg_pid": nil},
		},
		"detectors":  map[string]any{"xnnpack": map[string]any{"inference_speed": 24.0, "detection_start": 0.0, "pid": 42.0}},
		"camera_fps": 15.56, "process_fps": 5.0, "skipped_fps": 10.56, "detection_fps": 5.0,
		"service": map[string]any{"uptime": 61.0, "version": "v1.2", "storage": map[string]any{}, "last_updated": 1700000000.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestFrigateRestoreOpen: in Frigate mode the objects a killed run left
// open end on frigate/events (before and after set, end_time set) and the
// camera's counts, "all" included, go to 0.
func TestFrigateRestoreOpen(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "frigate/#")
	dir := t.TempDir()
	s, _ := mustOpenStore(t, dir, testLog())
	start := time.Date(2035, 7, 8, 9, 10, 11, 0, time.UTC)
	s.set("static", report.Meta{Model: "m", Precision: "fp32", Width: 640, Height: 480},
		[]track.Object{openTestObject("2067484211000-000001", "dog", 0, start)})

	p, _ := testPipeline(t, CameraConfig{})
	deliverTo(t, p, broker.URL)
	a := &Agent{cfg: &Config{StateDir: dir}, log: testLog(), clock: clock.NewFake(start.Add(time.Hour))}
	if _, _, err := a.restoreOpen(p.box, topic.Tree{Prefix: "frigate", Device: "t", Frigate: true}); err != nil {
		t.Fatal(err)
	}
	var ended bool
	zero := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !ended || len(zero) < 2 {
		select {
		case m := <-sub:
			switch m.Topic {
			case "frigate/events":
				var ev struct {
					Type          string
					Before, After *struct {
						ID      string   `json:"id"`
						EndTime *float64 `json:"end_time"`
					}
				}
				if err := json.Unmarshal(m.Payload, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Type != "end" || ev.Before == nil || ev.After == nil || ev.After.ID != "2067484211000-000001" ||
					ev.After.EndTime == nil || ev.Before.EndTime != nil {
					t.Fatalf("unexpected event %s", m.Payload)
				}
				ended = true
			case "frigate/static/dog", "frigate/static/all":
				if string(m.Payload) != "0" {
					t.Fatalf("%s = %q, want 0", m.Topic, m.Payload)
				}
				zero[m.Topic] = true
			}
		case <-deadline:
			t.Fatalf("ended %v, zero counts %v after 10s", ended, zero)
		}
	}
}

// TestMotionTopicWhileDetectionOff: with detection switched off the model
// never runs, but the motion topic still follows the scene: ON while the
// dog walks in, OFF at least off_delay later, once the still dog has
// become background.
func TestMotionTopicWhileDetectionOff(t *testing.T) {
	cc := CameraConfig{Motion: MotionConfig{Enabled: true, OffDelay: cfgtypes.Duration(time.Second)}}
	p, _ := testPipeline(t, cc)
	if _, err := p.ctrl.Set(control.SettingDetect, []byte("OFF")); err != nil {
		t.Fatal(err)
	}
	sc := dogScene(t, 1280, 720, 260, image.Pt(-200, 300), image.Pt(600, 330))
	runScene(t, p, sc, scenePast, 39, "dog") // still painting only
	if p.motion.On() {
		t.Fatal("motion ON before anything moved")
	}
	// Frames 40..70 the dog walks in, 70..110 it stands, then it leaves.
	st := newFrameState()
	mat := gocv.NewMat()
	defer mat.Close()
	var onAt, offAt = -1, -1
	for i := 39; i < 160; i++ {
		sc.Frame(i, &mat)
		f := &camera.Frame{Mat: mat, Seq: uint64(i + 1), Time: scenePast.Add(time.Duration(i) * frameInterval)}
		it, err := p.prepareFrame(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		p.process(context.Background(), it, st)
		if p.motion.On() && onAt < 0 {
			onAt = i
		}
		if !p.motion.On() && onAt >= 0 && offAt < 0 {
			offAt = i
		}
	}
	if n := p.stats.processed.Load(); n != 0 {
		t.Errorf("the detector ran on %d frames with detection off", n)
	}
	if onAt < 40 || onAt > 45 {
		t.Errorf("motion ON at frame %d, want as the dog comes in (40)", onAt)
	}
	if offAt < 0 || offAt-onAt < 10 {
		t.Errorf("motion OFF at frame %d, ON at %d: want OFF, and not before off_delay (10 frames)", offAt, onAt)
	}
	t.Logf("motion ON at frame %d, OFF at frame %d", onAt, offAt)
}
