package track

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/detection"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// frame is the time of frame i at fps frames per second.
func frame(i, fps int) time.Time {
	return t0.Add(time.Duration(i) * time.Second / time.Duration(fps))
}

func person(score float32, x1, y1, x2, y2 float32) detection.Detection {
	return detection.Detection{ClassID: 0, Label: "person", Score: score, Box: detection.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}}
}

func dog(score float32, x1, y1, x2, y2 float32) detection.Detection {
	return detection.Detection{ClassID: 16, Label: "dog", Score: score, Box: detection.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}}
}

func newTracker(tb testing.TB, cfg Config) *Tracker {
	tb.Helper()
	tr, err := New(cfg)
	if err != nil {
		tb.Fatalf("New(%+v): %v", cfg, err)
	}
	return tr
}

// types returns the event types, e.g. "new person", for compact checks.
func types(ev []Event) []string {
	var s []string
	for _, e := range ev {
		s = append(s, string(e.Type)+" "+e.After.Label)
	}
	return s
}

func wantTypes(tb testing.TB, step string, ev []Event, want ...string) {
	tb.Helper()
	if got := types(ev); !slices.Equal(got, want) {
		tb.Fatalf("%s: events %q, want %q", step, got, want)
	}
}

func TestSingleObjectLifecycle(t *testing.T) {
	tr := newTracker(t, Config{}) // defaults: MinHits 3, MaxAge 3s, IoU 0.3, move 0.1
	const fps = 5
	// 100x200 box: a 10% move is 10px horizontally, 20px vertically.
	type step struct {
		score float32
		dx    float32
		want  []string
	}
	steps := []step{
		{0.80, 0, nil},
		{0.80, 0, nil},
		{0.80, 0, []string{"new person"}}, // MinHits-th match
		{0.70, 2, nil},                    // jitter, lower score
		{0.75, 0, nil},
		{0.90, 0, []string{"update person"}},  // beats top score 0.80
		{0.85, 5, nil},                        // jitter below 10px
		{0.85, 15, []string{"update person"}}, // moved 15px > 10px
		{0.85, 18, nil},                       // 3px from the published box
		{0.85, 18, nil},
	}
	var all []Event
	for i, s := range steps {
		det := person(s.score, 100+s.dx, 100, 200+s.dx, 300)
		ev := tr.Update(frame(i, fps), []detection.Detection{det}, nil)
		wantTypes(t, fmt.Sprintf("frame %d", i), ev, s.want...)
		all = append(all, ev...)
	}
	newEv, scoreEv, moveEv := all[0], all[1], all[2]

	if !reflect.DeepEqual(newEv.Before, Object{}) {
		t.Errorf("new: Before = %+v, want zero", newEv.Before)
	}
	a := newEv.After
	if a.ID == "" || a.Label != "person" || a.ClassID != 0 || a.Hits != 3 ||
		a.Score != 0.80 || a.TopScore != 0.80 || a.Area != 100*200 ||
		!a.Start.Equal(frame(0, fps)) || !a.LastSeen.Equal(frame(2, fps)) ||
		!a.FrameTime.Equal(frame(2, fps)) || !a.End.IsZero() {
		t.Errorf("new: After = %+v", a)
	}
	id := a.ID

	if scoreEv.Before != newEv.After {
		t.Errorf("score update: Before = %+v, want the published new state %+v", scoreEv.Before, newEv.After)
	}
	if s := scoreEv.After; s.ID != id || s.TopScore != 0.90 || s.Score != 0.90 || s.Hits != 6 || !s.FrameTime.Equal(frame(5, fps)) {
		t.Errorf("score update: After = %+v", s)
	}

	if moveEv.Before != scoreEv.After {
		t.Errorf("move update: Before = %+v, want the previous update's After", moveEv.Before)
	}
	if m := moveEv.After; m.ID != id || m.Box.X1 != 115 || m.TopScore != 0.90 || m.Score != 0.85 || m.Hits != 8 {
		t.Errorf("move update: After = %+v", m)
	}

	// No detections: last seen at frame 9 (1.8s); ends on the first frame
	// at least MaxAge (3s) later, i.e. frame 24 (4.8s).
	lastSeen := frame(9, fps)
	var end []Event
	for i := 10; i <= 30; i++ {
		ev := tr.Update(frame(i, fps), nil, nil)
		if i < 24 && len(ev) != 0 {
			t.Fatalf("frame %d: events %q before MaxAge", i, types(ev))
		}
		if i == 24 {
			wantTypes(t, "frame 24", ev, "end person")
			end = ev
		}
		if i > 24 && len(ev) != 0 {
			t.Fatalf("frame %d: events %q after end", i, types(ev))
		}
	}
	e := end[0]
	if e.Before != moveEv.After {
		t.Errorf("end: Before = %+v, want last published %+v", e.Before, moveEv.After)
	}
	if x := e.After; x.ID != id || !x.Start.Equal(frame(0, fps)) || !x.End.Equal(lastSeen) ||
		!x.LastSeen.Equal(lastSeen) || !x.FrameTime.Equal(frame(24, fps)) || x.Hits != 10 || x.Box.X1 != 118 {
		t.Errorf("end: After = %+v", x)
	}
	if len(tr.Active()) != 0 || len(tr.Counts()) != 0 {
		t.Errorf("after end: Active %v, Counts %v", tr.Active(), tr.Counts())
	}
}

func TestOverlappingDifferentClasses(t *testing.T) {
	tr := newTracker(t, Config{})
	var ev []Event
	for i := range 3 {
		// The dog sits inside the person box: same place, different class.
		ev = tr.Update(frame(i, 5), []detection.Detection{
			person(0.9, 100, 100, 200, 300),
			dog(0.8, 110, 110, 190, 290),
		}, ev[:0])
	}
	if len(ev) != 2 || ev[0].Type != EventNew || ev[1].Type != EventNew {
		t.Fatalf("events %q, want two new", types(ev))
	}
	if ev[0].After.ID == ev[1].After.ID {
		t.Fatalf("same ID %q for both", ev[0].After.ID)
	}
	if got := tr.Counts(); !maps.Equal(got, map[string]int{"person": 1, "dog": 1}) {
		t.Errorf("Counts = %v", got)
	}
	for _, o := range tr.Active() {
		if o.Hits != 3 || (o.Label == "dog") != (o.ClassID == 16) {
			t.Errorf("active %+v", o)
		}
	}
}

func TestSameClassCrossing(t *testing.T) {
	tr := newTracker(t, Config{})
	// A walks right along y 0..100, B walks left along y 30..130; their
	// boxes overlap heavily around frame 10.
	ax := func(i int) float32 { return float32(10 * i) }
	bx := func(i int) float32 { return float32(200 - 10*i) }
	var idA, idB string
	for i := range 21 {
		a := person(0.8, ax(i), 0, ax(i)+40, 100)
		b := person(0.7, bx(i), 30, bx(i)+40, 130)
		dets := []detection.Detection{a, b}
		if i%2 == 1 {
			dets = []detection.Detection{b, a} // order must not matter
		}
		ev := tr.Update(frame(i, 5), dets, nil)
		if i == 2 {
			wantTypes(t, "frame 2", ev, "new person", "new person")
			for _, e := range ev {
				if e.After.Box.Y1 == 0 {
					idA = e.After.ID
				} else {
					idB = e.After.ID
				}
			}
			continue
		}
		for _, e := range ev {
			if e.Type != EventUpdate {
				t.Fatalf("frame %d: unexpected %s %s", i, e.Type, e.After.ID)
			}
		}
		if i < 2 {
			continue
		}
		act := tr.Active()
		if len(act) != 2 {
			t.Fatalf("frame %d: %d active, want 2", i, len(act))
		}
		for _, o := range act {
			switch o.ID {
			case idA:
				if o.Box != a.Box {
					t.Fatalf("frame %d: A's ID has box %+v, want %+v", i, o.Box, a.Box)
				}
			case idB:
				if o.Box != b.Box {
					t.Fatalf("frame %d: B's ID has box %+v, want %+v", i, o.Box, b.Box)
				}
			default:
				t.Fatalf("frame %d: unknown ID %s", i, o.ID)
			}
		}
	}
}

func TestFastMoverKeepsID(t *testing.T) {
	tr := newTracker(t, Config{})
	// A 40x100 box moving 45px per frame: IoU 0 with its previous box, but
	// the centre moved 45px < half the diagonal (~53.9px).
	var id string
	for i := range 10 {
		x := float32(45 * i)
		if i > 0 {
			prev := detection.Box{X1: x - 45, Y1: 0, X2: x - 5, Y2: 100}
			if iou := detection.IoU(prev, detection.Box{X1: x, Y1: 0, X2: x + 40, Y2: 100}); iou != 0 {
				t.Fatalf("test setup: IoU %g, want 0", iou)
			}
		}
		ev := tr.Update(frame(i, 5), []detection.Detection{person(0.8, x, 0, x+40, 100)}, nil)
		switch {
		case i < 2:
			wantTypes(t, fmt.Sprintf("frame %d", i), ev)
		case i == 2:
			wantTypes(t, "frame 2", ev, "new person")
			id = ev[0].After.ID
		default:
			wantTypes(t, fmt.Sprintf("frame %d", i), ev, "update person") // it moved
			if ev[0].After.ID != id || ev[0].After.Box.X1 != x {
				t.Fatalf("frame %d: %+v, want ID %s at x %g", i, ev[0].After, id, x)
			}
		}
	}
	// Too far (more than half the diagonal) is a different object.
	ev := tr.Update(frame(10, 5), []detection.Detection{person(0.8, 45*9+100, 0, 45*9+140, 100)}, nil)
	wantTypes(t, "far jump", ev)
	if act := tr.Active(); len(act) != 1 || act[0].ID != id || act[0].Box.X1 != 45*9 {
		t.Fatalf("far jump: Active = %+v", act)
	}
}

func TestSpuriousNeverReported(t *testing.T) {
	tr := newTracker(t, Config{})
	walker := person(0.9, 0, 0, 50, 100)
	for i := range 20 {
		dets := []detection.Detection{walker}
		switch {
		case i == 5: // one-frame ghost
			dets = append(dets, dog(0.6, 300, 300, 340, 340))
		case i >= 10 && i%2 == 0: // flickers every other frame: never MinHits in a row
			dets = append(dets, dog(0.6, 400, 300, 440, 340))
		}
		ev := tr.Update(frame(i, 5), dets, nil)
		for _, e := range ev {
			if e.After.Label == "dog" {
				t.Fatalf("frame %d: %s for spurious dog", i, e.Type)
			}
		}
	}
	if got := tr.Counts(); !maps.Equal(got, map[string]int{"person": 1}) {
		t.Errorf("Counts = %v", got)
	}
	if ev := tr.Flush(frame(20, 5)); len(ev) != 1 || ev[0].After.Label != "person" {
		t.Errorf("Flush = %q", types(ev))
	}
}

func TestMinHitsOne(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1})
	ev := tr.Update(t0, []detection.Detection{person(0.5, 0, 0, 10, 10)}, nil)
	wantTypes(t, "first frame", ev, "new person")
	if a := ev[0].After; a.Hits != 1 || !a.Start.Equal(t0) || !a.FrameTime.Equal(t0) {
		t.Errorf("After = %+v", a)
	}
}

func TestCountsChangeOnlyOnNewAndEnd(t *testing.T) {
	tr := newTracker(t, Config{MaxAge: time.Second})
	// Three people appear at frames 0, 3 and 6, each leaves after 15
	// frames; a dog stays throughout, moving and improving its score.
	seq := func(i int) []detection.Detection {
		var d []detection.Detection
		for k := range 3 {
			if in := i - 3*k; in >= 0 && in < 15 {
				x := float32(200*k + in) // drifts 1px per frame
				d = append(d, person(0.5+0.01*float32(in), x, 0, x+60, 150))
			}
		}
		y := float32(5 * i)
		d = append(d, dog(0.3+0.01*float32(i), 600, y, 700, y+80))
		return d
	}
	prev := tr.Counts()
	var events []Event
	for i := range 40 {
		ev := tr.Update(frame(i, 5), seq(i), nil)
		events = append(events, ev...)
		cur := tr.Counts()
		want := maps.Clone(prev)
		for _, e := range ev {
			switch e.Type {
			case EventNew:
				want[e.After.Label]++
			case EventEnd:
				if e.Reason != EndTimeout {
					t.Errorf("frame %d: end of %s with reason %q, want %q", i, e.After.ID, e.Reason, EndTimeout)
				}
				if want[e.After.Label]--; want[e.After.Label] == 0 {
					delete(want, e.After.Label)
				}
			}
		}
		if !maps.Equal(cur, want) {
			t.Fatalf("frame %d: Counts %v, want %v after events %q", i, cur, want, types(ev))
		}
		prev = cur
	}
	var nNew, nEnd, nUpd int
	for _, e := range events {
		switch e.Type {
		case EventNew:
			nNew++
		case EventEnd:
			nEnd++
		case EventUpdate:
			nUpd++
		}
	}
	if nNew != 4 || nEnd != 3 || nUpd == 0 {
		t.Errorf("new %d end %d update %d, want 4, 3, >0", nNew, nEnd, nUpd)
	}
	if got := tr.Counts(); !maps.Equal(got, map[string]int{"dog": 1}) {
		t.Errorf("final Counts = %v", got)
	}
}

func TestFlushEndsAll(t *testing.T) {
	tr := newTracker(t, Config{})
	dets := []detection.Detection{
		person(0.9, 0, 0, 50, 100),
		person(0.8, 200, 0, 250, 100),
		dog(0.7, 400, 0, 480, 60),
	}
	for i := range 3 {
		tr.Update(frame(i, 5), dets, nil)
	}
	// A tentative track that must vanish without an event.
	tr.Update(frame(3, 5), append(slices.Clone(dets), dog(0.5, 600, 0, 650, 40)), nil)
	active := tr.Active()
	if len(active) != 3 {
		t.Fatalf("Active = %d objects, want 3", len(active))
	}
	now := frame(4, 5)
	ev := tr.Flush(now)
	wantTypes(t, "Flush", ev, typesOf(active, EventEnd)...)
	for i, e := range ev {
		if e.Before.ID != active[i].ID || e.After.ID != active[i].ID {
			t.Errorf("end %d: IDs %s/%s, want %s", i, e.Before.ID, e.After.ID, active[i].ID)
		}
		if e.Reason != EndShutdown {
			t.Errorf("end %d: reason %q, want %q", i, e.Reason, EndShutdown)
		}
		if !e.After.End.Equal(frame(3, 5)) || !e.After.FrameTime.Equal(now) || !e.After.Start.Equal(t0) {
			t.Errorf("end %d: After = %+v", i, e.After)
		}
	}
	if len(tr.Active()) != 0 || len(tr.Counts()) != 0 || len(tr.Flush(now)) != 0 {
		t.Fatalf("after Flush: Active %v, Counts %v", tr.Active(), tr.Counts())
	}
	// Still usable, with fresh IDs.
	var got []Event
	for i := 5; i < 8; i++ {
		got = tr.Update(frame(i, 5), dets[:1], got[:0])
	}
	wantTypes(t, "after Flush", got, "new person")
	for _, o := range active {
		if o.ID == got[0].After.ID {
			t.Fatalf("ID %s reused after Flush", o.ID)
		}
	}
}

func typesOf(objs []Object, typ EventType) []string {
	var s []string
	for _, o := range objs {
		s = append(s, string(typ)+" "+o.Label)
	}
	return s
}

var idPattern = regexp.MustCompile(`^([0-9]+)-[0-9a-f]{6,}$`)

func TestIDsUniqueAndStable(t *testing.T) {
	tr := newTracker(t, Config{MaxAge: 400 * time.Millisecond})
	seen := map[string]time.Time{} // ID -> Start
	// Waves of objects with the same start time and the same boxes, so
	// only the counter tells them apart.
	for wave := range 5 {
		for i := range 4 {
			f := wave*10 + i
			var dets []detection.Detection
			for k := range 4 {
				x := float32(100 * k)
				dets = append(dets, person(0.9, x, 0, x+50, 100))
			}
			if i == 3 {
				dets = nil
			}
			for _, e := range tr.Update(frame(f, 5), dets, nil) {
				id := e.After.ID
				if e.Before.ID != "" && e.Before.ID != id {
					t.Fatalf("ID changed %s -> %s", e.Before.ID, id)
				}
				m := idPattern.FindStringSubmatch(id)
				if m == nil {
					t.Fatalf("ID %q does not match %s", id, idPattern)
				}
				if ms, _ := strconv.ParseInt(m[1], 10, 64); ms != e.After.Start.UnixMilli() {
					t.Fatalf("ID %q: prefix is not the start time %d", id, e.After.Start.UnixMilli())
				}
				if e.Type == EventNew {
					if _, dup := seen[id]; dup {
						t.Fatalf("ID %s reported twice", id)
					}
					seen[id] = e.After.Start
				} else if _, ok := seen[id]; !ok {
					t.Fatalf("%s for unknown ID %s", e.Type, id)
				}
			}
		}
		for f := wave*10 + 4; f < wave*10+10; f++ {
			tr.Update(frame(f, 5), nil, nil)
		}
		if len(tr.Active()) != 0 {
			t.Fatalf("wave %d: objects still active", wave)
		}
	}
	if len(seen) != 20 {
		t.Fatalf("%d distinct IDs, want 20", len(seen))
	}
}

func TestDeterministicOrder(t *testing.T) {
	run := func() []Event {
		tr := newTracker(t, Config{MinHits: 2, MaxAge: time.Second})
		var all []Event
		for i := range 30 {
			var dets []detection.Detection
			for k := range 8 {
				if (i+k)%11 == 0 {
					continue // occasional miss
				}
				x := float32(80*k + 3*i)
				dets = append(dets, detection.Detection{
					ClassID: k % 3, Label: "c" + strconv.Itoa(k%3),
					Score: 0.4 + 0.05*float32((i*k)%7), Box: detection.Box{X1: x, Y1: 10, X2: x + 60, Y2: 110},
				})
			}
			ev := tr.Update(frame(i, 5), dets, nil)
			if !slices.IsSortedFunc(ev, func(a, b Event) int { return strings.Compare(a.After.ID, b.After.ID) }) {
				t.Fatalf("frame %d: events not sorted by ID: %v", i, ev)
			}
			all = append(all, ev...)
		}
		return append(all, tr.Flush(frame(30, 5))...)
	}
	a, b := run(), run()
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two identical runs differ (%d vs %d events)", len(a), len(b))
	}
}

func TestUpdateAppendsToDst(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1})
	dst := []Event{{Type: "sentinel"}}
	dst = tr.Update(t0, []detection.Detection{person(0.9, 0, 0, 10, 10)}, dst)
	if len(dst) != 2 || dst[0].Type != "sentinel" || dst[1].Type != EventNew {
		t.Fatalf("dst = %q", types(dst))
	}
}

func TestSteadyStateNoAllocs(t *testing.T) {
	tr := newTracker(t, Config{})
	frames := benchFrames(20, 64)
	dst := make([]Event, 0, 64)
	i := 0
	step := func() {
		dst = tr.Update(frame(i, 5), frames[i%len(frames)], dst[:0])
		i++
	}
	for range 3 { // report everything: IDs are allocated here
		step()
	}
	if allocs := testing.AllocsPerRun(200, step); allocs != 0 {
		t.Errorf("Update allocates %g times per call in steady state", allocs)
	}
	objs := make([]Object, 0, 64)
	if allocs := testing.AllocsPerRun(200, func() { objs = tr.AppendActive(objs[:0]) }); allocs != 0 {
		t.Errorf("AppendActive allocates %g times with room in dst", allocs)
	}
	if len(objs) != len(tr.Active()) || len(objs) == 0 {
		t.Errorf("AppendActive gave %d objects, Active %d", len(objs), len(tr.Active()))
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	d := Config{}.WithDefaults()
	if d.MinHits != 3 || d.MaxAge != 3*time.Second || d.IoUMatch != 0.3 || d.MoveThreshold != 0.1 {
		t.Fatalf("defaults = %+v", d)
	}
	nan := float32(0)
	nan /= nan
	cases := []struct {
		cfg  Config
		want []string
	}{
		{Config{MinHits: -1}, []string{"min_hits: -1"}},
		{Config{MaxAge: -time.Second}, []string{"max_age: -1s"}},
		{Config{IoUMatch: 1.5}, []string{"iou_match: 1.5"}},
		{Config{IoUMatch: -0.1}, []string{"iou_match: -0.1"}},
		{Config{IoUMatch: nan}, []string{"iou_match: NaN"}},
		{Config{MoveThreshold: -0.2}, []string{"move_threshold: -0.2"}},
		{Config{MinHits: -2, IoUMatch: 2, MoveThreshold: nan}, []string{"min_hits: -2", "iou_match: 2", "move_threshold: NaN"}},
	}
	for _, c := range cases {
		err := c.cfg.WithDefaults().Validate()
		if err == nil {
			t.Errorf("%+v: no error", c.cfg)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not contain %q", c.cfg, err, w)
			}
		}
		if _, err := New(c.cfg); err == nil {
			t.Errorf("New(%+v): no error", c.cfg)
		}
	}
	// WithDefaults leaves non-zero fields alone.
	custom := Config{MinHits: 5, MaxAge: time.Second, IoUMatch: 0.5, MoveThreshold: 0.2}
	if got := custom.WithDefaults(); got != custom {
		t.Errorf("WithDefaults changed %+v to %+v", custom, got)
	}
}

// benchFrames builds n objects drifting over nf frames: each moves 1px per
// frame and its score wanders, so some frames cause updates.
func benchFrames(n, nf int) [][]detection.Detection {
	frames := make([][]detection.Detection, nf)
	for f := range frames {
		dets := make([]detection.Detection, n)
		for k := range dets {
			x := float32(90*(k%10) + f)
			y := float32(200 * (k / 10))
			dets[k] = detection.Detection{
				ClassID: k % 4, Label: "c" + strconv.Itoa(k%4),
				Score: 0.5 + 0.01*float32((f*7+k)%40),
				Box:   detection.Box{X1: x, Y1: y, X2: x + 60, Y2: y + 150},
			}
		}
		frames[f] = dets
	}
	return frames
}

func BenchmarkUpdate20(b *testing.B) {
	tr := newTracker(b, Config{})
	frames := benchFrames(20, 64)
	dst := make([]Event, 0, 64)
	for i := range 3 {
		dst = tr.Update(frame(i, 5), frames[i], dst[:0])
	}
	b.ReportAllocs()
	i := 3
	for b.Loop() {
		dst = tr.Update(frame(i, 5), frames[i%len(frames)], dst[:0])
		i++
	}
}

func TestEventsSortedByID(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1, MaxAge: 400 * time.Millisecond})
	old := person(0.9, 0, 0, 50, 100)
	moving := dog(0.5, 300, 0, 360, 60)
	tr.Update(frame(0, 5), []detection.Detection{old, moving}, nil)
	tr.Update(frame(1, 5), []detection.Detection{moving}, nil)
	// Frame 2: old ends, moving updates, a newcomer is reported. Appended
	// naively that is new, update, end; sorted by ID it is end (oldest
	// ID), update, new.
	moving.Score = 0.8
	ev := tr.Update(frame(2, 5), []detection.Detection{person(0.7, 600, 0, 650, 100), moving}, nil)
	wantTypes(t, "frame 2", ev, "end person", "update dog", "new person")
	if !(ev[0].After.ID < ev[1].After.ID && ev[1].After.ID < ev[2].After.ID) {
		t.Fatalf("IDs not ascending: %s %s %s", ev[0].After.ID, ev[1].After.ID, ev[2].After.ID)
	}
}

func TestClassNeverSwitches(t *testing.T) {
	tr := newTracker(t, Config{})
	p := person(0.9, 100, 100, 200, 300)
	for i := range 3 {
		tr.Update(frame(i, 5), []detection.Detection{p}, nil)
	}
	// The person leaves; a dog appears exactly where it stood. It must
	// start its own track, not continue the person's.
	d := dog(0.8, 100, 100, 200, 300)
	var ev []Event
	for i := 3; i < 6; i++ {
		ev = tr.Update(frame(i, 5), []detection.Detection{d}, ev[:0])
	}
	wantTypes(t, "dog", ev, "new dog")
	act := tr.Active()
	if len(act) != 2 || act[0].Label != "person" || act[0].Hits != 3 || act[1].Label != "dog" || act[1].Hits != 3 {
		t.Fatalf("Active = %+v", act)
	}
}
