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

// TestFrigateCounts: in Frigate mode zone counts are <prefix>/<zone>/<label>
// with each zone's "all" and an /active twin of every topic.
func TestFrigateCounts(t *testing.T) {
	c := NewCounts(topic.Tree{Prefix: "frigate", Device: "pi5", Frigate: true}, "porch")
	steps := []struct {
		current zl
		want    string
	}{
		{zl{"drive": {"car": 0}, "yard": {}}, "frigate/drive/all=0 frigate/drive/all/active=0 frigate/drive/car=0 frigate/drive/car/active=0 frigate/yard/all=0 frigate/yard/all/active=0 "},
		{zl{"drive": {"car": 2, "person": 1}, "yard": {}}, "frigate/drive/all=3 frigate/drive/all/active=3 frigate/drive/car=2 frigate/drive/car/active=2 frigate/drive/person=1 frigate/drive/person/active=1 "},
		{zl{"drive": {"car": 2, "person": 1}, "yard": {}}, ""},
		{zl{"drive": {"car": 0, "person": 1}, "yard": {"dog": 1}}, "frigate/drive/all=1 frigate/drive/all/active=1 frigate/drive/car=0 frigate/drive/car/active=0 frigate/yard/all=1 frigate/yard/all/active=1 frigate/yard/dog=1 frigate/yard/dog/active=1 "},
	}
	for i, s := range steps {
		var b strings.Builder
		for _, m := range c.Update(s.current, t0) {
			fmt.Fprintf(&b, "%s=%s ", m.Topic, m.Payload)
		}
		if got := b.String(); got != s.want {
			t.Errorf("step %d: got %q, want %q", i, got, s.want)
		}
	}
}
