package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

type eventMsg struct {
	Type   string     `json:"type"`
	Before *objectMsg `json:"before"`
	After  objectMsg  `json:"after"`
}

type objectMsg struct {
	ID        string     `json:"id"`
	Camera    string     `json:"camera"`
	Label     string     `json:"label"`
	Score     float64    `json:"score"`
	TopScore  float64    `json:"top_score"`
	Box       [4]float64 `json:"box"`
	BoxNorm   [4]float64 `json:"box_norm"`
	StartTime string     `json:"start_time"`
	EndTime   *string    `json:"end_time"`
	Model     string     `json:"model"`
	Precision string     `json:"precision"`
}

// TestRunEventsCountsSnapshotsControl runs the agent on a looping clip and
// checks the tracked-object topics a subscriber builds on: events with a
// new and an end per object, retained counts and snapshots, control and
// stats.
func TestRunEventsCountsSnapshotsControl(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "#")
	cams := "[events]\nmin_hits = 2\nmax_age = \"1s\"\n\n[snapshots]\nenabled = true\nheight = 240\n\n" +
		"[stats]\ninterval = \"1s\"\n\n[homeassistant]\nenabled = true\nlabels = [\"dog\"]\n\n" + clipCamera("porch", clip)
	agent := startAgent(t, agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), cams))

	start := time.Now()
	news := map[string]string{} // id → label
	ends := map[string]bool{}
	updates := map[string]int{}
	var sawDogCount1, sawDogCount0, sawSnapshot, sawDetectOn, sawStats, sawDiscovery bool
	handle := func(m testenv.Message) {
		switch {
		case m.Topic == "edgedet/e2e/porch/events":
			var ev eventMsg
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				t.Fatalf("event is not JSON: %v: %s", err, m.Payload)
			}
			a := ev.After
			if a.ID == "" || a.Camera != "porch" || a.Model != "yolox_nano_416" || a.Precision != "fp32" ||
				a.Box[2] <= a.Box[0] || a.BoxNorm[2] > 1 || a.TopScore < a.Score || a.StartTime == "" {
				t.Fatalf("bad event object: %s", m.Payload)
			}
			switch ev.Type {
			case "new":
				if ev.Before != nil {
					t.Fatalf("new event with a before state: %s", m.Payload)
				}
				if _, dup := news[a.ID]; dup {
					t.Fatalf("second new for %s", a.ID)
				}
				news[a.ID] = a.Label
			case "update":
				if ev.Before == nil || ev.Before.ID != a.ID {
					t.Fatalf("update without matching before: %s", m.Payload)
				}
				// Updates only on a score record or a real move: on a clip of
				// still images a handful per object, not one a frame (10 a
				// second). The dog of dog.jpg may live on as the dog of
				// person.jpg (max_age 1 s covers the horses between them):
				// a real move, twice per 3 s loop of the clip.
				allowed := 5 + int(time.Since(start).Seconds())
				if updates[a.ID]++; updates[a.ID] > allowed {
					t.Fatalf("object %s got %d updates in %v of still images", a.ID, updates[a.ID], time.Since(start))
				}
			case "end":
				if a.EndTime == nil {
					t.Fatalf("end event without end_time: %s", m.Payload)
				}
				if _, ok := news[a.ID]; !ok {
					t.Fatalf("end for %s without a new", a.ID)
				}
				ends[a.ID] = true
			default:
				t.Fatalf("unknown event type %q", ev.Type)
			}
		case m.Topic == "edgedet/e2e/porch/dog":
			sawDogCount1 = sawDogCount1 || string(m.Payload) == "1"
			sawDogCount0 = sawDogCount0 || (sawDogCount1 && string(m.Payload) == "0")
		case m.Topic == "edgedet/e2e/porch/dog/snapshot":
			if !bytes.HasPrefix(m.Payload, []byte{0xFF, 0xD8}) {
				t.Fatalf("snapshot is not a JPEG (%d bytes)", len(m.Payload))
			}
			sawSnapshot = true
		case m.Topic == "edgedet/e2e/porch/detect/state":
			sawDetectOn = sawDetectOn || string(m.Payload) == "ON"
		case m.Topic == "homeassistant/sensor/edgedet_e2e/porch_dog_count/config":
			var d struct {
				StateTopic string `json:"state_topic"`
				UniqueID   string `json:"unique_id"`
			}
			if err := json.Unmarshal(m.Payload, &d); err != nil || d.StateTopic != "edgedet/e2e/porch/dog" {
				t.Fatalf("discovery config: %s (%v)", m.Payload, err)
			}
			sawDiscovery = true
		case m.Topic == "edgedet/e2e/stats":
			var st struct {
				Cameras map[string]struct {
					CameraFPS float64 `json:"camera_fps"`
				} `json:"cameras"`
			}
			if err := json.Unmarshal(m.Payload, &st); err != nil {
				t.Fatalf("stats are not JSON: %v: %s", err, m.Payload)
			}
			sawStats = sawStats || st.Cameras["porch"].CameraFPS > 0
		}
	}
	waitFor(t, sub, 90*time.Second, "a dog's new and end, counts 1 then 0, a snapshot, detect state ON, stats, discovery", func(m testenv.Message) bool {
		handle(m)
		dogEnded := false
		for id, l := range news {
			if l == "dog" && ends[id] {
				dogEnded = true
			}
		}
		return dogEnded && sawDogCount1 && sawDogCount0 && sawSnapshot && sawDetectOn && sawStats && sawDiscovery
	})

	// Counts, snapshots, states and discovery are retained for late subscribers.
	late := testenv.Subscribe(t, broker.URL, "homeassistant/sensor/edgedet_e2e/porch_dog_count/config")
	waitFor(t, late, 10*time.Second, "retained discovery config", func(m testenv.Message) bool { return m.Retained })
	late = testenv.Subscribe(t, broker.URL, "edgedet/e2e/porch/dog/snapshot")
	waitFor(t, late, 10*time.Second, "retained snapshot", func(m testenv.Message) bool { return m.Retained })

	// Control: an invalid payload is rejected and changes nothing; OFF turns detection off.
	testenv.Publish(t, broker.URL, "edgedet/e2e/porch/detect/set", []byte("maybe"), false)
	testenv.Eventually(t, 10*time.Second, "the rejected control message logged", func() bool {
		return strings.Contains(agent.stderr.String(), "control message rejected")
	})
	testenv.Publish(t, broker.URL, "edgedet/e2e/porch/detect/set", []byte("OFF"), false)
	waitFor(t, sub, 10*time.Second, "detect state OFF", func(m testenv.Message) bool {
		handle(m)
		return m.Topic == "edgedet/e2e/porch/detect/state" && string(m.Payload) == "OFF"
	})
	// Detection really stops: a stats interval with no processed frames.
	waitFor(t, sub, 10*time.Second, "stats with detection off and nothing processed", func(m testenv.Message) bool {
		handle(m)
		if m.Topic != "edgedet/e2e/stats" {
			return false
		}
		var st struct {
			Cameras map[string]struct {
				Detect     bool    `json:"detect"`
				ProcessFPS float64 `json:"process_fps"`
				CameraFPS  float64 `json:"camera_fps"`
			} `json:"cameras"`
		}
		json.Unmarshal(m.Payload, &st)
		c := st.Cameras["porch"]
		return !c.Detect && c.ProcessFPS == 0 && c.CameraFPS > 0
	})
	testenv.Publish(t, broker.URL, "edgedet/e2e/porch/detect/set", []byte("ON"), false)
	waitFor(t, sub, 10*time.Second, "detect state ON again", func(m testenv.Message) bool {
		handle(m)
		return m.Topic == "edgedet/e2e/porch/detect/state" && string(m.Payload) == "ON"
	})

	// A clean stop ends every object still in view: each new has its end.
	agent.stop(t, 20*time.Second)
	drain := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case m := <-sub:
			handle(m)
		case <-drain:
			done = true
		}
	}
	for id, l := range news {
		if !ends[id] {
			t.Errorf("object %s (%s) got a new but no end", id, l)
		}
	}
}
