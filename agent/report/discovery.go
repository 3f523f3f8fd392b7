package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
)

// Defaults applied by [DiscoveryConfig.WithDefaults].
const (
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultDiscoveryLabel  = "person"
)

// Home Assistant templates used by the discovery payloads. HA compares the
// availability template's result with payload_available/payload_not_available,
// so every payload other than "online" ("offline" from the Last Will,
// "stopped" from a clean shutdown, anything unexpected) marks the entities
// unavailable. The occupancy template turns the decimal count into ON/OFF;
// a non-numeric payload counts as 0.
const (
	availabilityTemplate = `{{ 'online' if value == 'online' else 'offline' }}`
	occupancyTemplate    = `{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}`
)

// DiscoveryConfig is the [homeassistant] table of agent.toml: Home Assistant
// MQTT discovery of per-camera, per-label count and occupancy entities.
type DiscoveryConfig struct {
	Enabled bool `toml:"enabled"`
	// Prefix is Home Assistant's discovery prefix; default "homeassistant".
	Prefix string `toml:"prefix"`
	// Labels are the labels exposed for every camera; default ["person"].
	Labels []string `toml:"labels"`
}

// WithDefaults returns c with an empty Prefix set to "homeassistant" and
// empty Labels set to ["person"]. Labels is copied, never shared with c.
func (c DiscoveryConfig) WithDefaults() DiscoveryConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultDiscoveryPrefix
	}
	if len(c.Labels) == 0 {
		c.Labels = []string{DefaultDiscoveryLabel}
	} else {
		c.Labels = append([]string(nil), c.Labels...)
	}
	return c
}

// Validate checks c as it is (call WithDefaults first) and returns every
// problem joined with errors.Join, each naming the key (homeassistant.prefix,
// homeassistant.labels) and the offending value. Prefix must be a valid
// topic without wildcards, empty levels or leading/trailing '/'; labels
// must be non-blank and distinct once sanitised for entity IDs.
func (c DiscoveryConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	p := c.Prefix
	switch {
	case p == "":
		add("homeassistant.prefix: %q is empty", p)
	case !utf8.ValidString(p) || strings.ContainsRune(p, 0):
		add("homeassistant.prefix: %q is not valid UTF-8 without NUL", p)
	case strings.ContainsAny(p, "+#"):
		add("homeassistant.prefix: %q contains an MQTT wildcard (+ or #)", p)
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		add("homeassistant.prefix: %q starts or ends with '/'", p)
	case strings.Contains(p, "//"):
		add("homeassistant.prefix: %q has an empty topic level", p)
	case len(p) > 32767:
		add("homeassistant.prefix: %q... of %d bytes is too long for a topic", p[:32], len(p))
	}

	if len(c.Labels) == 0 {
		add("homeassistant.labels: %q is empty (list at least one label)", c.Labels)
	}
	seen := make(map[string]string, len(c.Labels))
	for i, l := range c.Labels {
		if strings.TrimSpace(l) == "" {
			add("homeassistant.labels[%d]: %q is blank", i, l)
			continue
		}
		id := EntityID(l)
		if prev, ok := seen[id]; ok {
			add("homeassistant.labels[%d]: %q has the same entity ID %q as %q", i, l, id, prev)
			continue
		}
		seen[id] = l
	}
	return errors.Join(errs...)
}

// EntityID makes s usable in Home Assistant object IDs and unique IDs:
// ASCII letters are lowercased, digits kept, and every other byte run
// becomes one '_' ("traffic light" → "traffic_light", "Café" → "caf_").
// An empty s becomes "_".
func EntityID(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	under := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
			under = false
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
			under = false
		default:
			if !under {
				b.WriteByte('_')
				under = true
			}
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

type haAvailability struct {
	Topic               string `json:"topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
	ValueTemplate       string `json:"value_template"`
}

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

// haEntity is the discovery payload of a sensor or binary_sensor; the
// fields one component does not use are omitted.
type haEntity struct {
	Name              string           `json:"name"`
	UniqueID          string           `json:"unique_id"`
	StateTopic        string           `json:"state_topic"`
	ValueTemplate     string           `json:"value_template,omitempty"`
	UnitOfMeasurement string           `json:"unit_of_measurement,omitempty"`
	StateClass        string           `json:"state_class,omitempty"`
	DeviceClass       string           `json:"device_class,omitempty"`
	PayloadOn         string           `json:"payload_on,omitempty"`
	PayloadOff        string           `json:"payload_off,omitempty"`
	Icon              string           `json:"icon,omitempty"`
	QoS               byte             `json:"qos"`
	Availability      []haAvailability `json:"availability"`
	AvailabilityMode  string           `json:"availability_mode"`
	Device            *haDevice        `json:"device"`
}

// Discovery returns the Home Assistant discovery config messages (retained,
// QoS 1, Time now) for every camera and every label of cfg (after
// WithDefaults), or nil when cfg is not enabled. Per camera and label there
// are two entities, grouped under one device "edgedet <device>":
//
//   - <prefix>/sensor/edgedet_<device>/<camera>_<label>_count/config: the
//     object count read from t.Count(camera, label), state_class
//     measurement, unit "objects", unique_id
//     edgedet_<device>_<camera>_<label>_count;
//   - <prefix>/binary_sensor/edgedet_<device>/<camera>_<label>_occupancy/config:
//     device_class occupancy, ON while that count is > 0, unique_id
//     edgedet_<device>_<camera>_<label>_occupancy.
//
// Device, camera and label are passed through EntityID in node IDs, object
// IDs and unique IDs, so the IDs stay stable across restarts and valid for
// Home Assistant. Both entities are available only while t.Available()
// holds "online". Labels or cameras whose IDs collide with an earlier one are
// skipped, so every unique_id (and topic) is unique. Messages are ordered by
// camera, then label, sensor before binary_sensor.
//
// Retained configs of labels or cameras later removed from the config are
// not cleared here; publishing an empty retained payload on their topics
// removes them from Home Assistant.
func Discovery(cfg DiscoveryConfig, t topic.Tree, version string, cameras []string, now time.Time) []publish.Message {
	if !cfg.Enabled {
		return nil
	}
	cfg = cfg.WithDefaults()
	dev := EntityID(t.Device)
	node := "edgedet_" + dev
	device := &haDevice{
		Identifiers:  []string{node},
		Name:         "edgedet " + t.Device,
		Manufacturer: "edgedet",
		Model:        "edgedet",
		SWVersion:    version,
	}
	avail := []haAvailability{{
		Topic:               t.Available(),
		PayloadAvailable:    "online",
		PayloadNotAvailable: "offline",
		ValueTemplate:       availabilityTemplate,
	}}

	type labelID struct{ label, id string }
	labels := make([]labelID, 0, len(cfg.Labels))
	seenLabel := map[string]bool{}
	for _, l := range cfg.Labels {
		id := EntityID(l)
		if strings.TrimSpace(l) == "" || seenLabel[id] {
			continue
		}
		seenLabel[id] = true
		labels = append(labels, labelID{l, id})
	}

	msgs := make([]publish.Message, 0, 2*len(cameras)*len(labels))
	add := func(component, object string, e *haEntity) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)              // keep "> 0" readable in the templates
		if err := enc.Encode(e); err != nil { // cannot happen: only strings, a byte and slices
			panic(fmt.Sprintf("report: discovery payload: %v", err))
		}
		payload := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		msgs = append(msgs, publish.Message{
			Topic:    topic.Discovery(cfg.Prefix, component, node, object),
			Payload:  payload,
			QoS:      1,
			Retained: true,
			Time:     now,
		})
	}
	seenCamera := map[string]bool{}
	for _, cam := range cameras {
		camID := EntityID(cam)
		if seenCamera[camID] {
			continue
		}
		seenCamera[camID] = true
		for _, l := range labels {
			base := camID + "_" + l.id
			state := t.Count(cam, l.label)
			add("sensor", base+"_count", &haEntity{
				Name:              cam + " " + l.label + " count",
				UniqueID:          node + "_" + base + "_count",
				StateTopic:        state,
				UnitOfMeasurement: "objects",
				StateClass:        "measurement",
				Icon:              "mdi:counter",
				QoS:               1,
				Availability:      avail,
				AvailabilityMode:  "latest",
				Device:            device,
			})
			add("binary_sensor", base+"_occupancy", &haEntity{
				Name:             cam + " " + l.label + " occupancy",
				UniqueID:         node + "_" + base + "_occupancy",
				StateTopic:       state,
				ValueTemplate:    occupancyTemplate,
				DeviceClass:      "occupancy",
				PayloadOn:        "ON",
				PayloadOff:       "OFF",
				QoS:              1,
				Availability:     avail,
				AvailabilityMode: "latest",
				Device:           device,
			})
		}
	}
	return msgs
}
