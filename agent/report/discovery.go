package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
)

// Defaults applied by [DiscoveryConfig.WithDefaults].
const (
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultDiscoveryLabel  = "person"
)

// SupportURL is the origin's support_url in every discovery payload.
const SupportURL = "https://github.com/edgedet/edgedet"

// The score threshold's range and step as Home Assistant's number entity
// offers it: control.Camera.Set accepts any number from 0 to 1.
const (
	thresholdMin  = 0.0
	thresholdMax  = 1.0
	thresholdStep = 0.01
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
// MQTT discovery of the agent's entities (see [Discovery]).
type DiscoveryConfig struct {
	Enabled bool `toml:"enabled"`
	// Prefix is Home Assistant's discovery prefix; default "homeassistant".
	Prefix string `toml:"prefix"`
	// Labels are the labels exposed for every camera (counts, occupancy,
	// snapshots) and for every zone that does not list its own objects;
	// default ["person"].
	Labels []string `toml:"labels"`
	// ConfigurationURL is the device's "visit" link in Home Assistant;
	// "" derives it from [http] listen (see DeviceURL). An http, https or
	// homeassistant URL with a host.
	ConfigurationURL string `toml:"configuration_url"`
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
// homeassistant.labels, homeassistant.configuration_url) and the offending
// value. Prefix must be a valid topic without wildcards, empty levels or
// leading/trailing '/'; labels must be non-blank and distinct once
// sanitised for entity IDs; a configuration URL must be what Home
// Assistant accepts: http, https or homeassistant, with a host.
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
	if u := c.ConfigurationURL; u != "" {
		if err := checkConfigurationURL(u); err != nil {
			add("homeassistant.configuration_url: %q %v", u, err)
		}
	}
	return errors.Join(errs...)
}

// checkConfigurationURL accepts what Home Assistant's device schema does:
// an http, https or homeassistant URL with a host.
func checkConfigurationURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a URL")
	}
	switch u.Scheme {
	case "http", "https", "homeassistant":
	default:
		return errors.New("must start with http://, https:// or homeassistant://")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
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

// DiscoverySource is what the agent publishes and subscribes to, as far as
// Discovery needs to know: every entity it announces reads or writes a
// topic that really carries data.
type DiscoverySource struct {
	// Version is edgedet's version (device and origin sw_version).
	Version string
	// ConfigurationURL is the device's configuration_url ("" = none; see
	// DeviceURL).
	ConfigurationURL string
	// Events: [events] is enabled, so the per-label and per-zone counts
	// are published.
	Events bool
	// Snapshots: [snapshots] is enabled (with Events), so the per-label
	// snapshots are published.
	Snapshots bool
	// Cameras in config order.
	Cameras []DiscoveryCamera
}

// DiscoveryCamera is one camera of a DiscoverySource.
type DiscoveryCamera struct {
	Name string
	// Motion: the camera runs motion detection ([camera.motion] enabled),
	// so <prefix>/<device>/<camera>/motion carries ON/OFF.
	Motion bool
	// Zones in config order.
	Zones []DiscoveryZone
}

// DiscoveryZone is one zone of a camera.
type DiscoveryZone struct {
	Name string
	// Objects are the labels the zone is limited to (zone objects); empty
	// means all labels, and the zone gets DiscoveryConfig.Labels.
	Objects []string
}

type haAvailability struct {
	Topic               string `json:"topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
	ValueTemplate       string `json:"value_template"`
}

type haDevice struct {
	Identifiers      []string `json:"identifiers"`
	Name             string   `json:"name"`
	Manufacturer     string   `json:"manufacturer"`
	Model            string   `json:"model"`
	SWVersion        string   `json:"sw_version,omitempty"`
	ConfigurationURL string   `json:"configuration_url,omitempty"`
}

type haOrigin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version,omitempty"`
	SupportURL string `json:"support_url"`
}

// haEntity is the discovery payload of every component; the fields one
// component does not use are omitted.
type haEntity struct {
	Name              string           `json:"name"`
	UniqueID          string           `json:"unique_id"`
	StateTopic        string           `json:"state_topic,omitempty"`
	CommandTopic      string           `json:"command_topic,omitempty"`
	ImageTopic        string           `json:"image_topic,omitempty"`
	ContentType       string           `json:"content_type,omitempty"`
	ValueTemplate     string           `json:"value_template,omitempty"`
	UnitOfMeasurement string           `json:"unit_of_measurement,omitempty"`
	StateClass        string           `json:"state_class,omitempty"`
	DeviceClass       string           `json:"device_class,omitempty"`
	EntityCategory    string           `json:"entity_category,omitempty"`
	PayloadOn         string           `json:"payload_on,omitempty"`
	PayloadOff        string           `json:"payload_off,omitempty"`
	StateOn           string           `json:"state_on,omitempty"`
	StateOff          string           `json:"state_off,omitempty"`
	Min               *float64         `json:"min,omitempty"`
	Max               *float64         `json:"max,omitempty"`
	Step              *float64         `json:"step,omitempty"`
	Mode              string           `json:"mode,omitempty"`
	Icon              string           `json:"icon,omitempty"`
	QoS               byte             `json:"qos"`
	Availability      []haAvailability `json:"availability"`
	AvailabilityMode  string           `json:"availability_mode"`
	Device            *haDevice        `json:"device"`
	Origin            *haOrigin        `json:"origin"`
}

// DiscoveryNode is the node ID of t's device in discovery topics and the
// prefix of every unique_id: "edgedet_" + EntityID(t.Device).
func DiscoveryNode(t topic.Tree) string { return "edgedet_" + EntityID(t.Device) }

// DiscoveryFilter is the filter matching every discovery config topic of
// t's device under cfg's prefix, whatever the component or object:
// <prefix>/+/<node>/+/config.
func DiscoveryFilter(cfg DiscoveryConfig, t topic.Tree) string {
	return topic.Discovery(cfg.WithDefaults().Prefix, "+", DiscoveryNode(t), "+")
}

// Discovery returns the Home Assistant discovery config messages (retained,
// QoS 1, Time now) for the entities of src, or nil when cfg is not enabled.
// Every entity belongs to one device "edgedet <device>" (identifier
// DiscoveryNode, configuration_url src.ConfigurationURL when set), carries
// origin {name edgedet, sw_version src.Version, support_url SupportURL},
// and is available only while t.Available() holds "online". Per camera, in
// this order (<cam>, <label>, <zone> passed through EntityID; each object
// ID below is also the unique_id, after "<node>_"):
//
//   - switch <cam>_detect: detection on/off, command t.Set(cam, "detect")
//     with ON/OFF, state t.State(cam, "detect");
//   - number <cam>_threshold: the score threshold, command
//     t.Set(cam, "threshold"), state t.State(cam, "threshold"), 0 to 1 in
//     steps of 0.01;
//   - binary_sensor <cam>_motion (device_class motion, ON/OFF on
//     t.Motion(cam)) when the camera runs motion detection;
//   - per cfg label, when src.Events: sensor <cam>_<label>_count (the
//     count on t.Count, state_class measurement, unit "objects") and
//     binary_sensor <cam>_<label>_occupancy (ON while that count is > 0);
//     with src.Snapshots also image <cam>_<label>_snapshot (the JPEG on
//     t.Snapshot, content_type image/jpeg);
//   - per zone and label (the zone's Objects, or cfg's labels when it has
//     none), when src.Events: sensor <cam>_zone_<zone>_<label>_count and
//     binary_sensor <cam>_zone_<zone>_<label>_occupancy on t.ZoneCount.
//
// Topics are <prefix>/<component>/<node>/<object>/config. IDs stay stable
// across restarts; an entity whose object ID an earlier one already has
// (names that differ only in case or punctuation), and blank labels, are
// skipped, so every unique_id and topic is unique.
//
// Configs of entities later removed from the config are not cleared here:
// see DiscoverySet.Clear.
func Discovery(cfg DiscoveryConfig, t topic.Tree, src DiscoverySource, now time.Time) []publish.Message {
	msgs, _ := discovery(cfg, t, src, now)
	return msgs
}

// DiscoveryDuplicates returns the object IDs of the entities Discovery
// skips because an earlier entity has the same one (cameras, labels or
// zones whose names differ only in case or punctuation), in order, each
// once; nil when there are none or cfg is not enabled.
func DiscoveryDuplicates(cfg DiscoveryConfig, t topic.Tree, src DiscoverySource) []string {
	_, dups := discovery(cfg, t, src, time.Time{})
	return dups
}

func discovery(cfg DiscoveryConfig, t topic.Tree, src DiscoverySource, now time.Time) (msgs []publish.Message, dups []string) {
	if !cfg.Enabled {
		return nil, nil
	}
	cfg = cfg.WithDefaults()
	node := DiscoveryNode(t)
	device := &haDevice{
		Identifiers:      []string{node},
		Name:             "edgedet " + t.Device,
		Manufacturer:     "edgedet",
		Model:            "edgedet",
		SWVersion:        src.Version,
		ConfigurationURL: src.ConfigurationURL,
	}
	origin := &haOrigin{Name: "edgedet", SWVersion: src.Version, SupportURL: SupportURL}
	avail := []haAvailability{{
		Topic:               t.Available(),
		PayloadAvailable:    "online",
		PayloadNotAvailable: "offline",
		ValueTemplate:       availabilityTemplate,
	}}

	seen := map[string]bool{} // object IDs
	add := func(component, object string, e *haEntity) {
		if seen[object] {
			if !slices.Contains(dups, object) {
				dups = append(dups, object)
			}
			return
		}
		seen[object] = true
		e.UniqueID = node + "_" + object
		e.QoS = 1
		e.Availability = avail
		e.AvailabilityMode = "latest"
		e.Device = device
		e.Origin = origin
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)              // keep "> 0" readable in the templates
		if err := enc.Encode(e); err != nil { // cannot happen: strings, numbers and slices
			panic(fmt.Sprintf("report: discovery payload: %v", err))
		}
		msgs = append(msgs, publish.Message{
			Topic:    topic.Discovery(cfg.Prefix, component, node, object),
			Payload:  bytes.TrimSuffix(buf.Bytes(), []byte("\n")),
			QoS:      1,
			Retained: true,
			Time:     now,
		})
	}
	count := func(object, name, state string) {
		add("sensor", object+"_count", &haEntity{
			Name:              name + " count",
			StateTopic:        state,
			UnitOfMeasurement: "objects",
			StateClass:        "measurement",
			Icon:              "mdi:counter",
		})
		add("binary_sensor", object+"_occupancy", &haEntity{
			Name:          name + " occupancy",
			StateTopic:    state,
			ValueTemplate: occupancyTemplate,
			DeviceClass:   "occupancy",
			PayloadOn:     "ON",
			PayloadOff:    "OFF",
		})
	}
	for _, cam := range src.Cameras {
		c := cam.Name
		camID := EntityID(c)
		detect, threshold := string(control.SettingDetect), string(control.SettingThreshold)
		add("switch", camID+"_detect", &haEntity{
			Name:           c + " detection",
			CommandTopic:   t.Set(c, detect),
			StateTopic:     t.State(c, detect),
			PayloadOn:      "ON",
			PayloadOff:     "OFF",
			StateOn:        "ON",
			StateOff:       "OFF",
			EntityCategory: "config",
			Icon:           "mdi:cctv",
		})
		lo, hi, step := thresholdMin, thresholdMax, thresholdStep
		add("number", camID+"_threshold", &haEntity{
			Name:           c + " score threshold",
			CommandTopic:   t.Set(c, threshold),
			StateTopic:     t.State(c, threshold),
			Min:            &lo,
			Max:            &hi,
			Step:           &step,
			Mode:           "slider",
			EntityCategory: "config",
			Icon:           "mdi:tune-vertical",
		})
		if cam.Motion {
			add("binary_sensor", camID+"_motion", &haEntity{
				Name:        c + " motion",
				StateTopic:  t.Motion(c),
				DeviceClass: "motion",
				PayloadOn:   "ON",
				PayloadOff:  "OFF",
			})
		}
		if !src.Events {
			continue // no counts, zones or snapshots are published
		}
		for _, l := range cfg.Labels {
			if strings.TrimSpace(l) == "" {
				continue
			}
			base := camID + "_" + EntityID(l)
			count(base, c+" "+l, t.Count(c, l))
			if src.Snapshots {
				add("image", base+"_snapshot", &haEntity{
					Name:        c + " " + l + " snapshot",
					ImageTopic:  t.Snapshot(c, l),
					ContentType: "image/jpeg",
					Icon:        "mdi:image",
				})
			}
		}
		for _, z := range cam.Zones {
			labels := z.Objects
			if len(labels) == 0 {
				labels = cfg.Labels
			}
			for _, l := range labels {
				if strings.TrimSpace(l) == "" {
					continue
				}
				count(camID+"_zone_"+EntityID(z.Name)+"_"+EntityID(l), c+" "+z.Name+" "+l, t.ZoneCount(c, z.Name, l))
			}
		}
	}
	return msgs, dups
}
