package zone

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
)

func obj(id, label string, b detection.Box) track.Object {
	return track.Object{ID: id, Label: label, Box: b, Area: b.Area()}
}

// Boxes relative to band (y in [400,480]) and top (y in [0,100]).
var (
	inBand    = box(100, 300, 200, 420) // bottom-centre (150,420)
	inBand2   = box(110, 302, 210, 424) // jittered, still in the band
	aboveBand = box(100, 200, 200, 300) // bottom-centre (150,300): in neither
	inTop     = box(100, 20, 200, 80)   // bottom-centre (150,80)
)

var top = []Point{{0, 0}, {640, 0}, {640, 100}, {0, 100}}

func zoneCfg(name string, pts []Point, inertia int, objects ...string) Config {
	return Config{Camera: "porch", Name: name, Points: pts, Inertia: inertia, Objects: objects}
}

func newTracker(tb testing.TB, zones ...Config) *Tracker {
	tb.Helper()
	tr, err := NewTracker(zones)
	if err != nil {
		tb.Fatalf("NewTracker: %v", err)
	}
	return tr
}

// state formats id's zones as "current=[a b] entered=[a b]".
func state(tr *Tracker, id string) string {
	cur, ent := tr.Zones(id)
	return fmt.Sprintf("current=%v entered=%v", cur, ent)
}

type step struct {
	objs    []track.Object
	want    map[string]string // id -> state
	changed []string          // ids whose zones changed
}

func run(t *testing.T, tr *Tracker, steps []step) {
	t.Helper()
	for i, s := range steps {
		tr.Update(s.objs)
		for id, want := range s.want {
			if got := state(tr, id); got != want {
				t.Fatalf("update %d: %s: %s, want %s", i+1, id, got, want)
			}
		}
		var changed []string
		for _, o := range s.objs {
			if tr.ZonesChanged(o.ID) {
				changed = append(changed, o.ID)
			}
		}
		if !slices.Equal(changed, s.changed) {
			t.Fatalf("update %d: zones changed for %q, want %q", i+1, changed, s.changed)
		}
		if got := tr.Changed(); got != (len(s.changed) > 0) {
			t.Fatalf("update %d: Changed() = %v with %q changed", i+1, got, s.changed)
		}
	}
}

const (
	none    = "current=[] entered=[]"
	inDrive = "current=[driveway] entered=[driveway]"
	leftDrv = "current=[] entered=[driveway]"
)

func TestEnterAfterInertia(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 3))
	a := func(b detection.Box) []track.Object { return []track.Object{obj("a", "car", b)} }
	run(t, tr, []step{
		{objs: a(inBand), want: map[string]string{"a": none}},
		{objs: a(inBand2), want: map[string]string{"a": none}},
		{objs: a(aboveBand), want: map[string]string{"a": none}}, // run broken
		{objs: a(inBand), want: map[string]string{"a": none}},
		{objs: a(inBand2), want: map[string]string{"a": none}},
		{objs: a(inBand), want: map[string]string{"a": inDrive}, changed: []string{"a"}},
		{objs: a(inBand2), want: map[string]string{"a": inDrive}},
	})
}

func TestLeaveAfterInertia(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 2))
	a := func(b detection.Box) []track.Object { return []track.Object{obj("a", "car", b)} }
	run(t, tr, []step{
		{objs: a(inBand), want: map[string]string{"a": none}},
		{objs: a(inBand), want: map[string]string{"a": inDrive}, changed: []string{"a"}},
		{objs: a(aboveBand), want: map[string]string{"a": inDrive}}, // 1 outside: still in
		{objs: a(inBand), want: map[string]string{"a": inDrive}},    // back: run reset
		{objs: a(aboveBand), want: map[string]string{"a": inDrive}},
		{objs: a(aboveBand), want: map[string]string{"a": leftDrv}, changed: []string{"a"}},
		{objs: a(aboveBand), want: map[string]string{"a": leftDrv}},
		{objs: a(inBand), want: map[string]string{"a": leftDrv}}, // re-entering takes inertia again
		{objs: a(inBand), want: map[string]string{"a": inDrive}, changed: []string{"a"}},
	})
}

func TestZoneUsesBottomCentre(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 1))
	tr.Update([]track.Object{
		obj("feet-in", "person", box(100, 300, 200, 420)),   // centre (150,360) outside, bottom-centre inside
		obj("centre-in", "person", box(300, 380, 400, 500)), // centre (350,440) inside, bottom-centre (350,500) outside
		obj("edge", "person", box(500, 300, 600, 400)),      // bottom-centre on the top edge
	})
	for id, want := range map[string]string{"feet-in": inDrive, "centre-in": none, "edge": inDrive} {
		if got := state(tr, id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}

func TestConcaveZone(t *testing.T) {
	// The U's notch (x 10..20, y 10..30) is outside the zone.
	tr := newTracker(t, zoneCfg("u", uShape, 1))
	tr.Update([]track.Object{
		obj("arm", "cat", box(2, 5, 8, 25)),     // (5,25)
		obj("notch", "cat", box(12, 5, 18, 25)), // (15,25)
		obj("base", "cat", box(12, 0, 18, 5)),   // (15,5)
	})
	for id, want := range map[string]string{
		"arm":   "current=[u] entered=[u]",
		"notch": none,
		"base":  "current=[u] entered=[u]",
	} {
		if got := state(tr, id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}

func TestObjectsFilter(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 1, "car"), zoneCfg("top", top, 1))
	for range 5 {
		tr.Update([]track.Object{obj("p", "person", inBand), obj("c", "car", inBand2)})
		if got := state(tr, "p"); got != none {
			t.Fatalf("person in a cars-only zone: %s", got)
		}
		if got := state(tr, "c"); got != inDrive {
			t.Fatalf("car: %s, want %s", got, inDrive)
		}
	}
	want := map[string]map[string]int{"driveway": {"car": 1}, "top": {}}
	if got := tr.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	// The person walks into the all-labels zone.
	tr.Update([]track.Object{obj("p", "person", inTop), obj("c", "car", inBand2)})
	if got := state(tr, "p"); got != "current=[top] entered=[top]" {
		t.Fatalf("person: %s", got)
	}
}

func TestEnteredOrderAndMoving(t *testing.T) {
	// "top" is configured first, but the object enters "driveway" first.
	tr := newTracker(t, zoneCfg("top", top, 1), zoneCfg("driveway", band, 1))
	a := func(b detection.Box) []track.Object { return []track.Object{obj("a", "dog", b)} }
	run(t, tr, []step{
		{objs: a(inBand), want: map[string]string{"a": inDrive}, changed: []string{"a"}},
		{objs: a(inTop), want: map[string]string{"a": "current=[top] entered=[driveway top]"}, changed: []string{"a"}},
		{objs: a(inBand), want: map[string]string{"a": "current=[driveway] entered=[driveway top]"}, changed: []string{"a"}},
	})
	// Overlapping zones: current lists both, in config order.
	tr2 := newTracker(t, zoneCfg("frame", []Point{{0, 0}, {640, 0}, {640, 480}, {0, 480}}, 1), zoneCfg("driveway", band, 1))
	tr2.Update(a(inBand))
	if got := state(tr2, "a"); got != "current=[frame driveway] entered=[frame driveway]" {
		t.Fatalf("overlapping zones: %s", got)
	}
}

func TestCountsAndChanged(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 2, "car", "person"), zoneCfg("top", top, 2))
	counts := func() string {
		var parts []string
		for _, z := range slices.Sorted(maps.Keys(tr.Counts())) {
			for _, l := range slices.Sorted(maps.Keys(tr.Counts()[z])) {
				parts = append(parts, fmt.Sprintf("%s/%s=%d", z, l, tr.Counts()[z][l]))
			}
		}
		return strings.Join(parts, " ")
	}
	steps := []struct {
		name    string
		objs    []track.Object
		counts  string
		changed bool
	}{
		{"start: listed labels at 0", nil, "driveway/car=0 driveway/person=0", false},
		{"inside once", []track.Object{obj("c1", "car", inBand), obj("p1", "person", inTop)}, "driveway/car=0 driveway/person=0", false},
		{"entered", []track.Object{obj("c1", "car", inBand), obj("p1", "person", inTop)}, "driveway/car=1 driveway/person=0 top/person=1", true},
		{"unchanged", []track.Object{obj("c1", "car", inBand2), obj("p1", "person", inTop)}, "driveway/car=1 driveway/person=0 top/person=1", false},
		{"second car inside once", []track.Object{obj("c1", "car", inBand), obj("c2", "car", inBand2), obj("p1", "person", inTop)}, "driveway/car=1 driveway/person=0 top/person=1", false},
		{"second car entered", []track.Object{obj("c1", "car", inBand), obj("c2", "car", inBand2), obj("p1", "person", inTop)}, "driveway/car=2 driveway/person=0 top/person=1", true},
		{"person forgotten: leaves at once", []track.Object{obj("c1", "car", inBand), obj("c2", "car", inBand2)}, "driveway/car=2 driveway/person=0 top/person=0", true},
		{"c1 outside once", []track.Object{obj("c1", "car", aboveBand), obj("c2", "car", inBand2)}, "driveway/car=2 driveway/person=0 top/person=0", false},
		{"c1 left", []track.Object{obj("c1", "car", aboveBand), obj("c2", "car", inBand2)}, "driveway/car=1 driveway/person=0 top/person=0", true},
		{"all forgotten", nil, "driveway/car=0 driveway/person=0 top/person=0", true},
		{"nothing", nil, "driveway/car=0 driveway/person=0 top/person=0", false},
	}
	for _, s := range steps {
		tr.Update(s.objs)
		if got := counts(); got != s.counts {
			t.Fatalf("%s: counts %s, want %s", s.name, got, s.counts)
		}
		if got := tr.Changed(); got != s.changed {
			t.Fatalf("%s: Changed() = %v, want %v", s.name, got, s.changed)
		}
	}
}

func TestForgetAndReuse(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 1))
	tr.Update([]track.Object{obj("a", "car", inBand)})
	if got := state(tr, "a"); got != inDrive {
		t.Fatalf("a: %s", got)
	}
	// a is gone; b reuses a's state and must start clean.
	tr.Update([]track.Object{obj("b", "car", aboveBand)})
	if cur, ent := tr.Zones("a"); cur != nil || ent != nil {
		t.Fatalf("forgotten a still has zones %v %v", cur, ent)
	}
	if got := state(tr, "b"); got != none {
		t.Fatalf("b: %s, want %s", got, none)
	}
	if tr.ZonesChanged("b") {
		t.Fatal("b's zones changed")
	}
	// a with the same ID again is a new object.
	tr.Update([]track.Object{obj("a", "car", aboveBand), obj("b", "car", aboveBand)})
	if got := state(tr, "a"); got != none {
		t.Fatalf("a again: %s, want %s", got, none)
	}
}

func TestUpdateEdgeCases(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 2))
	// A duplicated ID advances once per Update; an empty ID is ignored.
	dup := []track.Object{obj("a", "car", inBand), obj("a", "car", inBand), obj("", "car", inBand)}
	tr.Update(dup)
	if got := state(tr, "a"); got != none {
		t.Fatalf("duplicate ID counted twice: %s", got)
	}
	if cur, ent := tr.Zones(""); cur != nil || ent != nil {
		t.Fatal("empty ID tracked")
	}
	tr.Update(dup)
	if got := state(tr, "a"); got != inDrive {
		t.Fatalf("a: %s", got)
	}
	// The returned slices cannot be appended into the Tracker's.
	cur, _ := tr.Zones("a")
	_ = append(cur, "x")
	if got := state(tr, "a"); got != inDrive {
		t.Fatalf("after append: %s", got)
	}
	// A label change starts over: the object leaves at once.
	tr.Update([]track.Object{obj("a", "truck", inBand)})
	if got := state(tr, "a"); got != none {
		t.Fatalf("relabelled: %s, want %s", got, none)
	}
	if !tr.ZonesChanged("a") || !tr.Changed() {
		t.Fatal("relabelling out of a zone is not a change")
	}
	want := map[string]map[string]int{"driveway": {"car": 0}}
	if got := tr.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	tr.Update([]track.Object{obj("a", "truck", inBand)})
	want["driveway"]["truck"] = 1
	if got := tr.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	// The caller's objects are not modified.
	objs := []track.Object{obj("a", "truck", inBand)}
	before := slices.Clone(objs)
	tr.Update(objs)
	if !reflect.DeepEqual(objs, before) {
		t.Fatal("Update modified its argument")
	}
}

func TestNewTracker(t *testing.T) {
	tr := newTracker(t)
	tr.Update([]track.Object{obj("a", "car", inBand)})
	if cur, ent := tr.Zones("a"); cur != nil || ent != nil || tr.Changed() || len(tr.Counts()) != 0 {
		t.Fatal("a Tracker without zones keeps state")
	}

	pts := slices.Clone(band)
	tr = newTracker(t, zoneCfg("driveway", pts, 0)) // inertia defaults to 3
	pts[0], pts[1] = Point{0, 0}, Point{640, 0}
	for range 2 {
		tr.Update([]track.Object{obj("a", "car", inBand)})
	}
	if got := state(tr, "a"); got != none {
		t.Fatalf("entered before the default inertia of 3: %s", got)
	}
	tr.Update([]track.Object{obj("a", "car", inBand)})
	if got := state(tr, "a"); got != inDrive {
		t.Fatalf("after 3: %s", got)
	}
	tr.Update([]track.Object{obj("a", "car", box(100, 100, 200, 200))}) // inside only the caller's edited copy
	tr.Update([]track.Object{obj("a", "car", box(100, 100, 200, 200))})
	tr.Update([]track.Object{obj("a", "car", box(100, 100, 200, 200))})
	if got := state(tr, "a"); got != leftDrv {
		t.Fatalf("Tracker follows the caller's points: %s", got)
	}

	cases := []struct {
		zones []Config
		want  string
	}{
		{[]Config{zoneCfg("a", band, 1), zoneCfg("b", band[:2], 1)},
			"zone config: zone[1].points: 2 points, a polygon needs at least 3"},
		{[]Config{zoneCfg("a", band, 1), zoneCfg("a", top, 1)},
			`zone config: zone[1].name: "a" is already zone[0] of camera "porch"`},
		{[]Config{zoneCfg("a", band, 1), {Camera: "yard", Name: "b", Points: top}},
			`zone config: zone[1].camera: "yard", but zone[0] is for camera "porch" (a Tracker serves one camera)`},
	}
	for _, c := range cases {
		tr, err := NewTracker(c.zones)
		if err == nil || err.Error() != c.want {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if tr != nil {
			t.Error("Tracker returned with an error")
		}
	}
}

func TestTrackerAllocs(t *testing.T) {
	tr := newTracker(t, zoneCfg("driveway", band, 3, "car", "person"), zoneCfg("top", top, 3), zoneCfg("u", uShape, 3))
	objs := []track.Object{
		obj("1700000000000-000001", "car", inBand),
		obj("1700000000000-000002", "person", inTop),
		obj("1700000000000-000003", "dog", aboveBand),
		obj("1700000000000-000004", "cat", box(2, 5, 8, 25)),
	}
	for range 5 { // everyone entered what they will enter
		tr.Update(objs)
	}
	var n int
	allocs := testing.AllocsPerRun(1000, func() {
		tr.Update(objs)
		n = 0
		for i := range objs {
			cur, ent := tr.Zones(objs[i].ID)
			n += len(cur) + len(ent)
		}
		_ = tr.Counts()
		_ = tr.Changed()
	})
	if allocs != 0 {
		t.Errorf("Update+Zones: %v allocs per run, want 0", allocs)
	}
	if n != 8 { // current+entered: car driveway, person top, cat top and u
		t.Errorf("%d zone entries, want 8", n)
	}
	if tr.Changed() {
		t.Error("steady state reported a change")
	}
}

func BenchmarkTrackerUpdate(b *testing.B) {
	tr, _ := NewTracker([]Config{zoneCfg("driveway", band, 3), zoneCfg("top", top, 3), zoneCfg("u", uShape, 3)})
	objs := make([]track.Object, 20)
	for i := range objs {
		x := float32(i * 30)
		objs[i] = obj(fmt.Sprintf("1700000000000-%06x", i), "person", box(x, float32(i*20), x+40, float32(i*20)+80))
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Update(objs)
	}
}
