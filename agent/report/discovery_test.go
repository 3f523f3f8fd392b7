package report

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/agent/topic"
)

// testAvail is the availability topic of testTopics.
const testAvail = "edgedet/pi5/available"

// haConfig mirrors a discovery payload; pointers tell absent from empty.
type haConfig struct {
	Name              *string `json:"name"`
	UniqueID          *string `json:"unique_id"`
	StateTopic        *string `json:"state_topic"`
	ValueTemplate     *string `json:"value_template"`
	UnitOfMeasurement *string `json:"unit_of_measurement"`
	StateClass        *string `json:"state_class"`
	DeviceClass       *string `json:"device_class"`
	PayloadOn         *string `json:"payload_on"`
	PayloadOff        *string `json:"payload_off"`
	QoS               *int    `json:"qos"`
	AvailabilityTopic *string `json:"availability_topic"`
	Availability      []struct {
		Topic               string `json:"topic"`
		PayloadAvailable    string `json:"payload_available"`
		PayloadNotAvailable string `json:"payload_not_available"`
		ValueTemplate       string `json:"value_template"`
	} `json:"availability"`
	Device *struct {
		Identifiers  []string `json:"identifiers"`
		Name         string   `json:"name"`
		Manufacturer string   `json:"manufacturer"`
		Model        string   `json:"model"`
		SWVersion    string   `json:"sw_version"`
	} `json:"device"`
}

// knownKeys are the discovery keys the payloads may use.
var knownKeys = map[string]bool{
	"name": true, "unique_id": true, "state_topic": true, "value_template": true,
	"unit_of_measurement": true, "state_class": true, "device_class": true,
	"payload_on": true, "payload_off": true, "icon": true, "qos": true,
	"availability": true, "availability_mode": true, "device": true,
}

func str(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

func TestDiscovery(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true, Labels: []string{"person", "traffic light"}}
	msgs := Discovery(cfg, testTopics, "1.2.3", []string{"front", "back"}, t0)

	type want struct {
		topic, uniqueID, state string
		binary                 bool
	}
	wants := []want{
		{"homeassistant/sensor/edgedet_pi5/front_person_count/config", "edgedet_pi5_front_person_count", "edgedet/pi5/front/person", false},
		{"homeassistant/binary_sensor/edgedet_pi5/front_person_occupancy/config", "edgedet_pi5_front_person_occupancy", "edgedet/pi5/front/person", true},
		{"homeassistant/sensor/edgedet_pi5/front_traffic_light_count/config", "edgedet_pi5_front_traffic_light_count", "edgedet/pi5/front/traffic light", false},
		{"homeassistant/binary_sensor/edgedet_pi5/front_traffic_light_occupancy/config", "edgedet_pi5_front_traffic_light_occupancy", "edgedet/pi5/front/traffic light", true},
		{"homeassistant/sensor/edgedet_pi5/back_person_count/config", "edgedet_pi5_back_person_count", "edgedet/pi5/back/person", false},
		{"homeassistant/binary_sensor/edgedet_pi5/back_person_occupancy/config", "edgedet_pi5_back_person_occupancy", "edgedet/pi5/back/person", true},
		{"homeassistant/sensor/edgedet_pi5/back_traffic_light_count/config", "edgedet_pi5_back_traffic_light_count", "edgedet/pi5/back/traffic light", false},
		{"homeassistant/binary_sensor/edgedet_pi5/back_traffic_light_occupancy/config", "edgedet_pi5_back_traffic_light_occupancy", "edgedet/pi5/back/traffic light", true},
	}
	if len(msgs) != len(wants) {
		t.Fatalf("got %d messages, want %d: %s", len(msgs), len(wants), summary(msgs))
	}
	ids := map[string]string{}
	topics := map[string]bool{}
	for i, m := range msgs {
		w := wants[i]
		if m.Topic != w.topic {
			t.Errorf("message %d: topic %q, want %q", i, m.Topic, w.topic)
		}
		if !m.Retained || m.QoS != 1 || !m.Time.Equal(t0) {
			t.Errorf("%s: retained %v qos %d time %v, want retained QoS 1 at %v", m.Topic, m.Retained, m.QoS, m.Time, t0)
		}
		if topics[m.Topic] {
			t.Errorf("%s: duplicate topic", m.Topic)
		}
		topics[m.Topic] = true

		var raw map[string]json.RawMessage
		if err := json.Unmarshal(m.Payload, &raw); err != nil {
			t.Fatalf("%s: payload is not a JSON object: %v\n%s", m.Topic, err, m.Payload)
		}
		for k := range raw {
			if !knownKeys[k] {
				t.Errorf("%s: unexpected key %q", m.Topic, k)
			}
		}
		var c haConfig
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}

		if got := str(c.UniqueID); got != w.uniqueID {
			t.Errorf("%s: unique_id %q, want %q", m.Topic, got, w.uniqueID)
		}
		if prev, ok := ids[str(c.UniqueID)]; ok {
			t.Errorf("%s: unique_id %q already used by %s", m.Topic, str(c.UniqueID), prev)
		}
		ids[str(c.UniqueID)] = m.Topic
		if got := str(c.StateTopic); got != w.state {
			t.Errorf("%s: state_topic %q, want %q", m.Topic, got, w.state)
		}
		if c.Name == nil || *c.Name == "" {
			t.Errorf("%s: no name", m.Topic)
		}
		if c.QoS == nil || *c.QoS != 1 {
			t.Errorf("%s: qos %v, want 1", m.Topic, c.QoS)
		}

		// Availability: one entry on the agent's topic, "online" only.
		if c.AvailabilityTopic != nil {
			t.Errorf("%s: both availability and availability_topic set", m.Topic)
		}
		if len(c.Availability) != 1 {
			t.Fatalf("%s: %d availability entries, want 1", m.Topic, len(c.Availability))
		}
		a := c.Availability[0]
		if a.Topic != testAvail || a.PayloadAvailable != "online" || a.PayloadNotAvailable != "offline" {
			t.Errorf("%s: availability %+v", m.Topic, a)
		}
		for _, frag := range []string{"value", "'online'", "else 'offline'"} {
			if !strings.Contains(a.ValueTemplate, frag) {
				t.Errorf("%s: availability value_template %q lacks %q (must map stopped/offline to offline)", m.Topic, a.ValueTemplate, frag)
			}
		}

		// Device block: the same for every entity.
		d := c.Device
		if d == nil {
			t.Fatalf("%s: no device", m.Topic)
		}
		if !slices.Equal(d.Identifiers, []string{"edgedet_pi5"}) || d.Name != "edgedet pi5" ||
			d.Manufacturer != "edgedet" || d.Model != "edgedet" || d.SWVersion != "1.2.3" {
			t.Errorf("%s: device %+v", m.Topic, *d)
		}

		if w.binary {
			if got := str(c.DeviceClass); got != "occupancy" {
				t.Errorf("%s: device_class %q, want occupancy", m.Topic, got)
			}
			if str(c.PayloadOn) != "ON" || str(c.PayloadOff) != "OFF" {
				t.Errorf("%s: payload_on %q payload_off %q, want ON/OFF", m.Topic, str(c.PayloadOn), str(c.PayloadOff))
			}
			vt := str(c.ValueTemplate)
			for _, frag := range []string{"value", "> 0", "'ON'", "'OFF'"} {
				if !strings.Contains(vt, frag) {
					t.Errorf("%s: value_template %q lacks %q", m.Topic, vt, frag)
				}
			}
			for _, k := range []string{"unit_of_measurement", "state_class"} {
				if _, ok := raw[k]; ok {
					t.Errorf("%s: binary_sensor has %s", m.Topic, k)
				}
			}
		} else {
			if str(c.UnitOfMeasurement) != "objects" || str(c.StateClass) != "measurement" {
				t.Errorf("%s: unit %q state_class %q, want objects/measurement", m.Topic, str(c.UnitOfMeasurement), str(c.StateClass))
			}
			for _, k := range []string{"device_class", "payload_on", "payload_off", "value_template"} {
				if _, ok := raw[k]; ok {
					t.Errorf("%s: sensor has %s", m.Topic, k)
				}
			}
		}
		// HA requires [a-zA-Z0-9_-] in node_id and object_id.
		levels := strings.Split(m.Topic, "/")
		for _, l := range levels[2:4] {
			if strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Errorf("%s: topic level %q not [a-z0-9_]", m.Topic, l)
			}
		}
	}
	// The state topic really is the one Counts publishes on.
	c := NewCounts(testTopics, "front")
	if got := c.Update(map[string]int{"traffic light": 2}, t0); len(got) != 1 || got[0].Topic != "edgedet/pi5/front/traffic light" {
		t.Errorf("Counts topic %s does not match the discovery state_topic", summary(got))
	}
	// And the payload keeps the template readable ("> 0", not "\u003e 0").
	if !strings.Contains(string(msgs[1].Payload), "> 0") {
		t.Errorf("payload escapes the template: %s", msgs[1].Payload)
	}
}

func TestDiscoveryStable(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true}
	a := Discovery(cfg, testTopics, "1.0.0", []string{"front"}, t0)
	b := Discovery(cfg, testTopics, "1.0.1", []string{"front"}, t0.Add(1e9))
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("got %d and %d messages, want 2 (default label person)", len(a), len(b))
	}
	for i := range a {
		var ca, cb haConfig
		if err := json.Unmarshal(a[i].Payload, &ca); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b[i].Payload, &cb); err != nil {
			t.Fatal(err)
		}
		if a[i].Topic != b[i].Topic || str(ca.UniqueID) != str(cb.UniqueID) {
			t.Errorf("restart changed %s/%s to %s/%s", a[i].Topic, str(ca.UniqueID), b[i].Topic, str(cb.UniqueID))
		}
		if !strings.Contains(str(ca.UniqueID), "_person_") {
			t.Errorf("default label: unique_id %q", str(ca.UniqueID))
		}
	}
}

func TestDiscoveryDisabledAndEdgeCases(t *testing.T) {
	if got := Discovery(DiscoveryConfig{Labels: []string{"dog"}}, testTopics, "v", []string{"front"}, t0); got != nil {
		t.Errorf("disabled: got %s", summary(got))
	}
	if got := Discovery(DiscoveryConfig{Enabled: true}, testTopics, "v", nil, t0); len(got) != 0 {
		t.Errorf("no cameras: got %s", summary(got))
	}
	// Custom prefix; labels whose IDs collide, and blank ones, are skipped.
	cfg := DiscoveryConfig{Enabled: true, Prefix: "ha/disc", Labels: []string{"Traffic Light", "traffic_light", " ", "person", "person"}}
	msgs := Discovery(cfg, topic.Tree{Prefix: "edgedet", Device: "Pi-5"}, "v", []string{"Front Door", "front_door"}, t0)
	var got []string
	ids := map[string]bool{}
	for _, m := range msgs {
		got = append(got, m.Topic)
		var c haConfig
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			t.Fatal(err)
		}
		if ids[str(c.UniqueID)] {
			t.Errorf("duplicate unique_id %q", str(c.UniqueID))
		}
		ids[str(c.UniqueID)] = true
		if c.Device == nil || c.Device.Name != "edgedet Pi-5" || !slices.Equal(c.Device.Identifiers, []string{"edgedet_pi_5"}) {
			t.Errorf("%s: device %+v", m.Topic, c.Device)
		}
	}
	want := []string{
		"ha/disc/sensor/edgedet_pi_5/front_door_traffic_light_count/config",
		"ha/disc/binary_sensor/edgedet_pi_5/front_door_traffic_light_occupancy/config",
		"ha/disc/sensor/edgedet_pi_5/front_door_person_count/config",
		"ha/disc/binary_sensor/edgedet_pi_5/front_door_person_occupancy/config",
	}
	if !slices.Equal(got, want) {
		t.Errorf("topics\n got %q\nwant %q", got, want)
	}
	if len(msgs) > 0 {
		var c haConfig
		_ = json.Unmarshal(msgs[0].Payload, &c)
		if str(c.StateTopic) != "edgedet/Pi-5/Front Door/Traffic Light" || str(c.UniqueID) != "edgedet_pi_5_front_door_traffic_light_count" {
			t.Errorf("state_topic %q unique_id %q", str(c.StateTopic), str(c.UniqueID))
		}
	}
}

func TestEntityID(t *testing.T) {
	cases := map[string]string{
		"person":        "person",
		"traffic light": "traffic_light",
		"Traffic Light": "traffic_light",
		"a/b+c#d":       "a_b_c_d",
		"hair  drier":   "hair_drier",
		"café":          "caf_",
		"":              "_",
		"cell phone 2":  "cell_phone_2",
	}
	for in, want := range cases {
		if got := EntityID(in); got != want {
			t.Errorf("EntityID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDiscoveryDefaults(t *testing.T) {
	d := DiscoveryConfig{}.WithDefaults()
	if d.Enabled || d.Prefix != "homeassistant" || !slices.Equal(d.Labels, []string{"person"}) {
		t.Errorf("defaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	labels := []string{"dog"}
	c := DiscoveryConfig{Enabled: true, Prefix: "ha", Labels: labels}.WithDefaults()
	if c.Prefix != "ha" || !slices.Equal(c.Labels, []string{"dog"}) || !c.Enabled {
		t.Errorf("explicit values changed: %+v", c)
	}
	c.Labels[0] = "cat"
	if labels[0] != "dog" {
		t.Errorf("WithDefaults shares Labels with its receiver")
	}
}

func TestDiscoveryValidate(t *testing.T) {
	ok := []DiscoveryConfig{
		{Prefix: "homeassistant", Labels: []string{"person"}},
		{Prefix: "home/assistant", Labels: []string{"person", "traffic light", "café"}},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []struct {
		cfg   DiscoveryConfig
		wants []string // fragments the error must contain: key and value
	}{
		{DiscoveryConfig{Prefix: "", Labels: []string{"person"}}, []string{"homeassistant.prefix", `""`}},
		{DiscoveryConfig{Prefix: "home/+", Labels: []string{"person"}}, []string{"homeassistant.prefix", `"home/+"`}},
		{DiscoveryConfig{Prefix: "ha#", Labels: []string{"person"}}, []string{"homeassistant.prefix", `"ha#"`}},
		{DiscoveryConfig{Prefix: "/ha", Labels: []string{"person"}}, []string{"homeassistant.prefix", `"/ha"`}},
		{DiscoveryConfig{Prefix: "ha/", Labels: []string{"person"}}, []string{"homeassistant.prefix", `"ha/"`}},
		{DiscoveryConfig{Prefix: "a//b", Labels: []string{"person"}}, []string{"homeassistant.prefix", `"a//b"`}},
		{DiscoveryConfig{Prefix: "a\x00b", Labels: []string{"person"}}, []string{"homeassistant.prefix"}},
		{DiscoveryConfig{Prefix: "ha"}, []string{"homeassistant.labels", "empty"}},
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"person", ""}}, []string{"homeassistant.labels[1]", `""`}},
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"  "}}, []string{"homeassistant.labels[0]", `"  "`}},
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"traffic light", "Traffic_Light"}}, []string{"homeassistant.labels[1]", `"Traffic_Light"`, `"traffic light"`}},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: no error", b.cfg)
			continue
		}
		for _, w := range b.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", b.cfg, err, w)
			}
		}
	}
	// Every problem is reported, not just the first.
	err := DiscoveryConfig{Prefix: "#", Labels: []string{""}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "homeassistant.prefix") || !strings.Contains(err.Error(), "homeassistant.labels[0]") {
		t.Errorf("joined errors: %v", err)
	}
}
