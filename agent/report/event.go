package report

import (
	"strconv"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/internal/jsonw"
)

// Meta is what an event needs besides the tracked object: the camera, the
// model that produced the detections, and the frame size box_norm divides by.
type Meta struct {
	Camera, Model, Precision string
	Width, Height            int
	// Zones, when the camera has zones, gives an object's current zones and
	// the zones it entered so far; "after" then carries current_zones and
	// entered_zones.
	Zones func(id string) (current, entered []string)
}

// eventSizeHint is enough for a typical event, so EventMessage allocates
// its payload once.
const eventSizeHint = 1024

// EventMessage encodes one tracker event for <prefix>/<device>/<camera>/events
// (QoS 1, not retained). The payload is
//
//	{"type":"new|update|end","end_reason":"timeout|shutdown|restart","before":{...}|null,"after":{...}}
//
// where end_reason is present on "end" only (timeout: unseen for max_age;
// shutdown: the agent stopped cleanly; restart: the object was open when
// the agent stopped uncleanly, and this start ended it), before is null
// for "new" and an object is
//
//	{"id","camera","label","class_id","score","top_score","box":[x1,y1,x2,y2],
//	 "box_norm":[...],"area","start_time","end_time"|null,"frame_time",
//	 "model","precision","hits"}
//
// Times are RFC 3339 UTC with milliseconds; box is in frame pixels and
// box_norm is box divided by the frame width and height. The message Time
// is the event's frame time.
func EventMessage(t topic.Tree, m Meta, ev track.Event) publish.Message {
	return publish.Message{
		Topic:   t.Events(m.Camera),
		Payload: AppendEventJSON(make([]byte, 0, eventSizeHint), m, ev),
		QoS:     1,
		Time:    ev.After.FrameTime,
	}
}

// AppendEventJSON appends the EventMessage payload to buf. It allocates
// nothing when buf has room. Without memory of earlier messages, "before"
// is ev.Before as the tracker last reported it (see Events).
func AppendEventJSON(buf []byte, m Meta, ev track.Event) []byte {
	buf = appendEventHead(buf, ev)
	if ev.Type == track.EventNew {
		buf = append(buf, "null"...)
	} else {
		buf = appendObject(buf, m, &ev.Before)
	}
	buf = append(buf, `,"after":`...)
	buf = appendAfter(buf, m, &ev.After)
	return append(buf, '}')
}

// appendEventHead appends the event's type and end reason and the key of
// "before".
func appendEventHead(buf []byte, ev track.Event) []byte {
	buf = append(buf, `{"type":`...)
	buf = jsonw.String(buf, string(ev.Type))
	if ev.Type == track.EventEnd && ev.Reason != "" {
		buf = append(buf, `,"end_reason":`...)
		buf = jsonw.String(buf, string(ev.Reason))
	}
	return append(buf, `,"before":`...)
}

// appendAfter appends o with the zones m.Zones gives it (when set).
func appendAfter(buf []byte, m Meta, o *track.Object) []byte {
	buf = appendObject(buf, m, o)
	if m.Zones != nil {
		// Reopen the object.
		buf = buf[:len(buf)-1]
		cur, entered := m.Zones(o.ID)
		buf = append(buf, `,"current_zones":`...)
		buf = appendStrings(buf, cur)
		buf = append(buf, `,"entered_zones":`...)
		buf = appendStrings(buf, entered)
		buf = append(buf, '}')
	}
	return buf
}

// Events encodes one camera's tracker events as EventMessage does, but
// with "before" the object exactly as the previous message about it showed
// it ("after" there, zones included): it moves forward with every message,
// including the updates a camera with zones sends when only an object's
// zones changed, which the tracker does not see. "before" of an object
// this encoder never saw (the "end" of a previous run's object) is the
// tracker's ev.Before.
//
// An Events is not safe for concurrent use; the camera's pipeline stage
// owns it. It remembers the last message of every object that has not
// ended.
type Events struct{ sent }

// NewEvents returns the encoder for one camera's events on t.Events.
func NewEvents(t topic.Tree, camera string) *Events {
	return &Events{newSent(t.Events(camera))}
}

// sent is what an event encoder remembers: its topic and the last "after"
// it encoded of every object that has not ended.
type sent struct {
	topic string
	prev  map[string][]byte // object ID → its last "after", encoded
}

func newSent(topic string) sent { return sent{topic: topic, prev: map[string][]byte{}} }

// Open reports how many objects the encoder remembers (ended objects are
// forgotten).
func (s *sent) Open() int { return len(s.prev) }

// keep remembers after as ev's object's last state, or forgets the object
// at its end.
func (s *sent) keep(ev track.Event, after []byte) {
	if ev.Type == track.EventEnd {
		delete(s.prev, ev.After.ID)
	} else {
		s.prev[ev.After.ID] = append([]byte(nil), after...)
	}
}

// Message encodes ev (QoS 1, not retained, Time the event's frame time).
func (e *Events) Message(m Meta, ev track.Event) publish.Message {
	buf := appendEventHead(make([]byte, 0, eventSizeHint), ev)
	prev, seen := e.prev[ev.After.ID]
	switch {
	case ev.Type == track.EventNew:
		buf = append(buf, "null"...)
	case seen:
		buf = append(buf, prev...)
	default:
		buf = appendObject(buf, m, &ev.Before)
	}
	buf = append(buf, `,"after":`...)
	start := len(buf)
	buf = appendAfter(buf, m, &ev.After)
	e.keep(ev, buf[start:])
	buf = append(buf, '}')
	return publish.Message{Topic: e.topic, Payload: buf, QoS: 1, Time: ev.After.FrameTime}
}

func appendStrings(buf []byte, ss []string) []byte {
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonw.String(buf, s)
	}
	return append(buf, ']')
}

func appendObject(buf []byte, m Meta, o *track.Object) []byte {
	w, h := float32(max(m.Width, 1)), float32(max(m.Height, 1))
	b := o.Box
	buf = append(buf, `{"id":`...)
	buf = jsonw.String(buf, o.ID)
	buf = append(buf, `,"camera":`...)
	buf = jsonw.String(buf, m.Camera)
	buf = append(buf, `,"label":`...)
	buf = jsonw.String(buf, o.Label)
	buf = append(buf, `,"class_id":`...)
	buf = strconv.AppendInt(buf, int64(o.ClassID), 10)
	buf = append(buf, `,"score":`...)
	buf = jsonw.Float(buf, o.Score, 4)
	buf = append(buf, `,"top_score":`...)
	buf = jsonw.Float(buf, o.TopScore, 4)
	buf = append(buf, `,"box":[`...)
	buf = jsonw.Floats(buf, 1, b.X1, b.Y1, b.X2, b.Y2)
	buf = append(buf, `],"box_norm":[`...)
	buf = jsonw.Floats(buf, 4, b.X1/w, b.Y1/h, b.X2/w, b.Y2/h)
	buf = append(buf, `],"area":`...)
	buf = jsonw.Float(buf, o.Area, 1)
	buf = append(buf, `,"start_time":`...)
	buf = jsonw.Time(buf, o.Start)
	buf = append(buf, `,"end_time":`...)
	buf = jsonw.Time(buf, o.End)
	buf = append(buf, `,"frame_time":`...)
	buf = jsonw.Time(buf, o.FrameTime)
	buf = append(buf, `,"model":`...)
	buf = jsonw.String(buf, m.Model)
	buf = append(buf, `,"precision":`...)
	buf = jsonw.String(buf, m.Precision)
	buf = append(buf, `,"hits":`...)
	buf = strconv.AppendInt(buf, int64(o.Hits), 10)
	return append(buf, '}')
}

// WantsSnapshot reports whether ev shows the object's best frame so far, so
// a snapshot is worth taking: on "new", and on an "update" whose top score
// rose. Never on "end" (the object is gone from the frame).
func WantsSnapshot(ev track.Event) bool {
	switch ev.Type {
	case track.EventNew:
		return true
	case track.EventUpdate:
		return ev.After.TopScore > ev.Before.TopScore
	}
	return false
}
