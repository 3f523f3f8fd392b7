package report

import (
	"strconv"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/internal/jsonw"
)

// FrigateEvents encodes one camera's tracker events as the messages Frigate
// publishes on <prefix>/events (mqtt.compat = "frigate"), so consumers
// written for Frigate read them unchanged:
//
//	{"type":"new|update|end","before":{...},"after":{...}}
//
// "after" is the object now; "before" is the object as the previous
// message about it showed it (Frigate's obj.previous), so it moves forward
// with every update, zone changes included. On "new", which has no
// previous message, before is after. An object is
//
//	{"id","camera","frame_time","snapshot":null,"label","sub_label":null,
//	 "top_score","false_positive":false,"start_time","end_time"|null,"score",
//	 "box":[x1,y1,x2,y2],"area","ratio","region":[0,0,width,height],
//	 "active":true,"stationary":false,"motionless_count":0,"position_changes":0,
//	 "current_zones":[...],"entered_zones":[...],"thumbnail":null,
//	 "has_snapshot":false,"has_clip":false,"attributes":{},"current_attributes":[]}
//
// with times in Unix seconds (a number with microseconds), box, area and
// region in whole frame pixels and ratio = box width / height. edgedet
// detects on the whole frame, so region is the frame. What edgedet does
// not have is constant: no sub labels, attributes, clips, stored snapshots
// nor thumbnails (the JPEG is on <prefix>/<camera>/<label>/snapshot), and
// no stationary classification (every object is active).
//
// A FrigateEvents is not safe for concurrent use; the camera's pipeline
// stage owns it. It remembers the last message of every object that has not
// ended.
type FrigateEvents struct{ sent }

// NewFrigateEvents returns the encoder for one camera's events on
// t.Events (t.Frigate should be set).
func NewFrigateEvents(t topic.Tree, camera string) *FrigateEvents {
	return &FrigateEvents{newSent(t.Events(camera))}
}

// Message encodes ev for <prefix>/events (QoS 1, not retained, Time the
// event's frame time). m.Zones, when set, gives the zones of "after"; an
// object never encoded before (an "end" of a previous run's object) gets
// its before from ev.Before with the same zones.
func (f *FrigateEvents) Message(m Meta, ev track.Event) publish.Message {
	var cur, entered []string
	if m.Zones != nil {
		cur, entered = m.Zones(ev.After.ID)
	}
	after := appendFrigateObject(make([]byte, 0, eventSizeHint/2), m, &ev.After, cur, entered)
	before, seen := f.prev[ev.After.ID]
	switch {
	case ev.Type == track.EventNew || (!seen && ev.Type != track.EventEnd):
		before = after
	case !seen:
		before = appendFrigateObject(make([]byte, 0, eventSizeHint/2), m, &ev.Before, cur, entered)
	}
	buf := make([]byte, 0, len(before)+len(after)+40)
	buf = append(buf, `{"type":`...)
	buf = jsonw.String(buf, string(ev.Type))
	buf = append(buf, `,"before":`...)
	buf = append(buf, before...)
	buf = append(buf, `,"after":`...)
	buf = append(buf, after...)
	buf = append(buf, '}')
	f.keep(ev, after)
	return publish.Message{Topic: f.topic, Payload: buf, QoS: 1, Time: ev.After.FrameTime}
}

// appendFrigateObject appends o as a Frigate tracked object.
func appendFrigateObject(buf []byte, m Meta, o *track.Object, cur, entered []string) []byte {
	b := o.Box
	x1, y1, x2, y2 := pixel(b.X1), pixel(b.Y1), pixel(b.X2), pixel(b.Y2)
	buf = append(buf, `{"id":`...)
	buf = jsonw.String(buf, o.ID)
	buf = append(buf, `,"camera":`...)
	buf = jsonw.String(buf, m.Camera)
	buf = append(buf, `,"frame_time":`...)
	buf = unixSeconds(buf, o.FrameTime)
	buf = append(buf, `,"snapshot":null,"label":`...)
	buf = jsonw.String(buf, o.Label)
	buf = append(buf, `,"sub_label":null,"top_score":`...)
	buf = jsonw.Float(buf, o.TopScore, 4)
	buf = append(buf, `,"false_positive":false,"start_time":`...)
	buf = unixSeconds(buf, o.Start)
	buf = append(buf, `,"end_time":`...)
	buf = unixSeconds(buf, o.End)
	buf = append(buf, `,"score":`...)
	buf = jsonw.Float(buf, o.Score, 4)
	buf = append(buf, `,"box":[`...)
	buf = appendInts(buf, x1, y1, x2, y2)
	buf = append(buf, `],"area":`...)
	buf = strconv.AppendInt(buf, (x2-x1)*(y2-y1), 10)
	buf = append(buf, `,"ratio":`...)
	ratio := float32(0)
	if y2 > y1 {
		ratio = float32(x2-x1) / float32(y2-y1)
	}
	buf = jsonw.Float(buf, ratio, 4)
	buf = append(buf, `,"region":[`...)
	buf = appendInts(buf, 0, 0, int64(max(m.Width, 0)), int64(max(m.Height, 0)))
	buf = append(buf, `],"active":true,"stationary":false,"motionless_count":0,"position_changes":0,"current_zones":`...)
	buf = appendStrings(buf, cur)
	buf = append(buf, `,"entered_zones":`...)
	buf = appendStrings(buf, entered)
	buf = append(buf, `,"thumbnail":null,"has_snapshot":false,"has_clip":false,"attributes":{},"current_attributes":[]}`...)
	return buf
}

// pixel rounds a box coordinate to a whole pixel; NaN and ±Inf become 0.
func pixel(v float32) int64 {
	if v != v || v > 1e9 || v < -1e9 {
		return 0
	}
	if v < 0 {
		return -int64(-v + 0.5)
	}
	return int64(v + 0.5)
}

func appendInts(buf []byte, vs ...int64) []byte {
	for i, v := range vs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, v, 10)
	}
	return buf
}

// unixSeconds appends t as Unix seconds with microseconds, or null when t
// is zero.
func unixSeconds(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(buf, "null"...)
	}
	us := t.UnixMicro()
	if us < 0 {
		buf = append(buf, '-')
		us = -us
	}
	buf = strconv.AppendInt(buf, us/1e6, 10)
	buf = append(buf, '.')
	frac := us % 1e6
	for d := int64(1e5); d > 1 && frac < d; d /= 10 {
		buf = append(buf, '0')
	}
	return strconv.AppendInt(buf, frac, 10)
}
