package zone

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
)

// Counts turns the per-zone, per-label counts of one camera (what
// Tracker.Counts returns) into retained count messages on
// topic.Tree.ZoneCount, sending only changes, the way report.Counts does
// for the per-label counts. It is not safe for concurrent use; the camera's
// pipeline stage owns it.
type Counts struct {
	topics topic.Tree
	camera string
	last   map[string]map[string]int // last published count per zone, label
	keys   []zoneLabel               // scratch for sorting
}

type zoneLabel struct{ zone, label string }

// NewCounts returns a Counts for camera that has published nothing yet.
// Zone names are used in topics as they are (Config.Validate makes them
// valid topic levels); labels are made one topic level by topic.Level.
func NewCounts(t topic.Tree, camera string) *Counts {
	return &Counts{topics: t, camera: camera, last: map[string]map[string]int{}}
}

// Update returns one message (retained, QoS 1, payload the decimal count,
// Time now) per zone and label whose count differs from what was last
// published, sorted by zone, then label. A zone or label missing from
// current counts as 0, so a count that drops to 0 publishes "0" once. A
// zone and label never published before is published on its first
// appearance in current, even with an explicit 0 (Tracker.Counts lists a
// zone's Objects labels at 0 from the start, which clears counts retained
// by a previous run). Negative counts are treated as 0. current is not
// retained. When nothing changed Update returns nil and, except in
// Frigate mode, does not allocate.
//
// In Frigate mode (the Tree's Frigate) each zone also has the label
// topic.AllLabel, the sum over its labels, and every message has a twin
// on Tree.ZoneActiveCount with the same count.
func (c *Counts) Update(current map[string]map[string]int, now time.Time) []publish.Message {
	if c.topics.Frigate {
		current = withAll(current)
	}
	c.keys = c.keys[:0]
	for zone, labels := range current {
		last := c.last[zone]
		for label, n := range labels {
			n = max(n, 0)
			if p, ok := last[label]; !ok || p != n {
				c.keys = append(c.keys, zoneLabel{zone, label})
			}
		}
	}
	for zone, labels := range c.last {
		cur := current[zone]
		for label, p := range labels {
			if _, ok := cur[label]; !ok && p != 0 {
				c.keys = append(c.keys, zoneLabel{zone, label})
			}
		}
	}
	if len(c.keys) == 0 {
		return nil
	}
	slices.SortFunc(c.keys, func(a, b zoneLabel) int {
		return cmp.Or(cmp.Compare(a.zone, b.zone), cmp.Compare(a.label, b.label))
	})
	msgs := make([]publish.Message, 0, 2*len(c.keys))
	for _, k := range c.keys {
		n := max(current[k.zone][k.label], 0)
		last := c.last[k.zone]
		if last == nil {
			last = map[string]int{}
			c.last[k.zone] = last
		}
		last[k.label] = n
		msg := publish.Message{
			Topic:    c.topics.ZoneCount(c.camera, k.zone, k.label),
			Payload:  strconv.AppendInt(nil, int64(n), 10),
			QoS:      1,
			Retained: true,
			Time:     now,
		}
		msgs = append(msgs, msg)
		if c.topics.Frigate {
			msg.Topic = c.topics.ZoneActiveCount(c.camera, k.zone, k.label)
			msgs = append(msgs, msg)
		}
	}
	clear(c.keys) // drop string references
	return msgs
}

// withAll returns zones with topic.AllLabel added to each zone (see
// topic.WithAll). zones is not modified.
func withAll(zones map[string]map[string]int) map[string]map[string]int {
	out := make(map[string]map[string]int, len(zones))
	for z, labels := range zones {
		out[z] = topic.WithAll(labels)
	}
	return out
}
