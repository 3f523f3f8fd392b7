package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/internal/testenv"
)

// haPayload is the part of a discovery payload the test acts on.
type haPayload struct {
	UniqueID     string  `json:"unique_id"`
	StateTopic   string  `json:"state_topic"`
	CommandTopic string  `json:"command_topic"`
	ImageTopic   string  `json:"image_topic"`
	PayloadOff   string  `json:"payload_off"`
	StateOff     string  `json:"state_off"`
	Max          float64 `json:"max"`
	Device       struct {
		ConfigurationURL string `json:"configuration_url"`
	} `json:"device"`
	Origin struct {
		Name string `json:"name"`
	} `json:"origin"`
}

// TestHomeAssistantDiscovery runs the agent (fake detector, two looping
// cameras, one with a zone, one with motion detection) against a real
// Mosquitto that holds a retained config of a label an earlier config had:
// every discovery config arrives retained, the stale one is cleared, the
// state and image topics the configs name carry data, and Home Assistant's
// side of the switch and the number works: publishing the switch's
// payload_off on its command topic turns detection off (its state topic
// says state_off, and frames are skipped, none processed), a value on the
// number's command topic sets the threshold.
func TestHomeAssistantDiscovery(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	clip := dogClip(t, 10)
	cfg := runConfig(t, clip, mq.URL, "", fmt.Sprintf(`loop = true
realtime = true

[[camera.zone]]
name = "yard"
points = [[0,0],[320,0],[320,240],[0,240]]
inertia = 1

[[camera]]
name = "side"
source = %q
loop = true
realtime = true

[camera.motion]
enabled = true

[events]
min_hits = 1

[snapshots]
enabled = true

[homeassistant]
enabled = true
labels = ["giraffe"]
configuration_url = "http://edgedet.test:9464/"
`, clip))
	topics := cfg.MQTT.Topics()
	node := report.DiscoveryNode(topics)

	// What an earlier run with label "dog" left, and another device's config.
	stale := "homeassistant/sensor/" + node + "/front_dog_count/config"
	foreign := "homeassistant/sensor/other_device/front_dog_count/config"
	testenv.Publish(t, mq.URL, stale, []byte(`{"name":"front dog count"}`), true)
	testenv.Publish(t, mq.URL, foreign, []byte(`{"name":"someone else's"}`), true)

	all := testenv.Subscribe(t, mq.URL, "homeassistant/#")
	data := testenv.Subscribe(t, mq.URL, topics.Prefix+"/"+topics.Device+"/#")
	fake := newFakeDetector(giraffe)
	var logs testenv.Buffer
	a, err := newAgent(cfg, fake, slog.New(slog.NewTextHandler(io.MultiWriter(&logs), nil)))
	if err != nil {
		t.Fatal(err)
	}
	a.Version = "9.8.7"
	want := report.Discovery(cfg.HomeAssistant, topics, a.discoverySource(), time.Time{})
	if len(want) != 13 { // 2 × (switch, number, count, occupancy, image) + yard count, occupancy + side motion
		t.Fatalf("the config announces %d entities, want 13", len(want))
	}
	wantTopics := map[string]bool{}
	for _, m := range want {
		wantTopics[m.Topic] = true
	}
	startAgent(t, a)

	// Every config arrives (non-empty) and the stale one is cleared.
	configs := map[string]haPayload{}
	cleared := false
	testenv.Eventually(t, runLimit, "every discovery config and the stale one cleared", func() bool {
		for {
			select {
			case m := <-all:
				switch {
				case m.Topic == stale && len(m.Payload) == 0:
					cleared = true
				case m.Topic == foreign && len(m.Payload) == 0:
					t.Errorf("another device's config %s was cleared", foreign)
				case wantTopics[m.Topic] && len(m.Payload) > 0:
					var p haPayload
					if err := json.Unmarshal(m.Payload, &p); err != nil {
						t.Fatalf("%s: %v: %s", m.Topic, err, m.Payload)
					}
					configs[m.Topic] = p
				}
			default:
				return cleared && len(configs) == len(wantTopics)
			}
		}
	})
	if !strings.Contains(logs.String(), "removing an entity no longer configured") {
		t.Error("the cleared stale config was not logged")
	}
	for tp, p := range configs {
		if p.Device.ConfigurationURL != "http://edgedet.test:9464/" || p.Origin.Name != "edgedet" || !strings.HasPrefix(p.UniqueID, node+"_") {
			t.Errorf("%s: configuration_url %q origin %q unique_id %q", tp, p.Device.ConfigurationURL, p.Origin.Name, p.UniqueID)
		}
	}

	// A late subscriber (Home Assistant starting) gets them all retained.
	late := testenv.Subscribe(t, mq.URL, report.DiscoveryFilter(cfg.HomeAssistant, topics))
	retained := map[string]bool{}
	testenv.Eventually(t, runLimit, "every discovery config retained", func() bool {
		for {
			select {
			case m := <-late:
				if m.Retained && len(m.Payload) > 0 {
					if !wantTopics[m.Topic] {
						t.Errorf("retained config %s is not announced by this config", m.Topic)
					}
					retained[m.Topic] = true
				}
			default:
				return len(retained) == len(wantTopics)
			}
		}
	})

	// The state and image topics the front camera's configs name carry
	// data. (The side camera's detector is gated on motion, and its still
	// clip has none.)
	pending := map[string]bool{}
	for _, p := range configs {
		for _, tp := range []string{p.StateTopic, p.ImageTopic} {
			if strings.HasPrefix(tp, topics.Prefix+"/"+topics.Device+"/front/") {
				pending[tp] = true
			}
		}
	}
	if len(pending) != 5 { // detect, threshold, count (occupancy shares it), snapshot, yard count
		t.Errorf("front's configs name %d state and image topics, want 5: %v", len(pending), pending)
	}
	t.Cleanup(func() {
		if len(pending) > 0 {
			t.Logf("no data on %q", slices.Sorted(maps.Keys(pending)))
		}
	})
	var got []string
	testenv.Eventually(t, runLimit, "data on every state and image topic of front", func() bool {
		for {
			select {
			case m := <-data:
				if pending[m.Topic] {
					if m.Topic == topics.Snapshot("front", "giraffe") && !bytes.HasPrefix(m.Payload, []byte{0xff, 0xd8}) {
						t.Errorf("%s: not a JPEG", m.Topic)
					}
					delete(pending, m.Topic)
					got = append(got, m.Topic)
				}
			default:
				return len(pending) == 0
			}
		}
	})
	slices.Sort(got)
	t.Logf("data seen on %q", got)

	// Home Assistant turns detection off with the switch.
	sw := configs["homeassistant/switch/"+node+"/front_detect/config"]
	if sw.CommandTopic == "" || sw.PayloadOff == "" || sw.StateOff == "" {
		t.Fatalf("front detect switch: %+v", sw)
	}
	states := testenv.Subscribe(t, mq.URL, sw.StateTopic)
	testenv.Publish(t, mq.URL, sw.CommandTopic, []byte(sw.PayloadOff), false)
	waitMessage(t, states, sw.StateTopic, sw.StateOff)
	front := func() CameraTotals {
		for _, c := range a.Totals() {
			if c.Name == "front" {
				return c
			}
		}
		t.Fatal("no totals for front")
		return CameraTotals{}
	}
	off := front()
	testenv.Eventually(t, runLimit, "frames skipped, none processed, with detection off", func() bool {
		now := front()
		// One frame may have been in the detector when the switch flipped.
		if now.Processed > off.Processed+1 {
			t.Fatalf("processed %d → %d frames with detection off", off.Processed, now.Processed)
		}
		return now.Skipped >= off.Skipped+5
	})

	// And sets the threshold with the number.
	num := configs["homeassistant/number/"+node+"/front_threshold/config"]
	th := testenv.Subscribe(t, mq.URL, num.StateTopic)
	testenv.Publish(t, mq.URL, num.CommandTopic, []byte("0.55"), false)
	waitMessage(t, th, num.StateTopic, "0.55")
	if num.Max != 1 {
		t.Errorf("number max %g, want 1", num.Max)
	}

	// Another device's retained config is untouched.
	other := testenv.Subscribe(t, mq.URL, foreign)
	waitMessage(t, other, foreign, `{"name":"someone else's"}`)
}
