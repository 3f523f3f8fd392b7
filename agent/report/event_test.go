package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
)

var (
	testTopics = topic.Tree{Prefix: "edgedet", Device: "pi5"}
	testMeta   = Meta{Camera: "front", Model: "yolo11n", Precision: "int8", Width: 640, Height: 480}
	t0         = time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
)

// jsonObject mirrors the event object; pointers tell null from absent.
type jsonObject struct {
	ID        *string   `json:"id"`
	Camera    *string   `json:"camera"`
	Label     *string   `json:"label"`
	ClassID   *int      `json:"class_id"`
	Score     *float64  `json:"score"`
	TopScore  *float64  `json:"top_score"`
	Box       []float64 `json:"box"`
	BoxNorm   []float64 `json:"box_norm"`
	Area      *float64  `json:"area"`
	StartTime *string   `json:"start_time"`
	EndTime   *string   `json:"end_time"`
	FrameTime *string   `json:"frame_time"`
	Model     *string   `json:"model"`
	Precision *string   `json:"precision"`
	Hits      *int      `json:"hits"`
}

type jsonEvent struct {
	Type      string      `json:"type"`
	EndReason string      `json:"end_reason"`
	Before    *jsonObject `json:"before"`
	After     *jsonObject `json:"after"`
}

func object(id, label string, score, top float32, box detection.Box, start time.Time, hits int) track.Object {
	return track.Object{
		ID: id, Label: label, ClassID: 16, Score: score, TopScore: top,
		Box: box, Area: box.Area(), Start: start, LastSeen: start.Add(time.Duration(hits-1) * 100 * time.Millisecond),
		Hits: hits, FrameTime: start.Add(time.Duration(hits-1) * 100 * time.Millisecond),
	}
}

func decodeEvent(t *testing.T, payload []byte) jsonEvent {
	t.Helper()
	var ev jsonEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, payload)
	}
	// Every key must be present, including the null ones.
	var raw map[string]map[string]json.RawMessage
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		t.Fatal(err)
	}
	want := 3
	if ev.Type == string(track.EventEnd) {
		want = 4
	}
	if len(top) != want {
		t.Errorf("top-level keys = %d, want type, before, after (and end_reason on end): %s", len(top), payload)
	}
	raw = map[string]map[string]json.RawMessage{}
	for _, k := range []string{"before", "after"} {
		if string(top[k]) == "null" {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(top[k], &m); err != nil {
			t.Fatal(err)
		}
		raw[k] = m
		want := []string{"id", "camera", "label", "class_id", "score", "top_score", "box", "box_norm", "area",
			"start_time", "end_time", "frame_time", "model", "precision", "hits"}
		for _, f := range want {
			if _, ok := m[f]; !ok {
				t.Errorf("%s has no %q: %s", k, f, top[k])
			}
		}
		if len(m) != len(want) {
			t.Errorf("%s has %d keys, want %d: %s", k, len(m), len(want), top[k])
		}
	}
	return ev
}

func checkObject(t *testing.T, name string, got *jsonObject, want track.Object, m Meta) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s is null", name)
	}
	near := func(field string, g *float64, w float64, tol float64) {
		t.Helper()
		if g == nil || math.Abs(*g-w) > tol {
			t.Errorf("%s.%s = %v, want %v", name, field, deref(g), w)
		}
	}
	str := func(field string, g *string, w string) {
		t.Helper()
		if g == nil || *g != w {
			t.Errorf("%s.%s = %v, want %q", name, field, deref(g), w)
		}
	}
	str("id", got.ID, want.ID)
	str("camera", got.Camera, m.Camera)
	str("label", got.Label, want.Label)
	str("model", got.Model, m.Model)
	str("precision", got.Precision, m.Precision)
	if got.ClassID == nil || *got.ClassID != want.ClassID {
		t.Errorf("%s.class_id = %v, want %d", name, deref(got.ClassID), want.ClassID)
	}
	if got.Hits == nil || *got.Hits != want.Hits {
		t.Errorf("%s.hits = %v, want %d", name, deref(got.Hits), want.Hits)
	}
	near("score", got.Score, float64(want.Score), 1e-4)
	near("top_score", got.TopScore, float64(want.TopScore), 1e-4)
	near("area", got.Area, float64(want.Area), 0.1)
	b := want.Box
	wantBox := []float64{float64(b.X1), float64(b.Y1), float64(b.X2), float64(b.Y2)}
	wantNorm := []float64{float64(b.X1) / float64(m.Width), float64(b.Y1) / float64(m.Height),
		float64(b.X2) / float64(m.Width), float64(b.Y2) / float64(m.Height)}
	if len(got.Box) != 4 || len(got.BoxNorm) != 4 {
		t.Fatalf("%s box %v box_norm %v: want 4 numbers each", name, got.Box, got.BoxNorm)
	}
	for i := range 4 {
		if math.Abs(got.Box[i]-wantBox[i]) > 0.05 {
			t.Errorf("%s.box = %v, want %v", name, got.Box, wantBox)
		}
		if math.Abs(got.BoxNorm[i]-wantNorm[i]) > 1e-4 {
			t.Errorf("%s.box_norm = %v, want %v", name, got.BoxNorm, wantNorm)
		}
	}
	checkTime(t, name+".start_time", got.StartTime, want.Start)
	checkTime(t, name+".frame_time", got.FrameTime, want.FrameTime)
	if want.End.IsZero() {
		if got.EndTime != nil {
			t.Errorf("%s.end_time = %q, want null", name, *got.EndTime)
		}
	} else {
		checkTime(t, name+".end_time", got.EndTime, want.End)
	}
}

func checkTime(t *testing.T, name string, got *string, want time.Time) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = null, want %v", name, want)
		return
	}
	w := want.UTC().Format("2006-01-02T15:04:05.000Z")
	if *got != w {
		t.Errorf("%s = %q, want %q (RFC 3339 UTC with ms)", name, *got, w)
	}
	if _, err := time.Parse(time.RFC3339, *got); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestEventMessage(t *testing.T) {
	first := object("1740826800123-000001", "dog", 0.61, 0.61, detection.Box{X1: 100, Y1: 50, X2: 300, Y2: 410}, t0, 3)
	later := first
	later.Score, later.TopScore = 0.8, 0.8
	later.Box = detection.Box{X1: 140.5, Y1: 60.25, X2: 340, Y2: 420}
	later.Area = later.Box.Area()
	later.Hits = 9
	later.LastSeen = t0.Add(time.Second)
	later.FrameTime = later.LastSeen
	ended := later
	ended.End = later.LastSeen
	ended.FrameTime = later.LastSeen.Add(3 * time.Second)

	cases := []struct {
		name string
		ev   track.Event
	}{
		{"new", track.Event{Type: track.EventNew, After: first}},
		{"update", track.Event{Type: track.EventUpdate, Before: first, After: later}},
		{"end", track.Event{Type: track.EventEnd, Before: later, After: ended, Reason: track.EndRestart}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := EventMessage(testTopics, testMeta, tc.ev)
			if msg.Topic != "edgedet/pi5/front/events" {
				t.Errorf("topic = %q", msg.Topic)
			}
			if msg.QoS != 1 || msg.Retained {
				t.Errorf("qos %d retained %v, want 1 and false", msg.QoS, msg.Retained)
			}
			if !msg.Time.Equal(tc.ev.After.FrameTime) {
				t.Errorf("time = %v, want the frame time %v", msg.Time, tc.ev.After.FrameTime)
			}
			got := decodeEvent(t, msg.Payload)
			if got.Type != tc.name {
				t.Errorf("type = %q, want %q", got.Type, tc.name)
			}
			if tc.ev.Type == track.EventNew {
				if got.Before != nil {
					t.Errorf("before = %+v, want null", got.Before)
				}
			} else {
				checkObject(t, "before", got.Before, tc.ev.Before, testMeta)
			}
			checkObject(t, "after", got.After, tc.ev.After, testMeta)
			if tc.ev.Type == track.EventEnd && got.After.EndTime == nil {
				t.Error("end event without end_time")
			}
			if want := string(tc.ev.Reason); got.EndReason != want {
				t.Errorf("end_reason = %q, want %q", got.EndReason, want)
			}
		})
	}
}

// TestEventMessageZones: with zones, "after" lists the object's current and
// entered zones; without, the fields are absent.
func TestEventMessageZones(t *testing.T) {
	obj := object("1740826800123-000001", "car", 0.7, 0.7, detection.Box{X1: 10, Y1: 10, X2: 50, Y2: 40}, t0, 3)
	ev := track.Event{Type: track.EventUpdate, Before: obj, After: obj}
	m := testMeta
	m.Zones = func(id string) (current, entered []string) {
		if id != obj.ID {
			t.Errorf("zones asked for %q", id)
		}
		return []string{"drive"}, []string{"street", "drive"}
	}
	var got struct {
		Before map[string]any `json:"before"`
		After  struct {
			ID      string   `json:"id"`
			Current []string `json:"current_zones"`
			Entered []string `json:"entered_zones"`
		} `json:"after"`
	}
	payload := EventMessage(testTopics, m, ev).Payload
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatalf("%v: %s", err, payload)
	}
	if got.After.ID != obj.ID || len(got.After.Current) != 1 || got.After.Current[0] != "drive" ||
		len(got.After.Entered) != 2 || got.After.Entered[1] != "drive" {
		t.Errorf("after = %+v in %s", got.After, payload)
	}
	m.Zones = func(string) (current, entered []string) { return nil, nil }
	if p := string(EventMessage(testTopics, m, ev).Payload); !strings.Contains(p, `"current_zones":[],"entered_zones":[]}}`) {
		t.Errorf("no zones: %s", p)
	}
	if p := string(EventMessage(testTopics, testMeta, ev).Payload); strings.Contains(p, "zones") {
		t.Errorf("a camera without zones has zone fields: %s", p)
	}
}

func TestEventMessageEscaping(t *testing.T) {
	odd := "a \"quoted\" back\\slash\n\ttab\x01ctl é 🐕 +#/"
	m := testMeta
	m.Model = "model \"x\"\\"
	obj := object("id\"1", odd, 0.5, 0.5, detection.Box{X1: 1, Y1: 2, X2: 3, Y2: 4}, t0, 1)
	msg := EventMessage(testTopics, m, track.Event{Type: track.EventNew, After: obj})
	got := decodeEvent(t, msg.Payload)
	checkObject(t, "after", got.After, obj, m)

	// Invalid UTF-8 becomes U+FFFD and the payload stays valid JSON.
	obj.Label = "bad\xffbyte"
	msg = EventMessage(testTopics, m, track.Event{Type: track.EventNew, After: obj})
	if !json.Valid(msg.Payload) {
		t.Fatalf("invalid JSON: %q", msg.Payload)
	}
	got = decodeEvent(t, msg.Payload)
	if *got.After.Label != "bad\uFFFDbyte" {
		t.Errorf("label = %q", *got.After.Label)
	}
}

func TestEventMessageOddNumbers(t *testing.T) {
	// NaN/Inf cannot be JSON; a zero frame size must not divide by zero.
	obj := object("x", "dog", float32(math.NaN()), float32(math.Inf(1)), detection.Box{X1: 1, Y1: 2, X2: 3, Y2: 4}, t0, 1)
	m := testMeta
	m.Width, m.Height = 0, 0
	msg := EventMessage(testTopics, m, track.Event{Type: track.EventNew, After: obj})
	if !json.Valid(msg.Payload) {
		t.Fatalf("invalid JSON: %s", msg.Payload)
	}
}

func TestAppendEventJSONAllocs(t *testing.T) {
	obj := object("1740826800123-000001", "dog", 0.61, 0.61, detection.Box{X1: 100, Y1: 50, X2: 300, Y2: 410}, t0, 3)
	ev := track.Event{Type: track.EventUpdate, Before: obj, After: obj}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEventJSON(buf[:0], testMeta, ev) }); n != 0 {
		t.Errorf("AppendEventJSON allocates %v times per event, want 0", n)
	}
}

func TestWantsSnapshot(t *testing.T) {
	o := func(top float32) track.Object { return track.Object{TopScore: top} }
	cases := []struct {
		name string
		ev   track.Event
		want bool
	}{
		{"new", track.Event{Type: track.EventNew, After: o(0.4)}, true},
		{"update better", track.Event{Type: track.EventUpdate, Before: o(0.5), After: o(0.6)}, true},
		{"update same", track.Event{Type: track.EventUpdate, Before: o(0.6), After: o(0.6)}, false},
		{"update moved only", track.Event{Type: track.EventUpdate, Before: o(0.7), After: o(0.7)}, false},
		{"end", track.Event{Type: track.EventEnd, Before: o(0.5), After: o(0.9)}, false},
		{"unknown", track.Event{Type: "bogus", After: o(0.9)}, false},
	}
	for _, tc := range cases {
		if got := WantsSnapshot(tc.ev); got != tc.want {
			t.Errorf("%s: WantsSnapshot = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestEventsBeforeMovesForward: with the Events encoder, each message's
// before is the previous message's after, zones included — also for a
// zone change the pipeline reports with the same frame as Before and
// After — so the "end" after a zone update carries that update, not the
// "new" message; "new" has before null, and the encoder forgets an object
// at its end. An object it never saw takes its before from the event.
func TestEventsBeforeMovesForward(t *testing.T) {
	e := NewEvents(testTopics, "front")
	zones := []string{}
	meta := testMeta
	meta.Zones = func(string) (current, entered []string) { return zones, zones }
	box := detection.Box{X1: 10, Y1: 10, X2: 110, Y2: 210}
	o := object("id-1", "person", 0.6, 0.6, box, t0, 3)
	var last json.RawMessage
	step := func(typ track.EventType, before, after track.Object) (b, a map[string]any) {
		t.Helper()
		msg := e.Message(meta, track.Event{Type: typ, Before: before, After: after})
		if msg.Topic != testTopics.Events("front") || msg.QoS != 1 || !msg.Time.Equal(after.FrameTime) {
			t.Errorf("message %q QoS %d time %v", msg.Topic, msg.QoS, msg.Time)
		}
		var ev struct {
			Type   string          `json:"type"`
			Before json.RawMessage `json:"before"`
			After  json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(msg.Payload, &ev); err != nil {
			t.Fatalf("%v: %s", err, msg.Payload)
		}
		if ev.Type != string(typ) {
			t.Fatalf("type %q, want %q", ev.Type, typ)
		}
		switch {
		case typ == track.EventNew:
			if string(ev.Before) != "null" {
				t.Errorf("new: before %s, want null", ev.Before)
			}
		case !bytes.Equal(ev.Before, last):
			t.Errorf("%s: before is not the previous after:\nbefore %s\nprev   %s", typ, ev.Before, last)
		}
		last = ev.After
		json.Unmarshal(ev.Before, &b)
		json.Unmarshal(ev.After, &a)
		return b, a
	}
	step(track.EventNew, track.Object{}, o)
	o2 := o
	o2.Score, o2.TopScore, o2.Hits, o2.FrameTime = 0.9, 0.9, 7, o.FrameTime.Add(time.Second)
	step(track.EventUpdate, o, o2)
	zones = []string{"yard"}
	b, a := step(track.EventUpdate, o2, o2) // zones changed, nothing else
	if fmt.Sprint(b["current_zones"]) != "[]" || fmt.Sprint(a["current_zones"]) != "[yard]" {
		t.Errorf("zone change: before zones %v, after %v", b["current_zones"], a["current_zones"])
	}
	if e.Open() != 1 {
		t.Errorf("%d objects remembered, want 1", e.Open())
	}
	end := track.EndOf(o2, o, o2.FrameTime.Add(3*time.Second), track.EndTimeout) // the tracker's published: the "new" state
	b, _ = step(track.EventEnd, end.Before, end.After)
	if b["hits"] != float64(7) || fmt.Sprint(b["current_zones"]) != "[yard]" {
		t.Errorf("end: before %v, want the zone update's after (hits 7, in yard)", b)
	}
	if e.Open() != 0 {
		t.Errorf("%d objects remembered after their end", e.Open())
	}

	// An object never seen: before from the event.
	old := object("old-1", "car", 0.7, 0.8, detection.Box{X1: 1, Y1: 2, X2: 3, Y2: 4}, t0, 5)
	ev := track.EndOf(old, old, t0.Add(time.Hour), track.EndRestart)
	var got struct {
		Before struct {
			ID   string `json:"id"`
			Hits int    `json:"hits"`
		} `json:"before"`
	}
	if err := json.Unmarshal(e.Message(meta, ev).Payload, &got); err != nil || got.Before.ID != "old-1" || got.Before.Hits != 5 {
		t.Errorf("end of an unknown object: %+v, %v", got, err)
	}
	if e.Open() != 0 {
		t.Errorf("the end of an unknown object is remembered")
	}
}
