// Package topic names every MQTT topic edgedet publishes or subscribes to.
// No other package builds a topic name; they ask a Tree (or Discovery).
//
// The tree, with <prefix> = mqtt.topic_prefix and <device> = mqtt.device
// (retained, QoS; "spooled" messages go through the outbox, the others
// straight to the client and are lost while it is disconnected):
//
//	<prefix>/<device>/available                     retained, QoS 1, direct: "online" on every
//	                                                connect, "offline" (the Last Will), "stopped"
//	<prefix>/<device>/stats                         QoS 0, direct: stats JSON every [stats] interval
//	<prefix>/<device>/<camera>/detections           mqtt.qos, retained per [detections] retain,
//	                                                direct: per-frame detections JSON
//	<prefix>/<device>/<camera>/events               QoS 1, spooled: tracked-object event JSON
//	<prefix>/<device>/<camera>/<label>              retained, QoS 1, spooled: objects of that
//	                                                label in view
//	<prefix>/<device>/<camera>/<label>/snapshot     retained, QoS 1, spooled: JPEG of the best
//	                                                frame of the latest event
//	<prefix>/<device>/<camera>/zone/<zone>/<label>  retained, QoS 1, spooled: objects of that
//	                                                label in the zone
//	<prefix>/<device>/<camera>/<setting>/state      retained, QoS 1, spooled: the value of a
//	                                                control setting (detect, threshold)
//	<prefix>/<device>/<camera>/<setting>/set        subscribed, QoS 1, through the filter
//	                                                <prefix>/<device>/+/+/set: sets it
//	<prefix>/<device>/<camera>/motion               retained, QoS 1, spooled: "ON" while the
//	                                                camera's motion detector sees motion, "OFF"
//	                                                once it has seen none for camera.motion.off_delay
//	<discovery>/<component>/<node>/<object>/config  retained, QoS 1, spooled: Home Assistant
//	                                                discovery; <discovery> = homeassistant.prefix
//
// With mqtt.compat = "frigate" (Tree.Frigate) the tree is Frigate's: no
// <device> level, one events topic for every camera, and zones, whose
// names are global as in Frigate, at the top level:
//
//	<prefix>/available, <prefix>/stats, <prefix>/events
//	<prefix>/<camera>/<label>, <prefix>/<camera>/<label>/active,
//	<prefix>/<camera>/<label>/snapshot, <prefix>/<camera>/motion,
//	<prefix>/<camera>/<setting>/state, <prefix>/<camera>/<setting>/set,
//	<prefix>/<camera>/detections
//	<prefix>/<zone>/<label>, <prefix>/<zone>/<label>/active
//
// where <label> may be "all", the sum over the labels.
//
// Camera and zone names are used as they are: the agent config already
// restricts them to one valid topic level. Labels come from model metadata
// and are made one valid level by Level.
package topic

import (
	"strings"
	"unicode/utf8"
)

// Tree builds the topic names under <Prefix>/<Device> (under <Prefix> when
// Frigate is set). It does not validate them; mqtt.Config.Validate checks
// Prefix and Device.
type Tree struct {
	Prefix, Device string
	// Frigate lays the topics out as Frigate does (see the package
	// comment): Device is not a level, Events is one topic for every
	// camera and ZoneCount is <prefix>/<zone>/<label>.
	Frigate bool
}

// AllLabel is the label level that carries the count of every label
// together (Frigate's "all").
const AllLabel = "all"

// WithAll returns counts plus AllLabel, the sum of the others (negative
// counts add nothing), for Frigate's <camera>/all and <zone>/all. counts is
// not modified; an AllLabel in it is replaced.
func WithAll(counts map[string]int) map[string]int {
	out := make(map[string]int, len(counts)+1)
	total := 0
	for label, n := range counts {
		if label == AllLabel {
			continue
		}
		out[label] = n
		total += max(n, 0)
	}
	out[AllLabel] = total
	return out
}

// Available returns <prefix>/<device>/available, the availability topic
// (retained "online", "offline" as the Last Will, "stopped").
func (t Tree) Available() string { return t.join("available") }

// Stats returns <prefix>/<device>/stats.
func (t Tree) Stats() string { return t.join("stats") }

// Detections returns <prefix>/<device>/<camera>/detections.
func (t Tree) Detections(camera string) string { return t.join(camera, "detections") }

// Events returns <prefix>/<device>/<camera>/events; in Frigate mode
// <prefix>/events, whatever the camera.
func (t Tree) Events(camera string) string {
	if t.Frigate {
		return t.join("events")
	}
	return t.join(camera, "events")
}

// EventsFilter returns <prefix>/<device>/+/events, the filter matching the
// events of every camera; in Frigate mode <prefix>/events.
func (t Tree) EventsFilter() string { return t.Events("+") }

// Motion returns <prefix>/<device>/<camera>/motion, the camera's retained
// motion state ("ON"/"OFF").
func (t Tree) Motion(camera string) string { return t.join(camera, "motion") }

// Count returns <prefix>/<device>/<camera>/<label>, label made one level by
// Level.
func (t Tree) Count(camera, label string) string { return t.join(camera, Level(label)) }

// Snapshot returns <prefix>/<device>/<camera>/<label>/snapshot, label made
// one level by Level.
func (t Tree) Snapshot(camera, label string) string {
	return t.join(camera, Level(label), "snapshot")
}

// ActiveCount returns <prefix>/<device>/<camera>/<label>/active (Frigate's
// count of the objects that are not stationary), label made one level by
// Level.
func (t Tree) ActiveCount(camera, label string) string {
	return t.join(camera, Level(label), "active")
}

// ZoneCount returns <prefix>/<device>/<camera>/zone/<zone>/<label>; in
// Frigate mode <prefix>/<zone>/<label> (zone names are global there).
// label is made one level by Level.
func (t Tree) ZoneCount(camera, zone, label string) string {
	if t.Frigate {
		return t.join(zone, Level(label))
	}
	return t.join(camera, "zone", zone, Level(label))
}

// ZoneActiveCount returns ZoneCount's topic followed by /active.
func (t Tree) ZoneActiveCount(camera, zone, label string) string {
	return t.ZoneCount(camera, zone, label) + "/active"
}

// Set returns <prefix>/<device>/<camera>/<setting>/set, where subscribers
// publish a new value for a control setting.
func (t Tree) Set(camera, setting string) string { return t.join(camera, setting, "set") }

// State returns <prefix>/<device>/<camera>/<setting>/state, the retained
// current value of a control setting.
func (t Tree) State(camera, setting string) string { return t.join(camera, setting, "state") }

// SetFilter returns <prefix>/<device>/+/+/set, the filter the agent
// subscribes to for every camera's /set topics.
func (t Tree) SetFilter() string { return t.join("+", "+", "set") }

// ParseSet splits a topic matched by SetFilter into camera and setting. ok
// is false for a topic that is not <prefix>/<device>/<camera>/<setting>/set;
// which settings exist is for the caller to check.
func (t Tree) ParseSet(name string) (camera, setting string, ok bool) {
	rest, found := strings.CutPrefix(name, t.join()+"/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != "set" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// join is <prefix>/<device>/<levels...>, or <prefix>/<levels...> in
// Frigate mode.
func (t Tree) join(levels ...string) string {
	n := len(t.Prefix)
	if !t.Frigate {
		n += 1 + len(t.Device)
	}
	for _, l := range levels {
		n += 1 + len(l)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(t.Prefix)
	if !t.Frigate {
		b.WriteByte('/')
		b.WriteString(t.Device)
	}
	for _, l := range levels {
		b.WriteByte('/')
		b.WriteString(l)
	}
	return b.String()
}

// Discovery returns <prefix>/<component>/<node>/<object>/config, a Home
// Assistant MQTT discovery topic; prefix is Home Assistant's discovery
// prefix (homeassistant.prefix), not the agent's. The caller makes node and
// object valid IDs.
func Discovery(prefix, component, node, object string) string {
	return prefix + "/" + component + "/" + node + "/" + object + "/config"
}

// Level makes s usable as one MQTT topic level: the wildcards '+' and '#',
// the level separator '/', NUL and invalid UTF-8 become '_', and an empty
// string becomes "_". Everything else, spaces included, is kept ("traffic
// light" stays as it is).
func Level(s string) string {
	if s == "" {
		return "_"
	}
	if utf8.ValidString(s) && !strings.ContainsAny(s, "+#/\x00") {
		return s
	}
	s = strings.ToValidUTF8(s, "_")
	return strings.Map(func(r rune) rune {
		switch r {
		case '+', '#', '/', 0:
			return '_'
		}
		return r
	}, s)
}
