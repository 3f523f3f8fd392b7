package zone

import (
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/agent/track"
)

// zoneDef is a configured zone, ready to test points against.
type zoneDef struct {
	name    string
	poly    polygon
	inertia int
	objects []string       // nil: all labels
	counts  map[string]int // label -> objects currently in the zone
}

// allows reports whether the zone tracks label.
func (z *zoneDef) allows(label string) bool {
	return z.objects == nil || slices.Contains(z.objects, label)
}

// zoneState is one object's state for one zone.
type zoneState struct {
	// run counts consecutive updates on the other side of the zone's
	// boundary: inside while not current, outside while current.
	run     int
	current bool
	entered bool
}

// object is the zone state of one tracked object.
type object struct {
	label   string
	gen     uint64 // Tracker.gen of the last Update that passed the object
	changed bool   // current (and maybe entered) changed in that Update
	zs      []zoneState
	current []string // names of current zones, in config order
	entered []string // names of zones entered so far, in order of first entry
}

// Tracker follows which of one camera's zones each tracked object is in.
//
// Call Update once per processed frame with the tracker's active objects;
// an object is keyed by its ID. Per zone, an object that is outside enters
// once it has been inside (bottom-centre in the polygon and label allowed)
// for Inertia consecutive updates; it then stays current until it has
// been outside for Inertia consecutive updates. Entered zones are
// remembered for the object's life, so an object that left a zone still
// lists it as entered.
//
// An object is forgotten, and leaves its zones at once, when an Update
// does not pass it (so the caller need not signal ends separately:
// Update(nil) forgets everything, e.g. at shutdown).
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	zones   []zoneDef
	objs    map[string]*object
	free    []*object // forgotten objects, for reuse
	gen     uint64
	changed bool
	counts  map[string]map[string]int // zone -> zones[i].counts
}

// NewTracker returns a Tracker for one camera's zones, each with its
// defaults applied; zones is not retained. All zones must name the same
// camera and differ in name. No zones gives a Tracker that keeps no state.
func NewTracker(zones []Config) (*Tracker, error) {
	if err := ValidateAll(zones, nil); err != nil {
		return nil, fmt.Errorf("zone config: %w", err)
	}
	t := &Tracker{
		zones:  make([]zoneDef, 0, len(zones)),
		objs:   map[string]*object{},
		counts: make(map[string]map[string]int, len(zones)),
	}
	for i, c := range zones {
		if c.Camera != zones[0].Camera {
			return nil, fmt.Errorf("zone config: zone[%d].camera: %q, but zone[0] is for camera %q (a Tracker serves one camera)", i, c.Camera, zones[0].Camera)
		}
		c = c.WithDefaults()
		z := zoneDef{
			name:    c.Name,
			poly:    newPolygon(c.Points),
			inertia: c.Inertia,
			counts:  map[string]int{},
		}
		if len(c.Objects) > 0 {
			z.objects = slices.Clone(c.Objects)
			// Known labels start at 0, so a first publish clears counts
			// retained by a previous run.
			for _, l := range c.Objects {
				z.counts[l] = 0
			}
		}
		t.zones = append(t.zones, z)
		t.counts[z.name] = z.counts
	}
	return t, nil
}

// Update applies one frame's objects: typically what track.Tracker.Active
// returns after the frame's track.Tracker.Update, i.e. the reported,
// not-ended objects, with their latest box (an object not matched in this
// frame keeps its last box and counts as still there). Only ID, Label and
// Box are used; objects with an empty ID (never reported) are ignored, and
// an ID passed twice counts once. Objects from earlier updates that objs
// does not contain are forgotten. If an object's label changes, its zone
// state starts over.
//
// objs is neither modified nor retained. Update does not allocate in
// steady state; it allocates when it first sees an object, when an object
// enters its first zones, and when a label is first counted in a zone.
func (t *Tracker) Update(objs []track.Object) {
	t.gen++
	t.changed = false
	if len(t.zones) == 0 {
		return
	}
	for i := range objs {
		o := &objs[i]
		if o.ID == "" {
			continue
		}
		st := t.objs[o.ID]
		relabelled := false
		switch {
		case st == nil:
			st = t.newObject(o.Label)
			t.objs[o.ID] = st
		case st.gen == t.gen:
			continue // duplicate ID in objs
		case st.label != o.Label:
			relabelled = len(st.current) > 0
			t.leaveAll(st)
			t.reset(st, o.Label)
		}
		st.gen = t.gen
		st.changed = t.step(st, o) || relabelled
		if st.changed {
			t.changed = true
		}
	}
	for id, st := range t.objs {
		if st.gen != t.gen {
			t.leaveAll(st)
			delete(t.objs, id)
			t.reset(st, "")
			t.free = append(t.free, st)
		}
	}
}

// step advances st's per-zone state by one update with o's box and
// reports whether st's current zones changed.
func (t *Tracker) step(st *object, o *track.Object) bool {
	x, y := BottomCentre(o.Box)
	changed := false
	for zi := range t.zones {
		z := &t.zones[zi]
		s := &st.zs[zi]
		inside := z.allows(st.label) && z.poly.contains(x, y)
		if inside == s.current {
			s.run = 0
			continue
		}
		s.run++
		if s.run < z.inertia {
			continue
		}
		s.run = 0
		s.current = inside
		changed = true
		if inside {
			z.counts[st.label]++
			if !s.entered {
				s.entered = true
				st.entered = append(st.entered, z.name)
			}
		} else {
			z.counts[st.label]--
		}
	}
	if changed {
		st.current = st.current[:0]
		for zi := range t.zones {
			if st.zs[zi].current {
				st.current = append(st.current, t.zones[zi].name)
			}
		}
	}
	return changed
}

// leaveAll takes st out of its current zones' counts, at once.
func (t *Tracker) leaveAll(st *object) {
	for zi := range st.zs {
		if st.zs[zi].current {
			t.zones[zi].counts[st.label]--
			t.changed = true
		}
	}
}

// newObject returns a fresh object state for label, reusing a forgotten
// one when there is one.
func (t *Tracker) newObject(label string) *object {
	if n := len(t.free); n > 0 {
		st := t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
		st.label = label
		return st
	}
	return &object{label: label, zs: make([]zoneState, len(t.zones))}
}

// reset clears st's zone state and gives it label.
func (t *Tracker) reset(st *object, label string) {
	clear(st.zs)
	clear(st.current)
	clear(st.entered)
	st.label, st.current, st.entered, st.changed = label, st.current[:0], st.entered[:0], false
}

// Zones returns the zones object id is currently in and the zones it has
// entered so far (current in config order, entered in order of first
// entry); nil, nil for an unknown or forgotten id. The slices belong to
// the Tracker: do not modify them; they are valid until the next Update.
// Zones does not allocate.
func (t *Tracker) Zones(id string) (current, entered []string) {
	st := t.objs[id]
	if st == nil {
		return nil, nil
	}
	return st.current[:len(st.current):len(st.current)], st.entered[:len(st.entered):len(st.entered)]
}

// ZonesChanged reports whether object id's current zones (and so perhaps
// its entered zones) changed in the last Update: a reason to publish an
// "update" event for it.
func (t *Tracker) ZonesChanged(id string) bool {
	st := t.objs[id]
	return st != nil && st.gen == t.gen && st.changed
}

// Counts returns, per zone name, per label, how many objects are
// currently in the zone. Every zone is present; a zone with Objects starts
// with those labels at 0, and a label once counted stays, possibly at 0,
// so a drop to 0 is visible. The maps belong to the Tracker and change in
// place on every Update: do not modify them. Counts does not allocate.
// Pass them to Counts.Update to get retained messages for the changes.
func (t *Tracker) Counts() map[string]map[string]int {
	return t.counts
}

// Changed reports whether the last Update moved any object into or out of
// a zone (forgetting one that was in a zone included). When it is false,
// Counts are what they were before that Update.
func (t *Tracker) Changed() bool {
	return t.changed
}
