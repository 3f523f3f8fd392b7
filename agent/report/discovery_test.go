package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/zone"
)

// testAvail is the availability topic of testTopics.
const testAvail = "edgedet/pi5/available"

// haSchema is what Home Assistant's MQTT discovery documents for one
// component (home-assistant.io/integrations/<component>.mqtt): the keys it
// requires (oneOf: exactly one of them) and every key it accepts, besides
// the common ones. Written from the documentation, not from Discovery.
type haSchema struct {
	required []string
	oneOf    []string
	allowed  []string
}

var haSchemas = map[string]haSchema{
	"sensor": {
		required: []string{"state_topic"},
		allowed: []string{"state_topic", "value_template", "unit_of_measurement", "state_class", "device_class",
			"expire_after", "force_update", "suggested_display_precision", "last_reset_value_template"},
	},
	"binary_sensor": {
		required: []string{"state_topic"},
		allowed: []string{"state_topic", "value_template", "device_class", "payload_on", "payload_off",
			"expire_after", "force_update", "off_delay"},
	},
	"switch": {
		required: []string{"command_topic"},
		allowed: []string{"command_topic", "state_topic", "payload_on", "payload_off", "state_on", "state_off",
			"optimistic", "retain", "value_template", "command_template", "device_class"},
	},
	"number": {
		required: []string{"command_topic"},
		allowed: []string{"command_topic", "state_topic", "min", "max", "step", "mode", "optimistic", "retain",
			"value_template", "command_template", "unit_of_measurement", "device_class", "payload_reset"},
	},
	"image": {
		oneOf:   []string{"image_topic", "url_topic"},
		allowed: []string{"image_topic", "url_topic", "content_type", "image_encoding", "url_template"},
	},
}

// haCommonKeys are accepted by every component.
var haCommonKeys = []string{"name", "unique_id", "icon", "qos", "availability", "availability_mode",
	"availability_topic", "device", "origin", "entity_category", "enabled_by_default", "object_id",
	"json_attributes_topic", "json_attributes_template", "encoding"}

// haConfig mirrors a discovery payload; pointers tell absent from empty.
type haConfig struct {
	Name              *string  `json:"name"`
	UniqueID          *string  `json:"unique_id"`
	StateTopic        *string  `json:"state_topic"`
	CommandTopic      *string  `json:"command_topic"`
	ImageTopic        *string  `json:"image_topic"`
	ContentType       *string  `json:"content_type"`
	ValueTemplate     *string  `json:"value_template"`
	UnitOfMeasurement *string  `json:"unit_of_measurement"`
	StateClass        *string  `json:"state_class"`
	DeviceClass       *string  `json:"device_class"`
	EntityCategory    *string  `json:"entity_category"`
	PayloadOn         *string  `json:"payload_on"`
	PayloadOff        *string  `json:"payload_off"`
	StateOn           *string  `json:"state_on"`
	StateOff          *string  `json:"state_off"`
	Min               *float64 `json:"min"`
	Max               *float64 `json:"max"`
	Step              *float64 `json:"step"`
	Mode              *string  `json:"mode"`
	QoS               *int     `json:"qos"`
	AvailabilityMode  *string  `json:"availability_mode"`
	Availability      []struct {
		Topic               string `json:"topic"`
		PayloadAvailable    string `json:"payload_available"`
		PayloadNotAvailable string `json:"payload_not_available"`
		ValueTemplate       string `json:"value_template"`
	} `json:"availability"`
	Device *struct {
		Identifiers      []string `json:"identifiers"`
		Name             string   `json:"name"`
		Manufacturer     string   `json:"manufacturer"`
		Model            string   `json:"model"`
		SWVersion        string   `json:"sw_version"`
		ConfigurationURL *string  `json:"configuration_url"`
	} `json:"device"`
	Origin *struct {
		Name       *string `json:"name"`
		SWVersion  string  `json:"sw_version"`
		SupportURL string  `json:"support_url"`
	} `json:"origin"`
}

func str(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

// entity is one decoded discovery message.
type entity struct {
	topic, component, object string
	raw                      map[string]json.RawMessage
	c                        haConfig
}

// decode checks the message's envelope and splits its topic
// <prefix>/<component>/<node>/<object>/config.
func decode(t *testing.T, prefix string, m publish.Message) entity {
	t.Helper()
	if !m.Retained || m.QoS != 1 || !m.Time.Equal(t0) {
		t.Errorf("%s: retained %v qos %d time %v, want retained QoS 1 at %v", m.Topic, m.Retained, m.QoS, m.Time, t0)
	}
	rest, ok := strings.CutPrefix(m.Topic, prefix+"/")
	levels := strings.Split(rest, "/")
	if !ok || len(levels) != 4 || levels[3] != "config" {
		t.Fatalf("topic %q is not %s/<component>/<node>/<object>/config", m.Topic, prefix)
	}
	// HA requires [a-zA-Z0-9_-] in node_id and object_id.
	for _, l := range levels[1:3] {
		if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("%s: topic level %q not [a-z0-9_]", m.Topic, l)
		}
	}
	e := entity{topic: m.Topic, component: levels[0], object: levels[2]}
	if err := json.Unmarshal(m.Payload, &e.raw); err != nil {
		t.Fatalf("%s: payload is not a JSON object: %v\n%s", m.Topic, err, m.Payload)
	}
	if err := json.Unmarshal(m.Payload, &e.c); err != nil {
		t.Fatalf("%s: %v\n%s", m.Topic, err, m.Payload)
	}
	return e
}

// checkSchema checks e against Home Assistant's documented schema of its
// component and the rules every discovery payload of the agent follows:
// availability on the agent's topic, the device block, the origin.
func checkSchema(t *testing.T, e entity, version, configURL string) {
	t.Helper()
	s, ok := haSchemas[e.component]
	if !ok {
		t.Fatalf("%s: component %q has no documented schema here", e.topic, e.component)
	}
	for _, k := range s.required {
		var v string
		if json.Unmarshal(e.raw[k], &v) != nil || v == "" {
			t.Errorf("%s: required %s missing or not a non-empty string: %s", e.topic, k, e.raw[k])
		}
	}
	if len(s.oneOf) > 0 {
		n := 0
		for _, k := range s.oneOf {
			if _, ok := e.raw[k]; ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d of %v set, HA wants exactly one", e.topic, n, s.oneOf)
		}
	}
	for k := range e.raw {
		if !slices.Contains(s.allowed, k) && !slices.Contains(haCommonKeys, k) {
			t.Errorf("%s: key %q is not in HA's %s schema", e.topic, k, e.component)
		}
	}
	c := e.c
	if c.Name == nil || *c.Name == "" {
		t.Errorf("%s: no name", e.topic)
	}
	if want := "edgedet_pi5_" + e.object; str(c.UniqueID) != want {
		t.Errorf("%s: unique_id %q, want %q", e.topic, str(c.UniqueID), want)
	}
	if c.QoS == nil || *c.QoS != 1 {
		t.Errorf("%s: qos %v, want 1", e.topic, c.QoS)
	}
	if c.EntityCategory != nil && *c.EntityCategory != "config" && *c.EntityCategory != "diagnostic" {
		t.Errorf("%s: entity_category %q", e.topic, *c.EntityCategory)
	}

	// Availability: one entry on the agent's topic, "online" only.
	if str(c.AvailabilityMode) != "latest" {
		t.Errorf("%s: availability_mode %q", e.topic, str(c.AvailabilityMode))
	}
	if len(c.Availability) != 1 {
		t.Fatalf("%s: %d availability entries, want 1", e.topic, len(c.Availability))
	}
	a := c.Availability[0]
	if a.Topic != testAvail || a.PayloadAvailable != "online" || a.PayloadNotAvailable != "offline" {
		t.Errorf("%s: availability %+v", e.topic, a)
	}
	for _, frag := range []string{"value", "'online'", "else 'offline'"} {
		if !strings.Contains(a.ValueTemplate, frag) {
			t.Errorf("%s: availability value_template %q lacks %q (must map stopped/offline to offline)", e.topic, a.ValueTemplate, frag)
		}
	}

	// Device block: the same for every entity; HA needs an identifier.
	d := c.Device
	if d == nil {
		t.Fatalf("%s: no device", e.topic)
	}
	if !slices.Equal(d.Identifiers, []string{"edgedet_pi5"}) || d.Name != "edgedet pi5" ||
		d.Manufacturer != "edgedet" || d.Model != "edgedet" || d.SWVersion != version {
		t.Errorf("%s: device %+v", e.topic, *d)
	}
	if configURL == "" {
		if d.ConfigurationURL != nil {
			t.Errorf("%s: configuration_url %q, want none", e.topic, *d.ConfigurationURL)
		}
	} else if str(d.ConfigurationURL) != configURL || checkConfigurationURL(configURL) != nil {
		t.Errorf("%s: configuration_url %q, want %q (an URL HA accepts)", e.topic, str(d.ConfigurationURL), configURL)
	}

	// Origin: HA requires its name.
	o := c.Origin
	if o == nil || str(o.Name) != "edgedet" || o.SWVersion != version || o.SupportURL != SupportURL ||
		checkConfigurationURL(o.SupportURL) != nil {
		t.Errorf("%s: origin %s", e.topic, e.raw["origin"])
	}
}

// fullSource has every kind of entity: two cameras, one with motion and
// zones (one limited to cars, one to all labels).
func fullSource(version, url string) DiscoverySource {
	return DiscoverySource{
		Version: version, ConfigurationURL: url, Events: true, Snapshots: true,
		Cameras: []DiscoveryCamera{
			{Name: "front", Motion: true, Zones: []DiscoveryZone{
				{Name: "drive-way", Objects: []string{"car"}},
				{Name: "porch"},
			}},
			{Name: "back"},
		},
	}
}

func TestDiscovery(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true, Labels: []string{"person", "traffic light"}}
	const url = "http://pi5:9464/"
	msgs := Discovery(cfg, testTopics, fullSource("1.2.3", url), t0)

	type want struct{ component, object, state, command, image string }
	wants := []want{
		{"switch", "front_detect", "edgedet/pi5/front/detect/state", "edgedet/pi5/front/detect/set", ""},
		{"number", "front_threshold", "edgedet/pi5/front/threshold/state", "edgedet/pi5/front/threshold/set", ""},
		{"binary_sensor", "front_motion", "edgedet/pi5/front/motion", "", ""},
		{"sensor", "front_person_count", "edgedet/pi5/front/person", "", ""},
		{"binary_sensor", "front_person_occupancy", "edgedet/pi5/front/person", "", ""},
		{"image", "front_person_snapshot", "", "", "edgedet/pi5/front/person/snapshot"},
		{"sensor", "front_traffic_light_count", "edgedet/pi5/front/traffic light", "", ""},
		{"binary_sensor", "front_traffic_light_occupancy", "edgedet/pi5/front/traffic light", "", ""},
		{"image", "front_traffic_light_snapshot", "", "", "edgedet/pi5/front/traffic light/snapshot"},
		{"sensor", "front_zone_drive_way_car_count", "edgedet/pi5/front/zone/drive-way/car", "", ""},
		{"binary_sensor", "front_zone_drive_way_car_occupancy", "edgedet/pi5/front/zone/drive-way/car", "", ""},
		{"sensor", "front_zone_porch_person_count", "edgedet/pi5/front/zone/porch/person", "", ""},
		{"binary_sensor", "front_zone_porch_person_occupancy", "edgedet/pi5/front/zone/porch/person", "", ""},
		{"sensor", "front_zone_porch_traffic_light_count", "edgedet/pi5/front/zone/porch/traffic light", "", ""},
		{"binary_sensor", "front_zone_porch_traffic_light_occupancy", "edgedet/pi5/front/zone/porch/traffic light", "", ""},
		{"switch", "back_detect", "edgedet/pi5/back/detect/state", "edgedet/pi5/back/detect/set", ""},
		{"number", "back_threshold", "edgedet/pi5/back/threshold/state", "edgedet/pi5/back/threshold/set", ""},
		{"sensor", "back_person_count", "edgedet/pi5/back/person", "", ""},
		{"binary_sensor", "back_person_occupancy", "edgedet/pi5/back/person", "", ""},
		{"image", "back_person_snapshot", "", "", "edgedet/pi5/back/person/snapshot"},
		{"sensor", "back_traffic_light_count", "edgedet/pi5/back/traffic light", "", ""},
		{"binary_sensor", "back_traffic_light_occupancy", "edgedet/pi5/back/traffic light", "", ""},
		{"image", "back_traffic_light_snapshot", "", "", "edgedet/pi5/back/traffic light/snapshot"},
	}
	if len(msgs) != len(wants) {
		t.Fatalf("got %d messages, want %d: %s", len(msgs), len(wants), topicsOf(msgs))
	}
	for i, m := range msgs {
		w := wants[i]
		e := decode(t, "homeassistant", m)
		if wt := topic.Discovery("homeassistant", w.component, "edgedet_pi5", w.object); m.Topic != wt {
			t.Errorf("message %d: topic %q, want %q", i, m.Topic, wt)
			continue
		}
		checkSchema(t, e, "1.2.3", url)
		c := e.c
		for _, f := range []struct{ key, got, want string }{
			{"state_topic", str(c.StateTopic), w.state},
			{"command_topic", str(c.CommandTopic), w.command},
			{"image_topic", str(c.ImageTopic), w.image},
		} {
			if f.want == "" {
				f.want = "<absent>"
			}
			if f.got != f.want {
				t.Errorf("%s: %s %q, want %q", m.Topic, f.key, f.got, f.want)
			}
		}
		switch {
		case e.component == "sensor":
			if str(c.UnitOfMeasurement) != "objects" || str(c.StateClass) != "measurement" || c.ValueTemplate != nil {
				t.Errorf("%s: unit %q state_class %q value_template %q, want objects/measurement and none",
					m.Topic, str(c.UnitOfMeasurement), str(c.StateClass), str(c.ValueTemplate))
			}
		case strings.HasSuffix(e.object, "_occupancy"):
			if str(c.DeviceClass) != "occupancy" || str(c.PayloadOn) != "ON" || str(c.PayloadOff) != "OFF" {
				t.Errorf("%s: device_class %q payload_on %q payload_off %q, want occupancy ON/OFF",
					m.Topic, str(c.DeviceClass), str(c.PayloadOn), str(c.PayloadOff))
			}
			for _, frag := range []string{"value", "> 0", "'ON'", "'OFF'"} {
				if !strings.Contains(str(c.ValueTemplate), frag) {
					t.Errorf("%s: value_template %q lacks %q", m.Topic, str(c.ValueTemplate), frag)
				}
			}
			// The payload keeps the template readable ("> 0", not "\u003e 0").
			if !strings.Contains(string(m.Payload), "> 0") {
				t.Errorf("payload escapes the template: %s", m.Payload)
			}
		case e.object == "front_motion":
			if str(c.DeviceClass) != "motion" || str(c.PayloadOn) != "ON" || str(c.PayloadOff) != "OFF" || c.ValueTemplate != nil {
				t.Errorf("%s: %s, want device_class motion, ON/OFF, no template", m.Topic, m.Payload)
			}
		case e.component == "image":
			if str(c.ContentType) != "image/jpeg" {
				t.Errorf("%s: content_type %q, want image/jpeg (the snapshot is raw JPEG)", m.Topic, str(c.ContentType))
			}
		case e.component == "switch", e.component == "number":
			if str(c.EntityCategory) != "config" {
				t.Errorf("%s: entity_category %q, want config", m.Topic, str(c.EntityCategory))
			}
		}
	}
	checkUnique(t, msgs)
}

// checkUnique fails on a topic or unique_id used twice.
func checkUnique(t *testing.T, msgs []publish.Message) {
	t.Helper()
	topics := map[string]bool{}
	ids := map[string]string{}
	for _, m := range msgs {
		if topics[m.Topic] {
			t.Errorf("%s: duplicate topic", m.Topic)
		}
		topics[m.Topic] = true
		var c haConfig
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			t.Fatal(err)
		}
		if prev, ok := ids[str(c.UniqueID)]; ok {
			t.Errorf("%s: unique_id %q already used by %s", m.Topic, str(c.UniqueID), prev)
		}
		ids[str(c.UniqueID)] = m.Topic
	}
}

func topicsOf(msgs []publish.Message) []string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.Topic)
	}
	return s
}

// TestDiscoveryTopicsAreTheAgents: every topic a payload names is one the
// agent's own code publishes (the counts, zone counts, snapshots and
// control states, built by their producers here) or subscribes to (the
// /set topics, through control.ParseSet), and the switch's and number's
// payloads are ones the control accepts, echoed on the state topic as the
// payload says.
func TestDiscoveryTopicsAreTheAgents(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true, Labels: []string{"person", "traffic light"}}
	src := fullSource("v", "")
	msgs := Discovery(cfg, testTopics, src, t0)

	published := map[string]bool{testTopics.Available(): true}
	cams := map[string]*control.Camera{}
	for _, cam := range src.Cameras {
		counts := map[string]int{}
		for _, l := range append(cfg.Labels, "car") {
			counts[l] = 1
			published[SnapshotMessage(testTopics, cam.Name, l, []byte{0xff, 0xd8}, t0).Topic] = true
		}
		for _, m := range NewCounts(testTopics, cam.Name).Update(counts, t0) {
			published[m.Topic] = true
		}
		zc := map[string]map[string]int{}
		for _, z := range cam.Zones {
			zc[z.Name] = counts
		}
		for _, m := range zone.NewCounts(testTopics, cam.Name).Update(zc, t0) {
			published[m.Topic] = true
		}
		ctrl := control.NewCamera(cam.Name, 0.3)
		cams[cam.Name] = ctrl
		for _, m := range control.StateMessages(testTopics, ctrl, t0) {
			published[m.Topic] = true
		}
		published[testTopics.Motion(cam.Name)] = true // published by the motion gate
	}

	var sawSwitch, sawNumber int
	for _, m := range msgs {
		e := decode(t, "homeassistant", m)
		c := e.c
		for _, tp := range []*string{c.StateTopic, c.ImageTopic} {
			if tp != nil && !published[*tp] {
				t.Errorf("%s: %q is not a topic the agent publishes", m.Topic, *tp)
			}
		}
		for _, a := range c.Availability {
			if !published[a.Topic] {
				t.Errorf("%s: availability %q is not a topic the agent publishes", m.Topic, a.Topic)
			}
		}
		if c.CommandTopic == nil {
			continue
		}
		cam, setting, ok := control.ParseSet(testTopics, *c.CommandTopic)
		ctrl := cams[cam]
		if !ok || ctrl == nil || !strings.HasPrefix(*c.CommandTopic, strings.TrimSuffix(testTopics.SetFilter(), "+/+/set")) {
			t.Errorf("%s: command_topic %q is not one the agent subscribes to", m.Topic, *c.CommandTopic)
			continue
		}
		state := func() string {
			for _, sm := range control.StateMessages(testTopics, ctrl, t0) {
				if sm.Topic == str(c.StateTopic) {
					return string(sm.Payload)
				}
			}
			t.Fatalf("%s: state_topic %q is not one of the control's", m.Topic, str(c.StateTopic))
			return ""
		}
		set := func(payload string) error { _, err := ctrl.Set(setting, []byte(payload)); return err }
		switch e.component {
		case "switch":
			sawSwitch++
			if setting != control.SettingDetect {
				t.Errorf("%s: switch commands %q", m.Topic, setting)
			}
			if err := set(str(c.PayloadOff)); err != nil || ctrl.Detect() || state() != str(c.StateOff) {
				t.Errorf("%s: payload_off %q: err %v, detect %v, state %q; want detection off and state_off %q",
					m.Topic, str(c.PayloadOff), err, ctrl.Detect(), state(), str(c.StateOff))
			}
			if err := set(str(c.PayloadOn)); err != nil || !ctrl.Detect() || state() != str(c.StateOn) {
				t.Errorf("%s: payload_on %q: err %v, detect %v, state %q; want detection on and state_on %q",
					m.Topic, str(c.PayloadOn), err, ctrl.Detect(), state(), str(c.StateOn))
			}
		case "number":
			sawNumber++
			if setting != control.SettingThreshold {
				t.Errorf("%s: number commands %q", m.Topic, setting)
			}
			if c.Min == nil || c.Max == nil || c.Step == nil || !(*c.Min < *c.Max) || *c.Step < 0.001 ||
				!slices.Contains([]string{"auto", "box", "slider"}, str(c.Mode)) {
				t.Fatalf("%s: min/max/step/mode %s", m.Topic, m.Payload)
			}
			// HA sends whole values as integers ("0", "1"), others as floats.
			format := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
			for _, v := range []float64{*c.Min, *c.Max, *c.Min + *c.Step, 0.35} {
				if err := set(format(v)); err != nil {
					t.Errorf("%s: the control rejects %s in [min,max]: %v", m.Topic, format(v), err)
				} else if got, _ := strconv.ParseFloat(state(), 64); fmt.Sprintf("%.4f", got) != fmt.Sprintf("%.4f", v) {
					t.Errorf("%s: set %s, state %q", m.Topic, format(v), state())
				}
			}
			for _, v := range []float64{*c.Min - *c.Step, *c.Max + *c.Step} {
				if err := set(format(v)); err == nil {
					t.Errorf("%s: the control accepts %s outside [min,max] = [%g,%g]: the range is too narrow",
						m.Topic, format(v), *c.Min, *c.Max)
				}
			}
		default:
			t.Errorf("%s: a %s has a command topic", m.Topic, e.component)
		}
	}
	if sawSwitch != 2 || sawNumber != 2 {
		t.Errorf("%d switches and %d numbers, want one each per camera", sawSwitch, sawNumber)
	}
}

// TestDiscoveryFollowsWhatIsPublished: without [events] there are no
// counts, zones or snapshots to announce, without [snapshots] no images,
// without motion detection no motion sensor; the controls stay.
func TestDiscoveryFollowsWhatIsPublished(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true}
	cases := []struct {
		name   string
		edit   func(*DiscoverySource)
		absent []string // object ID fragments
		want   int
	}{
		{"all", func(*DiscoverySource) {}, nil, 15},
		{"no events", func(s *DiscoverySource) { s.Events = false }, []string{"_count", "_occupancy", "_snapshot"}, 5},
		{"no snapshots", func(s *DiscoverySource) { s.Snapshots = false }, []string{"_snapshot"}, 13},
		{"no motion", func(s *DiscoverySource) { s.Cameras[0].Motion = false }, []string{"_motion"}, 14},
	}
	for _, tc := range cases {
		src := fullSource("v", "")
		tc.edit(&src)
		msgs := Discovery(cfg, testTopics, src, t0)
		if len(msgs) != tc.want {
			t.Errorf("%s: %d messages, want %d: %q", tc.name, len(msgs), tc.want, topicsOf(msgs))
		}
		for _, m := range msgs {
			for _, a := range tc.absent {
				if strings.Contains(m.Topic, a) {
					t.Errorf("%s: %s announced", tc.name, m.Topic)
				}
			}
		}
		for _, cam := range []string{"front", "back"} {
			for _, obj := range []string{"switch/edgedet_pi5/" + cam + "_detect", "number/edgedet_pi5/" + cam + "_threshold"} {
				if !slices.Contains(topicsOf(msgs), "homeassistant/"+obj+"/config") {
					t.Errorf("%s: no %s", tc.name, obj)
				}
			}
		}
	}
}

func TestDiscoveryStable(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true}
	one := func(version string) DiscoverySource {
		return DiscoverySource{Version: version, Events: true, Cameras: []DiscoveryCamera{{Name: "front"}}}
	}
	a := Discovery(cfg, testTopics, one("1.0.0"), t0)
	b := Discovery(cfg, testTopics, one("1.0.1"), t0.Add(1e9))
	if len(a) != 4 || len(b) != 4 {
		t.Fatalf("got %d and %d messages, want 4 (switch, number, default label person's count and occupancy)", len(a), len(b))
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
	}
	if !strings.Contains(a[2].Topic, "_person_") {
		t.Errorf("default label: %s", a[2].Topic)
	}
}

func TestDiscoveryDisabledAndEdgeCases(t *testing.T) {
	if got := Discovery(DiscoveryConfig{Labels: []string{"dog"}}, testTopics, fullSource("v", ""), t0); got != nil {
		t.Errorf("disabled: got %q", topicsOf(got))
	}
	if got := Discovery(DiscoveryConfig{Enabled: true}, testTopics, DiscoverySource{Events: true}, t0); len(got) != 0 {
		t.Errorf("no cameras: got %q", topicsOf(got))
	}
	// Custom prefix; labels and zones whose IDs collide, and blank labels,
	// are skipped: every unique_id stays unique.
	cfg := DiscoveryConfig{Enabled: true, Prefix: "ha/disc", Labels: []string{"Traffic Light", "traffic_light", " ", "zone b car"}}
	src := DiscoverySource{Events: true, Cameras: []DiscoveryCamera{
		{Name: "Front-Door", Zones: []DiscoveryZone{{Name: "b", Objects: []string{"car", "Car"}}}},
		{Name: "front_door"},
	}}
	msgs := Discovery(cfg, topic.Tree{Prefix: "edgedet", Device: "Pi-5"}, src, t0)
	want := []string{
		"ha/disc/switch/edgedet_pi_5/front_door_detect/config",
		"ha/disc/number/edgedet_pi_5/front_door_threshold/config",
		"ha/disc/sensor/edgedet_pi_5/front_door_traffic_light_count/config",
		"ha/disc/binary_sensor/edgedet_pi_5/front_door_traffic_light_occupancy/config",
		"ha/disc/sensor/edgedet_pi_5/front_door_zone_b_car_count/config",
		"ha/disc/binary_sensor/edgedet_pi_5/front_door_zone_b_car_occupancy/config",
	}
	if got := topicsOf(msgs); !slices.Equal(got, want) {
		t.Errorf("topics\n got %q\nwant %q", got, want)
	}
	checkUnique(t, msgs)
	dups := DiscoveryDuplicates(cfg, topic.Tree{Prefix: "edgedet", Device: "Pi-5"}, src)
	// The label "zone b car" took the IDs of zone b's car count first.
	if want := []string{"front_door_traffic_light_count", "front_door_traffic_light_occupancy",
		"front_door_zone_b_car_count", "front_door_zone_b_car_occupancy", "front_door_detect", "front_door_threshold"}; !slices.Equal(dups, want) {
		t.Errorf("duplicates %q, want %q", dups, want)
	}
	full := DiscoveryConfig{Enabled: true, Labels: []string{"person", "traffic light"}}
	if dups := DiscoveryDuplicates(full, testTopics, fullSource("v", "")); dups != nil {
		t.Errorf("duplicates %q in a config without", dups)
	}
	for _, m := range msgs {
		var c haConfig
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			t.Fatal(err)
		}
		if c.Device == nil || c.Device.Name != "edgedet Pi-5" || !slices.Equal(c.Device.Identifiers, []string{"edgedet_pi_5"}) {
			t.Errorf("%s: device %+v", m.Topic, c.Device)
		}
		if strings.HasSuffix(m.Topic, "front_door_traffic_light_count/config") &&
			(str(c.StateTopic) != "edgedet/Pi-5/Front-Door/Traffic Light" || str(c.UniqueID) != "edgedet_pi_5_front_door_traffic_light_count") {
			t.Errorf("state_topic %q unique_id %q", str(c.StateTopic), str(c.UniqueID))
		}
	}
}

func TestDiscoveryFilterAndClear(t *testing.T) {
	cfg := DiscoveryConfig{Enabled: true}
	if got, want := DiscoveryFilter(cfg, testTopics), "homeassistant/+/edgedet_pi5/+/config"; got != want {
		t.Errorf("filter %q, want %q", got, want)
	}
	if got, want := DiscoveryFilter(DiscoveryConfig{Prefix: "ha/x"}, topic.Tree{Device: "Pi-5"}), "ha/x/+/edgedet_pi_5/+/config"; got != want {
		t.Errorf("filter %q, want %q", got, want)
	}
	msgs := Discovery(cfg, testTopics, fullSource("v", ""), t0)
	set := NewDiscoverySet(msgs)
	if len(set) != len(msgs) {
		t.Fatalf("set of %d for %d messages", len(set), len(msgs))
	}
	// Every message matches the filter, so the agent sees its own.
	for _, m := range msgs {
		if !filterMatches(DiscoveryFilter(cfg, testTopics), m.Topic) {
			t.Errorf("%s does not match the filter", m.Topic)
		}
		if _, ok := set.Clear(m.Topic, m.Payload, t0); ok {
			t.Errorf("%s: the agent's own config would be cleared", m.Topic)
		}
	}
	stale := "homeassistant/sensor/edgedet_pi5/front_dog_count/config"
	m, ok := set.Clear(stale, []byte(`{"name":"front dog count"}`), t0)
	if !ok || m.Topic != stale || len(m.Payload) != 0 || !m.Retained || m.QoS != 1 || !m.Time.Equal(t0) {
		t.Errorf("stale config: %+v %v, want an empty retained QoS 1 message on its topic", m, ok)
	}
	if _, ok := set.Clear(stale, nil, t0); ok {
		t.Error("an already cleared config is cleared again")
	}
}

// filterMatches reports whether an MQTT filter with '+' levels matches name.
func filterMatches(filter, name string) bool {
	f, n := strings.Split(filter, "/"), strings.Split(name, "/")
	if len(f) != len(n) {
		return false
	}
	for i := range f {
		if f[i] != "+" && f[i] != n[i] {
			return false
		}
	}
	return true
}

func TestDeviceURL(t *testing.T) {
	cases := []struct {
		listen string
		live   bool
		host   string
		want   string
	}{
		{"127.0.0.1:9464", false, "pi5", "http://127.0.0.1:9464/healthz"},
		{"127.0.0.1:9464", true, "pi5", "http://127.0.0.1:9464/"},
		{"192.168.1.20:80", true, "", "http://192.168.1.20:80/"},
		{":9464", true, "pi5", "http://pi5:9464/"},
		{"0.0.0.0:9464", false, "pi5", "http://pi5:9464/healthz"},
		{"[::]:9464", true, "pi5", "http://pi5:9464/"},
		{"[::1]:9464", true, "pi5", "http://[::1]:9464/"},
		{"camhost:8080", true, "pi5", "http://camhost:8080/"},
		{"", true, "pi5", ""},
		{"127.0.0.1:0", true, "pi5", ""},
		{":9464", true, "", ""},
		{"nonsense", true, "pi5", ""},
	}
	for _, c := range cases {
		got := DeviceURL(c.listen, c.live, c.host)
		if got != c.want {
			t.Errorf("DeviceURL(%q, %v, %q) = %q, want %q", c.listen, c.live, c.host, got, c.want)
		}
		if got != "" && checkConfigurationURL(got) != nil {
			t.Errorf("DeviceURL(%q) = %q: HA would refuse it: %v", c.listen, got, checkConfigurationURL(got))
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
	if d.Enabled || d.Prefix != "homeassistant" || !slices.Equal(d.Labels, []string{"person"}) || d.ConfigurationURL != "" {
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
		{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "http://pi5.local:9464/"},
		{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "https://edgedet.example.org"},
		{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "homeassistant://hassio/ingress/edgedet"},
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
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "pi5:9464"}, []string{"homeassistant.configuration_url", `"pi5:9464"`, "http://"}},
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "ftp://pi5/"}, []string{"homeassistant.configuration_url", `"ftp://pi5/"`}},
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "http:///x"}, []string{"homeassistant.configuration_url", "no host"}},
		{DiscoveryConfig{Prefix: "ha", Labels: []string{"person"}, ConfigurationURL: "http://a b/"}, []string{"homeassistant.configuration_url", "not a URL"}},
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
	err := DiscoveryConfig{Prefix: "#", Labels: []string{""}, ConfigurationURL: "x"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "homeassistant.prefix") || !strings.Contains(err.Error(), "homeassistant.labels[0]") ||
		!strings.Contains(err.Error(), "homeassistant.configuration_url") {
		t.Errorf("joined errors: %v", err)
	}
}
