package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// frigateObject is a tracked object of frigate/events as Frigate's MQTT
// documentation describes it. A consumer written for Frigate reads these
// fields; pointers tell null from absent.
type frigateObject struct {
	ID              string          `json:"id"`
	Camera          string          `json:"camera"`
	FrameTime       float64         `json:"frame_time"`
	Label           string          `json:"label"`
	SubLabel        json.RawMessage `json:"sub_label"`
	TopScore        float64         `json:"top_score"`
	FalsePositive   *bool           `json:"false_positive"`
	StartTime       float64         `json:"start_time"`
	EndTime         *float64        `json:"end_time"`
	Score           float64         `json:"score"`
	Box             []float64       `json:"box"`
	Area            float64         `json:"area"`
	Ratio           float64         `json:"ratio"`
	Region          []float64       `json:"region"`
	CurrentZones    []string        `json:"current_zones"`
	EnteredZones    []string        `json:"entered_zones"`
	HasSnapshot     *bool           `json:"has_snapshot"`
	HasClip         *bool           `json:"has_clip"`
	Stationary      *bool           `json:"stationary"`
	MotionlessCount *int            `json:"motionless_count"`
	PositionChanges *int            `json:"position_changes"`
	Attributes      json.RawMessage `json:"attributes"`
}

// frigateKeys are the keys every before/after object of Frigate's
// documented frigate/events payload has.
var frigateKeys = []string{"id", "camera", "frame_time", "snapshot", "label", "sub_label", "top_score", "false_positive",
	"start_time", "end_time", "score", "box", "area", "ratio", "region", "current_zones", "entered_zones", "thumbnail",
	"has_snapshot", "has_clip", "active", "stationary", "motionless_count", "position_changes", "attributes"}

// checkFrigateObject fails the test unless raw is a Frigate tracked object.
func checkFrigateObject(t *testing.T, raw json.RawMessage, payload []byte) frigateObject {
	t.Helper()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("object is not a JSON object: %v: %s", err, payload)
	}
	for _, k := range frigateKeys {
		if _, ok := keys[k]; !ok {
			t.Fatalf("object without %q: %s", k, payload)
		}
	}
	var o frigateObject
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("object fields: %v: %s", err, payload)
	}
	// Times are Unix seconds (numbers), recent ones.
	if o.ID == "" || o.Camera != "porch" || o.Label == "" || o.StartTime < 1.5e9 || o.FrameTime < o.StartTime ||
		len(o.Box) != 4 || o.Box[2] <= o.Box[0] || o.Box[3] <= o.Box[1] || o.Area <= 0 || o.Ratio <= 0 ||
		len(o.Region) != 4 || o.Score <= 0 || o.TopScore < o.Score-1e-6 || o.FalsePositive == nil || *o.FalsePositive ||
		o.CurrentZones == nil || o.EnteredZones == nil || o.HasSnapshot == nil || o.HasClip == nil || o.Stationary == nil {
		t.Fatalf("bad Frigate object: %s", payload)
	}
	return o
}

// TestFrigateCompatE2E runs `edgedet run` with mqtt.compat = "frigate" on a
// clip of a dog walking into a zone, and checks it with a consumer written
// from Frigate's documented MQTT topics (frigate/#): availability online,
// then "stopped" after a clean stop and the "offline" Last Will after a
// kill; events new/update/end whose before is the previous state (a
// "zone entered" automation comparing before and after fires once);
// per-camera and per-zone counts including "all"; the snapshot JPEG; the
// motion state; detection switched off and on through detect/set; stats.
func TestFrigateCompatE2E(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "dog-walks-in.avi")
	scene := testenv.Scene{
		Background: testenv.Shared(t, "datasets", "samples", "scream.jpg"), W: 1280, H: 720,
		Sprite: testenv.Shared(t, "datasets", "samples", "dog.jpg"), SpriteRect: image.Rect(132, 206, 325, 543), SpriteW: 260,
		From: image.Pt(-200, 300), To: image.Pt(600, 330), Enter: 20, Stop: 50, Leave: 90,
	}
	if err := testenv.WriteScene(clip, scene, 10, 130); err != nil {
		t.Fatal(err)
	}
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "frigate/#")
	cams := "[events]\nmin_hits = 2\nmax_age = \"2s\"\n\n[snapshots]\nenabled = true\nheight = 240\n\n[stats]\ninterval = \"1s\"\n\n" +
		clipCamera("porch", clip) + "[camera.motion]\nenabled = true\noff_delay = \"1s\"\n\n" +
		"[[camera.zone]]\nname = \"lawn\"\npoints = [[640, 0], [1280, 0], [1280, 720], [640, 720]]\nobjects = [\"dog\"]\n"
	config := strings.Replace(agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), cams),
		"[mqtt]\n", "[mqtt]\ncompat = \"frigate\"\n", 1)
	agent := startAgent(t, config)

	var (
		online, sawSnapshot, sawStats, zoneEntered bool
		detectState                                string
		last                                       = map[string][]byte{} // id → its latest after, as published
		news, ends                                 = map[string]string{}, map[string]bool{}
		counts                                     = map[string]string{} // topic → payloads
		motion                                     []string
		unknown                                    = map[string]bool{}
	)
	handle := func(m testenv.Message) {
		switch {
		case m.Topic == "frigate/available":
			online = string(m.Payload) == "online"
		case m.Topic == "frigate/events":
			var ev struct {
				Type          string `json:"type"`
				Before, After json.RawMessage
			}
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				t.Fatalf("event is not JSON: %v: %s", err, m.Payload)
			}
			before := checkFrigateObject(t, ev.Before, m.Payload)
			after := checkFrigateObject(t, ev.After, m.Payload)
			if before.ID != after.ID || before.FrameTime > after.FrameTime {
				t.Fatalf("before is not an earlier state of after: %s", m.Payload)
			}
			switch ev.Type {
			case "new":
				if _, dup := news[after.ID]; dup {
					t.Fatalf("second new for %s", after.ID)
				}
				news[after.ID] = after.Label
			case "update", "end":
				prev, ok := last[after.ID]
				if !ok {
					t.Fatalf("%s for %s without a new: %s", ev.Type, after.ID, m.Payload)
				}
				if !bytes.Equal(compactJSON(t, ev.Before), compactJSON(t, prev)) {
					t.Fatalf("%s: before is not the previous message's after:\nbefore %s\nprev   %s", ev.Type, ev.Before, prev)
				}
			default:
				t.Fatalf("unknown event type %q", ev.Type)
			}
			if (ev.Type == "end") != (after.EndTime != nil) {
				t.Fatalf("%s event with end_time %v: %s", ev.Type, after.EndTime, m.Payload)
			}
			if ev.Type == "end" {
				ends[after.ID] = true
				if *after.EndTime < after.StartTime {
					t.Fatalf("end_time before start_time: %s", m.Payload)
				}
			}
			// A typical Frigate automation: "the dog entered the lawn".
			if after.Label == "dog" && slices.Contains(after.EnteredZones, "lawn") && !slices.Contains(before.EnteredZones, "lawn") {
				if zoneEntered {
					t.Fatalf("the dog entered the lawn twice: %s", m.Payload)
				}
				zoneEntered = true
			}
			last[after.ID] = ev.After
		case m.Topic == "frigate/porch/motion":
			motion = append(motion, string(m.Payload))
		case strings.HasPrefix(m.Topic, "frigate/porch/") && strings.HasSuffix(m.Topic, "/snapshot"):
			if !bytes.HasPrefix(m.Payload, []byte{0xFF, 0xD8}) {
				t.Fatalf("%s is not a JPEG (%d bytes)", m.Topic, len(m.Payload))
			}
			sawSnapshot = sawSnapshot || m.Topic == "frigate/porch/dog/snapshot"
		case m.Topic == "frigate/porch/detect/state":
			detectState = string(m.Payload)
		case m.Topic == "frigate/stats":
			// Frigate's /api/stats shape.
			var st struct {
				Cameras map[string]struct {
					CameraFPS        float64 `json:"camera_fps"`
					DetectionEnabled *bool   `json:"detection_enabled"`
				} `json:"cameras"`
				Detectors map[string]struct {
					InferenceSpeed *float64 `json:"inference_speed"`
				} `json:"detectors"`
				Service struct {
					Uptime  *float64 `json:"uptime"`
					Version string   `json:"version"`
				} `json:"service"`
			}
			if err := json.Unmarshal(m.Payload, &st); err != nil {
				t.Fatalf("stats are not JSON: %v: %s", err, m.Payload)
			}
			if len(st.Detectors) != 1 || st.Service.Uptime == nil || st.Cameras["porch"].DetectionEnabled == nil {
				t.Fatalf("stats not in Frigate's shape: %s", m.Payload)
			}
			sawStats = sawStats || st.Cameras["porch"].CameraFPS > 0
		case strings.HasPrefix(m.Topic, "frigate/porch/") || strings.HasPrefix(m.Topic, "frigate/lawn/"):
			counts[m.Topic] += string(m.Payload) + " "
		default:
			unknown[m.Topic] = true
		}
	}
	wentTo := func(topic string, values ...string) bool {
		got := counts[topic]
		for _, v := range values {
			i := strings.Index(got, v+" ")
			if i < 0 {
				return false
			}
			got = got[i+len(v)+1:]
		}
		return true
	}
	waitFor(t, sub, 90*time.Second, "online, a dog's new, lawn entry and end, counts 1 then 0 incl. all and the lawn's, a snapshot, motion ON then OFF, detect ON, stats",
		func(m testenv.Message) bool {
			handle(m)
			dogEnded := false
			for id, l := range news {
				dogEnded = dogEnded || (l == "dog" && ends[id])
			}
			return online && dogEnded && zoneEntered && sawSnapshot && sawStats && detectState == "ON" &&
				wentTo("frigate/porch/dog", "1", "0") && wentTo("frigate/porch/all", "1", "0") &&
				wentTo("frigate/lawn/dog", "1", "0") && wentTo("frigate/lawn/all", "1", "0") &&
				slices.Contains(motion, "ON") && len(motion) > 0 && motion[len(motion)-1] == "OFF"
		})
	t.Logf("objects %d, motion %v, counts %v", len(news), motion, counts)
	if n := len(motion); n > 12 {
		t.Errorf("motion changed %d times in one pass of the clip: %v", n, motion)
	}
	for _, tp := range []string{"frigate/porch/dog/active", "frigate/porch/all/active", "frigate/lawn/all/active"} {
		if counts[tp] == "" {
			t.Errorf("nothing on %s", tp)
		}
	}
	for tp := range unknown {
		if tp != "frigate/porch/detections" && !strings.HasPrefix(tp, "frigate/porch/threshold/") {
			t.Errorf("unexpected topic %s", tp)
		}
	}

	// Counts and snapshots are retained for a late subscriber.
	late := testenv.Subscribe(t, broker.URL, "frigate/porch/all")
	waitFor(t, late, 10*time.Second, "retained frigate/porch/all", func(m testenv.Message) bool { return m.Retained })

	// detect/set, as Frigate's switch does it.
	testenv.Publish(t, broker.URL, "frigate/porch/detect/set", []byte("OFF"), false)
	waitFor(t, sub, 10*time.Second, "detect state OFF", func(m testenv.Message) bool {
		handle(m)
		return detectState == "OFF"
	})
	testenv.Publish(t, broker.URL, "frigate/porch/detect/set", []byte("ON"), false)
	waitFor(t, sub, 10*time.Second, "detect state ON", func(m testenv.Message) bool {
		handle(m)
		return detectState == "ON"
	})

	// A clean stop: every new has its end, motion is OFF and availability
	// is "stopped", Frigate's word for a normal stop.
	agent.stop(t, 20*time.Second)
	var avail string
	drain := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case m := <-sub:
			handle(m)
			if m.Topic == "frigate/available" {
				avail = string(m.Payload)
			}
		case <-drain:
			done = true
		}
	}
	if avail != "stopped" {
		t.Errorf("availability after a clean stop %q, want stopped", avail)
	}
	if motion[len(motion)-1] != "OFF" {
		t.Errorf("motion %v after the stop, want OFF last", motion)
	}
	for id, l := range news {
		if !ends[id] {
			t.Errorf("object %s (%s) got a new but no end", id, l)
		}
	}

	// Killed: the broker publishes the Last Will, "offline".
	again := startAgent(t, config)
	avails := testenv.Subscribe(t, broker.URL, "frigate/available")
	waitFor(t, avails, 30*time.Second, "online again", func(m testenv.Message) bool { return string(m.Payload) == "online" })
	again.cmd.Process.Signal(syscall.SIGKILL)
	waitFor(t, avails, 15*time.Second, "the Last Will offline", func(m testenv.Message) bool { return string(m.Payload) == "offline" })
}

// compactJSON is raw without insignificant white space.
func compactJSON(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(fmt.Errorf("compact %s: %w", raw, err))
	}
	return b.Bytes()
}
