package report

import (
	"slices"
	"strconv"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
)

// Counts turns the per-label object counts of one camera into retained
// <prefix>/<device>/<camera>/<label> messages, sending only changes. It is
// not safe for concurrent use; the camera's pipeline stage owns it.
type Counts struct {
	topics topic.Tree
	camera string
	last   map[string]int // last published count per label
	labels []string       // scratch for sorting
}

// NewCounts returns a Counts for camera that has published nothing yet.
func NewCounts(t topic.Tree, camera string) *Counts {
	return &Counts{topics: t, camera: camera, last: map[string]int{}}
}

// Update returns one message (retained, QoS 1, payload the decimal count,
// Time now) per label whose count differs from what was last published,
// sorted by label. A label missing from current counts as 0, so a label
// that drops to 0 publishes "0" once. A label never published before is
// published on its first appearance in current, even with an explicit 0:
// passing every known label with 0 at start-up clears counts retained by
// a previous run. Negative counts are treated as 0.
//
// In Frigate mode (the Tree's Frigate) the counts also have the label
// topic.AllLabel, the sum over the labels, and every message has a twin
// on Tree.ActiveCount with the same count (edgedet does not tell
// stationary objects apart: all are active).
func (c *Counts) Update(current map[string]int, now time.Time) []publish.Message {
	if c.topics.Frigate {
		current = topic.WithAll(current)
	}
	c.labels = c.labels[:0]
	for label, n := range current {
		n = max(n, 0)
		if last, ok := c.last[label]; !ok || last != n {
			c.labels = append(c.labels, label)
		}
	}
	for label, last := range c.last {
		if _, ok := current[label]; !ok && last != 0 {
			c.labels = append(c.labels, label)
		}
	}
	if len(c.labels) == 0 {
		return nil
	}
	slices.Sort(c.labels)
	msgs := make([]publish.Message, 0, 2*len(c.labels))
	for _, label := range c.labels {
		n := max(current[label], 0)
		c.last[label] = n
		msg := publish.Message{
			Topic:    c.topics.Count(c.camera, label),
			Payload:  strconv.AppendInt(nil, int64(n), 10),
			QoS:      1,
			Retained: true,
			Time:     now,
		}
		msgs = append(msgs, msg)
		if c.topics.Frigate {
			msg.Topic = c.topics.ActiveCount(c.camera, label)
			msgs = append(msgs, msg)
		}
	}
	return msgs
}
