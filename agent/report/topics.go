// Package report builds the MQTT messages about tracked objects: lifecycle
// events (<prefix>/<device>/<camera>/events), per-label counts
// (<prefix>/<device>/<camera>/<label>), per-zone counts
// (<prefix>/<device>/<camera>/zone/<zone>/<label>) and best-frame JPEG
// snapshots (<prefix>/<device>/<camera>/<label>/snapshot), in the Frigate
// style.
//
// Everything but Snapshot is plain Go; Snapshot uses gocv and closes every
// Mat it creates before returning.
package report

import (
	"strings"
	"unicode/utf8"
)

// Topics builds topic names under <Prefix>/<Device>. Camera names are used
// as they are (the agent config already restricts them to one safe topic
// level); labels come from model metadata and are sanitised by Level.
type Topics struct {
	Prefix, Device string
}

// Events returns <prefix>/<device>/<camera>/events.
func (t Topics) Events(camera string) string {
	return t.join(camera, "events")
}

// Count returns <prefix>/<device>/<camera>/<label>.
func (t Topics) Count(camera, label string) string {
	return t.join(camera, Level(label))
}

// Snapshot returns <prefix>/<device>/<camera>/<label>/snapshot.
func (t Topics) Snapshot(camera, label string) string {
	return t.join(camera, Level(label), "snapshot")
}

// ZoneCount returns <prefix>/<device>/<camera>/zone/<zone>/<label>.
func (t Topics) ZoneCount(camera, zone, label string) string {
	return t.join(camera, "zone", zone, Level(label))
}

func (t Topics) join(levels ...string) string {
	n := len(t.Prefix) + 1 + len(t.Device)
	for _, l := range levels {
		n += 1 + len(l)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(t.Prefix)
	b.WriteByte('/')
	b.WriteString(t.Device)
	for _, l := range levels {
		b.WriteByte('/')
		b.WriteString(l)
	}
	return b.String()
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
