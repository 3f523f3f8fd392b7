// Package track turns the per-frame detections of one camera into tracked
// objects and Frigate-style lifecycle events: "new" when an object is
// confirmed, "update" when it changed meaningfully since it was last
// published, "end" when it has not been seen for a while.
//
// A Tracker is plain Go, holds no goroutines and is not safe for concurrent
// use: the camera's pipeline stage owns it and calls Update once per frame
// (including frames without detections, so objects can end).
package track

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/cfgtypes"
)

// Config tunes a Tracker. The zero value of a field means "use the default"
// (see WithDefaults); Validate rejects everything else that is out of range.
type Config struct {
	// MinHits is how many consecutive frames a new object must be matched
	// in before it is reported with a "new" event (default 3).
	MinHits int
	// MaxAge ends a reported object that has not been matched for this long
	// (default 3s). It is a duration, not a frame count, because the
	// detection rate varies.
	MaxAge time.Duration
	// IoUMatch is the minimum IoU for associating a detection with a track
	// of the same class (default 0.3). Below it, a pair still matches when
	// the centres are closer than half the track box's diagonal, so fast
	// movers whose boxes no longer overlap keep their identity.
	IoUMatch float32
	// MoveThreshold is the centre shift, as a fraction of the last
	// published box's width (horizontally) or height (vertically), beyond
	// which a move is worth an "update" (default 0.1).
	MoveThreshold float32
}

// Defaults used by WithDefaults.
const (
	DefaultMinHits       = 3
	DefaultMaxAge        = 3 * time.Second
	DefaultIoUMatch      = 0.3
	DefaultMoveThreshold = 0.1
)

// WithDefaults returns c with every zero field set to its default. It does
// not touch non-zero fields, so an invalid value stays for Validate to
// report.
func (c Config) WithDefaults() Config {
	if c.MinHits == 0 {
		c.MinHits = DefaultMinHits
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.IoUMatch == 0 {
		c.IoUMatch = DefaultIoUMatch
	}
	if c.MoveThreshold == 0 {
		c.MoveThreshold = DefaultMoveThreshold
	}
	return c
}

// Validate reports every invalid field, named as in the config file.
func (c Config) Validate() error {
	var errs []error
	if c.MinHits < 1 {
		errs = append(errs, fmt.Errorf("min_hits: %d must be >= 1", c.MinHits))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("max_age: %v must be > 0", c.MaxAge))
	}
	if err := cfgtypes.Float32("iou_match", c.IoUMatch, cfgtypes.UnitOpen); err != nil {
		errs = append(errs, err)
	}
	if err := cfgtypes.Float32("move_threshold", c.MoveThreshold, cfgtypes.NonNegative); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Object is the state of one tracked object.
type Object struct {
	// ID is "<unix start ms>-<per-tracker counter, at least 6 hex digits>",
	// e.g. "1700000000000-00002a": stable for the object's life and unique
	// per camera as long as frame times do not go back across restarts.
	ID      string
	Label   string
	ClassID int
	// Score is the score of the latest matched detection; TopScore the
	// highest so far.
	Score    float32
	TopScore float32
	// Box is the latest matched box in frame pixels; Area its area.
	Box  detection.Box
	Area float32
	// Start is the time of the first frame the object was detected in;
	// LastSeen of the latest one it was matched in.
	Start, LastSeen time.Time
	// End is zero while the object is active. On "end" it is LastSeen:
	// the last time the object was actually observed.
	End time.Time
	// Hits counts the frames the object was matched in.
	Hits int
	// FrameTime is the time of the frame that produced this state (for an
	// "end", the frame — or Flush time — at which the end was decided).
	FrameTime time.Time
}

// EventType names a lifecycle event.
type EventType string

// Event types.
const (
	EventNew    EventType = "new"
	EventUpdate EventType = "update"
	EventEnd    EventType = "end"
)

// EndReason says why an object ended.
type EndReason string

// End reasons.
const (
	// EndTimeout: the object was not matched for MaxAge (Update).
	EndTimeout EndReason = "timeout"
	// EndShutdown: the agent stopped cleanly with the object in view (Flush).
	EndShutdown EndReason = "shutdown"
	// EndRestart: the object was open when the agent stopped uncleanly
	// (killed, crashed, power lost); the next start ends it. The tracker
	// never produces it; the agent does, from the objects it persisted.
	EndRestart EndReason = "restart"
)

// Event is one lifecycle change. Before is the previously published state
// of the object (zero for "new"); After is its state now. Reason is set on
// "end" events only.
type Event struct {
	Type          EventType
	Before, After Object
	Reason        EndReason
}

// track is one tracked object, tentative until reported.
type track struct {
	obj       Object // current state; ID empty until reported
	published Object // last state sent in an event
	seq       uint64 // creation order, the ID's counter
	reported  bool
	matched   bool // scratch: matched in the current frame
}

// pair is a candidate association between tracks[ti] and dets[di].
type pair struct {
	ti, di int32
	// tier 0 matched by IoU (cost = -IoU), tier 1 by centroid distance
	// (cost = distance / track diagonal); lower sorts first.
	tier uint8
	cost float32
}

// Tracker associates one camera's detections across frames.
type Tracker struct {
	cfg    Config
	tracks []track
	seq    uint64

	// Scratch reused across Update calls.
	pairs   []pair
	detUsed []bool
}

// New returns a Tracker for cfg with defaults applied to its zero fields.
func New(cfg Config) (*Tracker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("track config: %w", err)
	}
	return &Tracker{cfg: cfg}, nil
}

// Update associates the frame's detections (already NMS'd, in frame
// pixels) with the tracks and appends the events the frame causes to dst,
// sorted by object ID. dets is neither modified nor retained. Call it for
// every processed frame, with nil dets when nothing was detected.
//
// Association is greedy over same-class pairs, best first: pairs with IoU
// >= IoUMatch by descending IoU, then pairs whose centres are closer than
// half the track box's diagonal by ascending distance. Each track and each
// detection is used at most once; unmatched detections start tentative
// tracks.
//
// A track is reported ("new") on its MinHits-th consecutive match; a
// tentative track that misses a frame is dropped silently. A reported
// track emits "update" only when its score beats the published top score
// or its centre moved more than MoveThreshold of the published box size;
// it emits "end" once it has not been matched for MaxAge.
//
// Update does not allocate in steady state when dst has room; it allocates
// an ID string when an object is reported and grows its scratch buffers
// when the number of tracks or detections grows.
func (t *Tracker) Update(frameTime time.Time, dets []detection.Detection, dst []Event) []Event {
	start := len(dst)
	t.match(frameTime, dets)

	for i := range t.tracks {
		tr := &t.tracks[i]
		if !tr.matched {
			continue
		}
		tr.obj.FrameTime = frameTime
		switch {
		case !tr.reported && tr.obj.Hits >= t.cfg.MinHits:
			tr.reported = true
			tr.obj.ID = makeID(tr.obj.Start, tr.seq)
			tr.published = tr.obj
			dst = append(dst, Event{Type: EventNew, After: tr.obj})
		case tr.reported && t.changed(tr):
			dst = append(dst, Event{Type: EventUpdate, Before: tr.published, After: tr.obj})
			tr.published = tr.obj
		}
	}

	// Unmatched detections start tentative tracks (in detection order, so
	// the counter and hence ID order is deterministic).
	for di := range dets {
		if t.detUsed[di] {
			continue
		}
		t.seq++
		d := &dets[di]
		tr := track{seq: t.seq, matched: true}
		tr.obj = Object{
			Label:     d.Label,
			ClassID:   d.ClassID,
			Score:     d.Score,
			TopScore:  topScore(d.Score),
			Box:       d.Box,
			Area:      d.Box.Area(),
			Start:     frameTime,
			LastSeen:  frameTime,
			Hits:      1,
			FrameTime: frameTime,
		}
		if t.cfg.MinHits <= 1 {
			tr.reported = true
			tr.obj.ID = makeID(frameTime, tr.seq)
			tr.published = tr.obj
			dst = append(dst, Event{Type: EventNew, After: tr.obj})
		}
		t.tracks = append(t.tracks, tr)
	}

	// Expire: tentative tracks die on their first miss, reported ones
	// after MaxAge without a match. Compact in place, keeping order.
	kept := t.tracks[:0]
	for i := range t.tracks {
		tr := &t.tracks[i]
		if !tr.matched {
			if !tr.reported {
				continue
			}
			if frameTime.Sub(tr.obj.LastSeen) >= t.cfg.MaxAge {
				dst = append(dst, endEvent(tr, frameTime, EndTimeout))
				continue
			}
		}
		kept = append(kept, *tr)
	}
	clear(t.tracks[len(kept):]) // drop string references
	t.tracks = kept

	sortEvents(dst[start:])
	return dst
}

// match fills tr.matched for every track and t.detUsed for every detection,
// and applies each matched detection to its track.
func (t *Tracker) match(frameTime time.Time, dets []detection.Detection) {
	t.detUsed = slices.Grow(t.detUsed[:0], len(dets))[:len(dets)]
	clear(t.detUsed)
	for i := range t.tracks {
		t.tracks[i].matched = false
	}

	pairs := t.pairs[:0]
	for ti := range t.tracks {
		tb := t.tracks[ti].obj.Box
		cls := t.tracks[ti].obj.ClassID
		tcx, tcy := centre(tb)
		w, h := tb.X2-tb.X1, tb.Y2-tb.Y1
		diag := float32(math.Sqrt(float64(w*w + h*h)))
		for di := range dets {
			d := &dets[di]
			if d.ClassID != cls {
				continue
			}
			if iou := detection.IoU(tb, d.Box); iou >= t.cfg.IoUMatch {
				pairs = append(pairs, pair{ti: int32(ti), di: int32(di), tier: 0, cost: -iou})
				continue
			}
			if !(diag > 0) {
				continue
			}
			dcx, dcy := centre(d.Box)
			dx, dy := dcx-tcx, dcy-tcy
			dist := float32(math.Sqrt(float64(dx*dx + dy*dy)))
			if dist < 0.5*diag {
				pairs = append(pairs, pair{ti: int32(ti), di: int32(di), tier: 1, cost: dist / diag})
			}
		}
	}
	slices.SortFunc(pairs, comparePairs)
	t.pairs = pairs

	for _, p := range pairs {
		tr := &t.tracks[p.ti]
		if tr.matched || t.detUsed[p.di] {
			continue
		}
		tr.matched = true
		t.detUsed[p.di] = true
		d := &dets[p.di]
		o := &tr.obj
		o.Score = d.Score
		if d.Score > o.TopScore { // false for NaN, unlike max
			o.TopScore = d.Score
		}
		o.Box = d.Box
		o.Area = d.Box.Area()
		o.LastSeen = frameTime
		o.Hits++
	}
}

// changed reports whether tr's current state differs meaningfully from
// its published one.
func (t *Tracker) changed(tr *track) bool {
	cur, pub := &tr.obj, &tr.published
	if cur.TopScore > pub.TopScore {
		return true
	}
	return moved(pub.Box, cur.Box, t.cfg.MoveThreshold)
}

// moved reports whether b's centre shifted from a's by more than thr of a's
// width horizontally or of a's height vertically. Degenerate sizes count
// as one pixel.
func moved(a, b detection.Box, thr float32) bool {
	acx, acy := centre(a)
	bcx, bcy := centre(b)
	w := max(a.X2-a.X1, 1)
	h := max(a.Y2-a.Y1, 1)
	return abs(bcx-acx) > thr*w || abs(bcy-acy) > thr*h
}

// endEvent ends tr at decision time at, for reason.
func endEvent(tr *track, at time.Time, reason EndReason) Event {
	return EndOf(tr.published, tr.obj, at, reason)
}

// EndOf builds the "end" event of an object whose last published state is
// published and whose current state is cur, decided at time at: After is
// cur with End set to its LastSeen and FrameTime to at.
func EndOf(published, cur Object, at time.Time, reason EndReason) Event {
	cur.End = cur.LastSeen
	cur.FrameTime = at
	return Event{Type: EventEnd, Before: published, After: cur, Reason: reason}
}

// Active returns the reported, not yet ended objects, sorted by ID.
func (t *Tracker) Active() []Object {
	out := t.AppendActive(nil)
	slices.SortFunc(out, func(a, b Object) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// AppendActive appends the reported, active objects to dst, in tracking
// order (unsorted); with room in dst it does not allocate.
func (t *Tracker) AppendActive(dst []Object) []Object {
	for i := range t.tracks {
		if t.tracks[i].reported {
			dst = append(dst, t.tracks[i].obj)
		}
	}
	return dst
}

// Counts returns how many reported, active objects there are per label.
// It changes only when Update or Flush emit "new" or "end".
func (t *Tracker) Counts() map[string]int {
	m := make(map[string]int)
	for i := range t.tracks {
		if t.tracks[i].reported {
			m[t.tracks[i].obj.Label]++
		}
	}
	return m
}

// Flush ends every reported track, as of now, with reason EndShutdown, and
// forgets all tracks, tentative ones included. Events are sorted by ID.
// The Tracker stays usable; IDs keep counting.
func (t *Tracker) Flush(now time.Time) []Event {
	var out []Event
	for i := range t.tracks {
		if t.tracks[i].reported {
			out = append(out, endEvent(&t.tracks[i], now, EndShutdown))
		}
	}
	clear(t.tracks)
	t.tracks = t.tracks[:0]
	sortEvents(out)
	return out
}

func sortEvents(ev []Event) {
	slices.SortFunc(ev, compareEvents)
}

func compareEvents(a, b Event) int {
	return cmp.Compare(a.After.ID, b.After.ID)
}

func comparePairs(a, b pair) int {
	if c := cmp.Compare(a.tier, b.tier); c != 0 {
		return c
	}
	if c := cmp.Compare(a.cost, b.cost); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ti, b.ti); c != 0 {
		return c
	}
	return cmp.Compare(a.di, b.di)
}

// makeID formats "<unix ms>-<seq as at least 6 hex digits>".
func makeID(start time.Time, seq uint64) string {
	var buf [48]byte
	b := strconv.AppendInt(buf[:0], start.UnixMilli(), 10)
	b = append(b, '-')
	var hb [16]byte
	hex := strconv.AppendUint(hb[:0], seq, 16)
	for n := len(hex); n < 6; n++ {
		b = append(b, '0')
	}
	b = append(b, hex...)
	return string(b)
}

// topScore is s, or 0 when s is NaN, so later scores can beat it.
func topScore(s float32) float32 {
	if s != s {
		return 0
	}
	return s
}

func centre(b detection.Box) (x, y float32) {
	return (b.X1 + b.X2) / 2, (b.Y1 + b.Y2) / 2
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
