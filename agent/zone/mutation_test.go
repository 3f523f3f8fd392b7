package zone

import (
	"math"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
)

// Tests here pin behaviours that a full mutation run (scripts/mutate)
// showed the other tests did not: each one fails for a specific operator
// change.

// Counts are published as decimal numbers, also from 10 on.
func TestCountsPayloadIsDecimal(t *testing.T) {
	c := NewCounts(testTopics, "porch")
	msgs := c.Update(zl{"drive": {"car": 10, "person": 123}}, t0)
	if got, want := summary(msgs), "drive/car=10 drive/person=123 "; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Every edge of a single-polygon mask is inside, including the edges that
// are the mask's bounding box.
func TestMaskEdgesOfOnePolygon(t *testing.T) {
	m := newMask(t, square) // x, y in [10, 20]
	cases := []struct {
		name string
		b    detection.Box // bottom-centre in the comment
		want bool
	}{
		{"left edge", box(5, 0, 15, 15), true},    // (10, 15)
		{"right edge", box(15, 0, 25, 15), true},  // (20, 15)
		{"top edge", box(10, 0, 20, 10), true},    // (15, 10)
		{"bottom edge", box(10, 0, 20, 20), true}, // (15, 20)
		{"top-left vertex", box(5, 0, 15, 10), true},
		{"bottom-right vertex", box(15, 0, 25, 20), true},
		{"just left", box(4, 0, 14, 15), false},   // (9, 15)
		{"just right", box(16, 0, 26, 15), false}, // (21, 15)
		{"just below", box(10, 0, 20, 21), false}, // (15, 21)
	}
	for _, c := range cases {
		if got := m.Contains(c.b); got != c.want {
			x, y := BottomCentre(c.b)
			t.Errorf("%s: Contains(bottom-centre (%g, %g)) = %v, want %v", c.name, x, y, got, c.want)
		}
	}
}

// A mask of one polygon filters like one of several.
func TestMaskFilterOnePolygon(t *testing.T) {
	m := newMask(t, band)
	dets := []detection.Detection{
		det("in", box(100, 300, 200, 420)),  // (150,420) in band
		det("out", box(100, 300, 200, 399)), // (150,399) above it
	}
	got := m.Filter(dets)
	if len(got) != 1 || got[0].Label != "out" {
		t.Fatalf("Filter kept %+v, want only \"out\"", got)
	}
}

// Collinear points enclose no area wherever their line lies, not only on
// lines through the origin; -Inf is as invalid as +Inf.
func TestPolygonChecksOffOrigin(t *testing.T) {
	cases := []struct {
		pts  []Point
		want string
	}{
		{[]Point{{0, 1}, {1, 1}, {5, 1}}, "3 points enclose no area (all on one line)"},
		{[]Point{{100, 400}, {200, 400}, {640, 400}, {300, 400}}, "4 points enclose no area (all on one line)"},
		{[]Point{{3, 0}, {3, 7}, {3, 2}}, "3 points enclose no area (all on one line)"},
		{[]Point{{0, 0}, {math.Inf(-1), 1}, {5, 5}}, "point 1 (-Inf, 1) is not finite"},
		{[]Point{{0, 0}, {1, math.Inf(-1)}, {5, 5}}, "point 1 (1, -Inf) is not finite"},
	}
	for _, c := range cases {
		err := checkPolygon(c.pts)
		if err == nil || err.Error() != c.want {
			t.Errorf("checkPolygon(%v) = %v, want %q", c.pts, err, c.want)
		}
		z := validZone()
		z.Points = c.pts
		if err := z.Validate(); err == nil || !strings.Contains(err.Error(), "points: "+c.want) {
			t.Errorf("Validate with points %v = %v, want it to contain %q", c.pts, err, "points: "+c.want)
		}
	}
	// A thin triangle off the origin does enclose some area.
	if err := checkPolygon([]Point{{0, 1}, {1, 1}, {5, 2}}); err != nil {
		t.Errorf("thin triangle: %v", err)
	}
}

// `objects = []` (an empty, non-nil list, as TOML decodes it) means all
// labels, like a missing objects key.
func TestEmptyObjectsListAllowsAllLabels(t *testing.T) {
	c := zoneCfg("driveway", band, 1)
	c.Objects = []string{}
	tr := newTracker(t, c)
	tr.Update([]track.Object{obj("a", "car", inBand), obj("b", "dog", inBand)})
	for _, id := range []string{"a", "b"} {
		if got := state(tr, id); got != inDrive {
			t.Errorf("%s: %s, want %s", id, got, inDrive)
		}
	}
	if got := tr.Counts()["driveway"]; got["car"] != 1 || got["dog"] != 1 || len(got) != 2 {
		t.Errorf("counts %v, want car 1, dog 1", got)
	}
}

// A label change of an object that is in no zone changes no zones.
func TestRelabelOutsideZonesIsNoChange(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 1))
	tr.Update([]track.Object{obj("a", "car", aboveBand)})
	tr.Update([]track.Object{obj("a", "truck", aboveBand)})
	if tr.ZonesChanged("a") || tr.Changed() {
		t.Fatalf("relabelling outside all zones: ZonesChanged %v, Changed %v, want false, false", tr.ZonesChanged("a"), tr.Changed())
	}
	// The relabelled object still enters normally.
	tr.Update([]track.Object{obj("a", "truck", inBand)})
	if got := state(tr, "a"); got != inDrive || !tr.ZonesChanged("a") {
		t.Fatalf("after moving in: %s (changed %v), want %s", got, tr.ZonesChanged("a"), inDrive)
	}
}

// wantZones checks Zones(id) exactly: lengths included, so an empty name
// cannot hide (state prints []string{""} as []).
func wantZones(t *testing.T, tr *Tracker, id string, current, entered []string) {
	t.Helper()
	cur, ent := tr.Zones(id)
	if len(cur) != len(current) || len(ent) != len(entered) ||
		strings.Join(cur, ",") != strings.Join(current, ",") || strings.Join(ent, ",") != strings.Join(entered, ",") {
		t.Fatalf("%s: zones %q, %q, want %q, %q", id, cur, ent, current, entered)
	}
}

// An object that starts over (relabelled, or a new object reusing a
// forgotten one's state) has no current or entered zones, not empty names.
func TestStartOverLeavesNoZoneNames(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 1), zoneCfg("top", top, 1))
	tr.Update([]track.Object{obj("a", "car", inBand)})
	wantZones(t, tr, "a", []string{"driveway"}, []string{"driveway"})
	tr.Update([]track.Object{obj("a", "truck", aboveBand)})
	wantZones(t, tr, "a", nil, nil)

	tr.Update([]track.Object{obj("b", "car", inBand)}) // a forgotten
	wantZones(t, tr, "b", []string{"driveway"}, []string{"driveway"})
	tr.Update([]track.Object{obj("c", "car", aboveBand)}) // b forgotten; c reuses a state
	wantZones(t, tr, "c", nil, nil)
	tr.Update([]track.Object{obj("d", "car", aboveBand)}) // c, never in a zone, forgotten
	wantZones(t, tr, "d", nil, nil)
	tr.Update([]track.Object{obj("d", "car", inTop)})
	wantZones(t, tr, "d", []string{"top"}, []string{"top"})
}

// A Tracker without zones keeps no state: however many objects it sees,
// Update does not allocate.
func TestNoZonesKeepsNoState(t *testing.T) {
	tr := newTracker(t)
	const runs = 200
	// Each update passes one object more: a Tracker keeping them would
	// have to grow. AllocsPerRun runs once more to warm up.
	all := make([]track.Object, runs+1)
	for i := range all {
		all[i] = obj(string(rune('a'+i%26))+strings.Repeat("x", i/26), "car", inBand)
	}
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		i++
		tr.Update(all[:i])
	})
	if allocs != 0 {
		t.Fatalf("Update without zones: %g allocations per call, want 0", allocs)
	}
}
