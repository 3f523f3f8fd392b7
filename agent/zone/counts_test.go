package zone

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var testTopics = topic.Tree{Prefix: "edgedet", Device: "pi5"}

func summary(msgs []publish.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s=%s ", strings.TrimPrefix(m.Topic, "edgedet/pi5/porch/zone/"), m.Payload)
	}
	return b.String()
}

type zl = map[string]map[string]int

func TestCounts(t *testing.T) {
	c := NewCounts(testTopics, "porch")
	now := t0
	steps := []struct {
		name    string
		current zl
		want    string
	}{
		{"nothing yet", nil, ""},
		{"start-up zeros publish", zl{"drive": {"car": 0}, "yard": {}}, "drive/car=0 "},
		{"zeros again", zl{"drive": {"car": 0}, "yard": {}}, ""},
		{"objects", zl{"drive": {"car": 2, "person": 1}, "yard": {"dog": 1}}, "drive/car=2 drive/person=1 yard/dog=1 "},
		{"unchanged", zl{"yard": {"dog": 1}, "drive": {"person": 1, "car": 2}}, ""},
		{"one changes", zl{"drive": {"car": 1, "person": 1}, "yard": {"dog": 1}}, "drive/car=1 "},
		{"label absent", zl{"drive": {"car": 1}, "yard": {"dog": 1}}, "drive/person=0 "},
		{"zone absent", zl{"drive": {"car": 1}}, "yard/dog=0 "},
		{"still absent", zl{"drive": {"car": 1}}, ""},
		{"same label, two zones", zl{"drive": {"car": 1}, "yard": {"car": 1}}, "yard/car=1 "},
		{"negative is zero", zl{"drive": {"car": -1}, "yard": {"car": 1}}, "drive/car=0 "},
		{"all gone", nil, "yard/car=0 "},
	}
	for _, s := range steps {
		now = now.Add(time.Second)
		msgs := c.Update(s.current, now)
		if got := summary(msgs); got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
		for _, m := range msgs {
			if !m.Retained || m.QoS != 1 || !m.Time.Equal(now) {
				t.Errorf("%s: %s retained %v qos %d time %v, want retained QoS 1 at %v", s.name, m.Topic, m.Retained, m.QoS, m.Time, now)
			}
		}
	}
}

// TestCountsFromTracker drives Counts with a Tracker, as the pipeline
// does: one message per change, none while nothing changes.
func TestCountsFromTracker(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 2, "car"), zoneCfg("top", top, 2))
	c := NewCounts(testTopics, "porch")
	steps := []struct {
		objs []track.Object
		want string
	}{
		{nil, "driveway/car=0 "},
		{[]track.Object{obj("a", "car", inBand)}, ""},
		{[]track.Object{obj("a", "car", inBand)}, "driveway/car=1 "},
		{[]track.Object{obj("a", "car", inBand2), obj("p", "person", inTop)}, ""},
		{[]track.Object{obj("a", "car", inBand2), obj("p", "person", inTop)}, "top/person=1 "},
		{[]track.Object{obj("a", "car", inBand2), obj("p", "person", inTop)}, ""},
		{nil, "driveway/car=0 top/person=0 "},
		{nil, ""},
	}
	for i, s := range steps {
		tr.Update(s.objs)
		if got := summary(c.Update(tr.Counts(), t0)); got != s.want {
			t.Errorf("update %d: got %q, want %q", i+1, got, s.want)
		}
	}
}

func TestCountsAllocsWhenUnchanged(t *testing.T) {
	c := NewCounts(testTopics, "porch")
	cur := zl{"drive": {"car": 2, "person": 1}, "yard": {"dog": 0}}
	c.Update(cur, t0)
	var msgs []publish.Message
	if n := testing.AllocsPerRun(1000, func() { msgs = c.Update(cur, t0) }); n != 0 {
		t.Errorf("%v allocs per unchanged Update, want 0", n)
	}
	if msgs != nil {
		t.Errorf("unchanged Update returned %v", msgs)
	}
}
