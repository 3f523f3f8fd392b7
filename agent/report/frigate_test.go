package report

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
)

var frigateTopics = topic.Tree{Prefix: "frigate", Device: "pi5", Frigate: true}

// frigateObject is a tracked object as Frigate's documentation describes
// it; pointers tell null from absent.
type frigateObject struct {
	ID              *string         `json:"id"`
	Camera          *string         `json:"camera"`
	FrameTime       *float64        `json:"frame_time"`
	Snapshot        json.RawMessage `json:"snapshot"`
	Label           *string         `json:"label"`
	SubLabel        json.RawMessage `json:"sub_label"`
	TopScore        *float64        `json:"top_score"`
	FalsePositive   *bool           `json:"false_positive"`
	StartTime       *float64        `json:"start_time"`
	EndTime         *float64        `json:"end_time"`
	Score           *float64        `json:"score"`
	Box             []int           `json:"box"`
	Area            *int            `json:"area"`
	Ratio           *float64        `json:"ratio"`
	Region          []int           `json:"region"`
	CurrentZones    []string        `json:"current_zones"`
	EnteredZones    []string        `json:"entered_zones"`
	Thumbnail       json.RawMessage `json:"thumbnail"`
	HasSnapshot     *bool           `json:"has_snapshot"`
	HasClip         *bool           `json:"has_clip"`
	Active          *bool           `json:"active"`
	Stationary      *bool           `json:"stationary"`
	MotionlessCount *int            `json:"motionless_count"`
	PositionChanges *int            `json:"position_changes"`
	Attributes      map[string]any  `json:"attributes"`
	CurrentAttrs    []any           `json:"current_attributes"`
}

type frigateEvent struct {
	Type   string         `json:"type"`
	Before *frigateObject `json:"before"`
	After  *frigateObject `json:"after"`
}

func decodeFrigate(t *testing.T, payload []byte) frigateEvent {
	t.Helper()
	var ev frigateEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, payload)
	}
	if ev.Before == nil || ev.After == nil {
		t.Fatalf("before or after missing or null: %s", payload)
	}
	return ev
}

func unix(tm time.Time) float64 { return float64(tm.UnixMicro()) / 1e6 }

// TestFrigateEventShape checks every documented field of a "new" event:
// names, types, Unix-second times, whole-pixel box, area and ratio, the
// frame as region, zones, and the constants.
func TestFrigateEventShape(t *testing.T) {
	f := NewFrigateEvents(frigateTopics, "front")
	box := detection.Box{X1: 100.4, Y1: 50.6, X2: 300.5, Y2: 450.2}
	o := object("1740826800123-00002a", "dog", 0.8, 0.9, box, t0, 3)
	meta := testMeta
	meta.Zones = func(id string) (current, entered []string) {
		if id != o.ID {
			t.Errorf("zones asked for %q", id)
		}
		return []string{"yard"}, []string{"drive", "yard"}
	}
	msg := f.Message(meta, track.Event{Type: track.EventNew, After: o})
	if msg.Topic != "frigate/events" || msg.QoS != 1 || msg.Retained || !msg.Time.Equal(o.FrameTime) {
		t.Fatalf("message %s qos %d retained %v time %v", msg.Topic, msg.QoS, msg.Retained, msg.Time)
	}
	ev := decodeFrigate(t, msg.Payload)
	a := ev.After
	if ev.Type != "new" || *a.ID != o.ID || *a.Camera != "front" || *a.Label != "dog" {
		t.Fatalf("type/id/camera/label: %s", msg.Payload)
	}
	if math.Abs(*a.FrameTime-unix(o.FrameTime)) > 1e-6 || math.Abs(*a.StartTime-unix(t0)) > 1e-6 || a.EndTime != nil {
		t.Errorf("times: frame %v start %v end %v; want %v, %v, null", *a.FrameTime, *a.StartTime, a.EndTime, unix(o.FrameTime), unix(t0))
	}
	if math.Abs(*a.Score-0.8) > 1e-4 || math.Abs(*a.TopScore-0.9) > 1e-4 {
		t.Errorf("score %v top_score %v", *a.Score, *a.TopScore)
	}
	if !slices.Equal(a.Box, []int{100, 51, 301, 450}) || *a.Area != 201*399 || math.Abs(*a.Ratio-201.0/399) > 1e-4 {
		t.Errorf("box %v area %v ratio %v", a.Box, *a.Area, *a.Ratio)
	}
	if !slices.Equal(a.Region, []int{0, 0, 640, 480}) {
		t.Errorf("region %v, want the frame", a.Region)
	}
	if !slices.Equal(a.CurrentZones, []string{"yard"}) || !slices.Equal(a.EnteredZones, []string{"drive", "yard"}) {
		t.Errorf("zones %v %v", a.CurrentZones, a.EnteredZones)
	}
	if string(a.Snapshot) != "null" || string(a.SubLabel) != "null" || string(a.Thumbnail) != "null" ||
		*a.FalsePositive || *a.HasSnapshot || *a.HasClip || !*a.Active || *a.Stationary ||
		*a.MotionlessCount != 0 || *a.PositionChanges != 0 || a.Attributes == nil || len(a.Attributes) != 0 ||
		a.CurrentAttrs == nil || len(a.CurrentAttrs) != 0 {
		t.Errorf("constant fields: %s", msg.Payload)
	}
	if !reflect.DeepEqual(ev.Before, ev.After) {
		t.Errorf("new: before differs from after:\n%s", msg.Payload)
	}
	// Without zones the lists are empty, not null.
	msg = NewFrigateEvents(frigateTopics, "front").Message(testMeta, track.Event{Type: track.EventNew, After: o})
	ev = decodeFrigate(t, msg.Payload)
	if ev.After.CurrentZones == nil || len(ev.After.CurrentZones) != 0 || ev.After.EnteredZones == nil {
		t.Errorf("zones without zones configured: %s", msg.Payload)
	}
}

// TestFrigateBeforeMovesForward: each message's before is the previous
// message's after — also for a zone change reported with the same frame as
// Before and After, which the tracker does — and "end" sets end_time and
// forgets the object.
func TestFrigateBeforeMovesForward(t *testing.T) {
	f := NewFrigateEvents(frigateTopics, "front")
	zones := []string{}
	meta := testMeta
	meta.Zones = func(string) (current, entered []string) { return zones, zones }
	box := detection.Box{X1: 10, Y1: 10, X2: 110, Y2: 210}
	o := object("id-1", "person", 0.6, 0.6, box, t0, 3)
	var last *frigateObject
	step := func(typ track.EventType, before, after track.Object) frigateEvent {
		t.Helper()
		msg := f.Message(meta, track.Event{Type: typ, Before: before, After: after})
		ev := decodeFrigate(t, msg.Payload)
		if ev.Type != string(typ) {
			t.Fatalf("type %q, want %q", ev.Type, typ)
		}
		if last != nil && !reflect.DeepEqual(ev.Before, last) {
			t.Fatalf("%s: before is not the previous after:\nbefore %+v\nprev   %+v", typ, ev.Before, last)
		}
		last = ev.After
		return ev
	}
	step(track.EventNew, track.Object{}, o)
	// A better score: the tracker's before is its published state.
	o2 := o
	o2.Score, o2.TopScore, o2.FrameTime = 0.9, 0.9, o.FrameTime.Add(time.Second)
	step(track.EventUpdate, o, o2)
	// A zone change: the pipeline reports it with the same frame as
	// before and after; Frigate's before must still be the last message.
	zones = []string{"yard"}
	ev := step(track.EventUpdate, o2, o2)
	if len(ev.Before.CurrentZones) != 0 || !slices.Equal(ev.After.CurrentZones, []string{"yard"}) {
		t.Errorf("zone change: before %v after %v", ev.Before.CurrentZones, ev.After.CurrentZones)
	}
	o3 := o2
	o3.Box.X1, o3.Box.X2, o3.FrameTime = 60, 160, o2.FrameTime.Add(time.Second)
	step(track.EventUpdate, o2, o3)
	end := track.EndOf(o3, o3, o3.FrameTime.Add(3*time.Second), track.EndTimeout)
	ev = step(track.EventEnd, end.Before, end.After)
	if ev.After.EndTime == nil || math.Abs(*ev.After.EndTime-unix(o3.LastSeen)) > 1e-6 || ev.Before.EndTime != nil {
		t.Errorf("end: after end_time %v (want %v), before end_time %v (want null)", ev.After.EndTime, unix(o3.LastSeen), ev.Before.EndTime)
	}
	if f.Open() != 0 {
		t.Errorf("%d objects remembered after their end", f.Open())
	}
}

// TestFrigateEndOfUnknownObject: the "end" of an object this encoder never
// saw (a previous run's, ended at start) takes its before from the event.
func TestFrigateEndOfUnknownObject(t *testing.T) {
	f := NewFrigateEvents(frigateTopics, "front")
	o := object("old-1", "car", 0.7, 0.8, detection.Box{X1: 1, Y1: 2, X2: 3, Y2: 4}, t0, 5)
	ev := track.EndOf(o, o, t0.Add(time.Hour), track.EndRestart)
	got := decodeFrigate(t, f.Message(testMeta, ev).Payload)
	if got.Type != "end" || *got.Before.ID != "old-1" || got.Before.EndTime != nil || got.After.EndTime == nil ||
		math.Abs(*got.After.FrameTime-unix(t0.Add(time.Hour))) > 1e-6 {
		t.Errorf("end of an unknown object: %+v", got)
	}
}

func TestUnixSeconds(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "null"},
		{time.Unix(1607123955, 475377000), "1607123955.475377"},
		{time.Unix(1607123955, 5000), "1607123955.000005"},
		{time.Unix(1607123955, 0), "1607123955.000000"},
		{time.Unix(-2, 500000000), "-1.500000"},
	} {
		if got := string(unixSeconds(nil, c.t)); got != c.want {
			t.Errorf("unixSeconds(%v) = %s, want %s", c.t, got, c.want)
		}
	}
}

// TestFrigateCounts: in Frigate mode the counts carry "all" and an
// /active twin of every topic.
func TestFrigateCounts(t *testing.T) {
	c := NewCounts(frigateTopics, "front")
	steps := []struct {
		current map[string]int
		want    string
	}{
		{map[string]int{"dog": 0, "person": 0}, "frigate/front/all=0 frigate/front/all/active=0 frigate/front/dog=0 frigate/front/dog/active=0 frigate/front/person=0 frigate/front/person/active=0 "},
		{map[string]int{"dog": 1, "person": 2}, "frigate/front/all=3 frigate/front/all/active=3 frigate/front/dog=1 frigate/front/dog/active=1 frigate/front/person=2 frigate/front/person/active=2 "},
		{map[string]int{"dog": 1, "person": 2}, ""},
		{map[string]int{"dog": 2, "person": 1}, "frigate/front/dog=2 frigate/front/dog/active=2 frigate/front/person=1 frigate/front/person/active=1 "},
		{map[string]int{}, "frigate/front/all=0 frigate/front/all/active=0 frigate/front/dog=0 frigate/front/dog/active=0 frigate/front/person=0 frigate/front/person/active=0 "},
	}
	for i, s := range steps {
		if got := summary(c.Update(s.current, t0)); got != s.want {
			t.Errorf("step %d: got %q, want %q", i, got, s.want)
		}
	}
}
