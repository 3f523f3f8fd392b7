package track

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/edgedet/edgedet/detection"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A wide, flat box moving sideways without overlap keeps its identity: its
// diagonal is set by the width, not the height.
func TestFastWideMoverKeepsIDByDiagonal(t *testing.T) {
	// IoUMatch 0.9 leaves the match to the centre distance.
	cfg := Config{MinHits: 1, IoUMatch: 0.9}
	tr := newTracker(t, cfg)
	// 100x10 box: diagonal ~100.5, so a 45px move (< 50.25) still matches,
	// though the height alone (10) would allow only 5px.
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 100, 10)}, nil)
	wantTypes(t, "frame 0", ev, "new person")
	id := ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, 45, 0, 145, 10)}, nil)
	wantTypes(t, "frame 1", ev, "update person")
	if ev[0].After.ID != id {
		t.Fatalf("frame 1: ID %s, want %s", ev[0].After.ID, id)
	}
	// The same for a tall, thin box moving down.
	tr = newTracker(t, cfg)
	ev = tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 10, 100)}, nil)
	id = ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, 0, 45, 10, 145)}, nil)
	wantTypes(t, "tall frame 1", ev, "update person")
	if ev[0].After.ID != id {
		t.Fatalf("tall frame 1: ID %s, want %s", ev[0].After.ID, id)
	}
}

// IoU exactly equal to IoUMatch matches by overlap, even when the centres
// are too far apart for the distance fallback.
func TestIoUAtThresholdMatches(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1, IoUMatch: 0.25})
	a := detection.Box{X1: 0, Y1: 0, X2: 100, Y2: 10}
	b := detection.Box{X1: 60, Y1: 0, X2: 160, Y2: 10} // overlap 40x10: IoU 400/1600
	if iou := detection.IoU(a, b); iou != 0.25 {
		t.Fatalf("test setup: IoU %g, want exactly 0.25", iou)
	}
	// Centre shift 60 > half the diagonal (~50.25): distance alone would not match.
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, a.X1, a.Y1, a.X2, a.Y2)}, nil)
	id := ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, b.X1, b.Y1, b.X2, b.Y2)}, nil)
	wantTypes(t, "frame 1", ev, "update person")
	if ev[0].After.ID != id {
		t.Fatalf("frame 1: ID %s, want %s (matched at IoU == IoUMatch)", ev[0].After.ID, id)
	}
}

// With MinHits 2 a new object is reported on its second frame, not its first.
func TestMinHitsTwoWaitsOneFrame(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 2})
	wantTypes(t, "frame 0", tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 50, 100)}, nil))
	ev := tr.Update(frame(1, 5), []detection.Detection{person(0.8, 0, 0, 50, 100)}, nil)
	wantTypes(t, "frame 1", ev, "new person")
	if ev[0].After.Hits != 2 || !ev[0].After.Start.Equal(frame(0, 5)) {
		t.Fatalf("frame 1: %+v, want Hits 2 and Start at frame 0", ev[0].After)
	}
}

// TopScore starts at the first score; a NaN first score starts it at 0 so
// a later real score can raise it.
func TestTopScoreStartsAtFirstScore(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1})
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.7, 0, 0, 50, 100)}, nil)
	wantTypes(t, "frame 0", ev, "new person")
	if got := ev[0].After.TopScore; got != 0.7 {
		t.Errorf("first TopScore %g, want 0.7", got)
	}

	tr = newTracker(t, Config{MinHits: 1})
	nan := float32(math.NaN())
	ev = tr.Update(frame(0, 5), []detection.Detection{person(nan, 0, 0, 50, 100)}, nil)
	if got := ev[0].After.TopScore; got != 0 {
		t.Errorf("TopScore after a NaN score %g, want 0", got)
	}
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.6, 0, 0, 50, 100)}, nil)
	wantTypes(t, "frame 1", ev, "update person")
	if got := ev[0].After.TopScore; got != 0.6 {
		t.Errorf("TopScore after NaN then 0.6: %g, want 0.6", got)
	}
}

// The distance fallback needs the centre closer than half the diagonal:
// exactly half is a different object.
func TestDistanceMatchExcludesHalfDiagonal(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1, IoUMatch: 0.9})
	// 30x40 box: diagonal 50; a 25px move is exactly half of it.
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 30, 40)}, nil)
	id := ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, 25, 0, 55, 40)}, nil)
	wantTypes(t, "frame 1", ev, "new person")
	if ev[0].After.ID == id {
		t.Fatalf("frame 1: matched the old track %s at exactly half the diagonal", id)
	}
	// 24px is closer than half: the same object.
	tr = newTracker(t, Config{MinHits: 1, IoUMatch: 0.9})
	ev = tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 30, 40)}, nil)
	id = ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, 24, 0, 54, 40)}, nil)
	wantTypes(t, "24px", ev, "update person")
	if ev[0].After.ID != id {
		t.Fatalf("24px: ID %s, want %s", ev[0].After.ID, id)
	}
}

// Validate (after WithDefaults, or on a hand-made Config) rejects a zero
// MaxAge and accepts the smallest positive one.
func TestConfigValidateMaxAgeZero(t *testing.T) {
	c := Config{MinHits: 1, MaxAge: 0, IoUMatch: 0.3, MoveThreshold: 0.1}
	if err := c.Validate(); err == nil || err.Error() != "max_age: 0s must be > 0" {
		t.Errorf("Validate(MaxAge 0) = %v, want %q", err, "max_age: 0s must be > 0")
	}
	c.MaxAge = time.Nanosecond
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(MaxAge 1ns) = %v, want nil", err)
	}
}

// The half-diagonal of the distance fallback is the box's own size, not
// depending on where the box is in the frame.
func TestDistanceMatchAwayFromOrigin(t *testing.T) {
	for _, c := range []struct {
		dx   float32
		want string
	}{{25, "new person"}, {24, "update person"}} {
		tr := newTracker(t, Config{MinHits: 1, IoUMatch: 0.9})
		// 30x40 box low in the frame: diagonal 50.
		ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 500, 30, 540)}, nil)
		id := ev[0].After.ID
		ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, c.dx, 500, 30+c.dx, 540)}, nil)
		wantTypes(t, fmt.Sprintf("move %g", c.dx), ev, c.want)
		if same := ev[0].After.ID == id; same != (c.want == "update person") {
			t.Errorf("move %g: same ID %v", c.dx, same)
		}
	}
}

// The distance fallback works for boxes smaller than a pixel too.
func TestDistanceMatchSubpixelBox(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1, IoUMatch: 0.9})
	// 0.5x0.5 box: half-diagonal ~0.354; a 0.25 move (IoU 0.33) is closer.
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, 10, 10, 10.5, 10.5)}, nil)
	id := ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, 10.25, 10, 10.75, 10.5)}, nil)
	wantTypes(t, "frame 1", ev, "update person")
	if ev[0].After.ID != id {
		t.Fatalf("frame 1: ID %s, want %s", ev[0].After.ID, id)
	}
}

// Of two tracks a detection is close to (no IoU match), the one it is
// closer to wins, also when that track's box is the larger one.
func TestDistanceMatchPrefersCloserTrack(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1, IoUMatch: 0.9})
	// A: 12x16 (diagonal 20), centre (100,100); B: 10x10 (diagonal ~14.1), centre (109,100).
	ev := tr.Update(frame(0, 5), []detection.Detection{
		person(0.8, 94, 92, 106, 108),
		person(0.8, 104, 95, 114, 105),
	}, nil)
	wantTypes(t, "frame 0", ev, "new person", "new person")
	idA := ev[0].After.ID
	if ev[0].After.Box.X1 != 94 {
		idA = ev[1].After.ID
	}
	// A 2x2 detection centred at (104,100): 4 from A, 5 from B.
	ev = tr.Update(frame(1, 5), []detection.Detection{person(0.8, 103, 99, 105, 101)}, nil)
	wantTypes(t, "frame 1", ev, "update person")
	if ev[0].After.ID != idA {
		t.Fatalf("frame 1: the detection went to %s, want the closer track %s", ev[0].After.ID, idA)
	}
}

// A track takes at most one detection: of two that match it, the better
// one updates it and the other starts a new object.
func TestTrackTakesOneDetection(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1})
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 50, 100)}, nil)
	id := ev[0].After.ID
	ev = tr.Update(frame(1, 5), []detection.Detection{
		person(0.8, 25, 0, 75, 100), // IoU 1/3
		person(0.8, 0, 0, 50, 100),  // IoU 1
	}, nil)
	// The track did not move (no update); the shifted box is a new object.
	wantTypes(t, "frame 1", ev, "new person")
	if ev[0].After.ID == id || ev[0].After.Box.X1 != 25 {
		t.Fatalf("frame 1: new %s at %+v, want a new ID at x1 25", ev[0].After.ID, ev[0].After.Box)
	}
	act := tr.Active()
	if len(act) != 2 || act[0].ID != id || act[0].Box.X1 != 0 || act[0].Hits != 2 {
		t.Fatalf("active %+v, want %s unmoved with 2 hits and the new one", act, id)
	}
}

// "update" needs a centre shift of more than MoveThreshold of the
// published box's width or height: exactly the threshold is not enough;
// sizes below one pixel count as one pixel, so a 1px-wide box moves with
// a shift above MoveThreshold pixels.
func TestMoveThresholdExact(t *testing.T) {
	type move struct {
		b    [4]float32
		want []string
	}
	upd := []string{"update person"}
	cases := []struct {
		name  string
		start [4]float32
		moves []move
	}{
		// 40x40 box low in the frame; threshold 0.25*40 = 10.
		{"horizontal", [4]float32{0, 500, 40, 540}, []move{
			{[4]float32{10, 500, 50, 540}, nil}, // exactly 10
			{[4]float32{11, 500, 51, 540}, upd}, // 11 from the published box
		}},
		{"vertical", [4]float32{0, 500, 40, 540}, []move{
			{[4]float32{0, 502, 40, 542}, nil}, // 2
			{[4]float32{0, 510, 40, 550}, nil}, // exactly 10
			{[4]float32{0, 511, 40, 551}, upd}, // 11
			{[4]float32{0, 521, 40, 561}, nil}, // 10 from the new published box
			{[4]float32{0, 521.5, 40, 561.5}, upd},
		}},
		// Moving left and up counts the same as right and down.
		{"left and up", [4]float32{100, 500, 140, 540}, []move{
			{[4]float32{90, 500, 130, 540}, nil}, // exactly 10 left
			{[4]float32{89, 500, 129, 540}, upd}, // 11 left
			{[4]float32{89, 490, 129, 530}, nil}, // exactly 10 up
			{[4]float32{89, 489, 129, 529}, upd}, // 11 up
		}},
		// 1px wide, 40 tall: threshold 0.25px horizontally.
		{"one pixel wide", [4]float32{10, 0, 11, 40}, []move{
			{[4]float32{10.5, 0, 11.5, 40}, upd},
		}},
		// 40 wide, 1px tall: threshold 0.25px vertically.
		{"one pixel tall", [4]float32{0, 10, 40, 11}, []move{
			{[4]float32{0, 10.5, 40, 11.5}, upd},
		}},
	}
	for _, c := range cases {
		tr := newTracker(t, Config{MinHits: 1, MoveThreshold: 0.25})
		b := c.start
		wantTypes(t, c.name+" start", tr.Update(frame(0, 5), []detection.Detection{person(0.8, b[0], b[1], b[2], b[3])}, nil), "new person")
		for i, m := range c.moves {
			b := m.b
			ev := tr.Update(frame(i+1, 5), []detection.Detection{person(0.8, b[0], b[1], b[2], b[3])}, nil)
			wantTypes(t, fmt.Sprintf("%s move %d", c.name, i), ev, m.want...)
		}
		if n := len(tr.Active()); n != 1 {
			t.Errorf("%s: %d active objects, want 1 (all moves matched)", c.name, n)
		}
	}
}

// IDs are "<start ms>-<counter in at least 6 hex digits>": the first
// object of a tracker is 000001.
func TestIDFormatExact(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1})
	ev := tr.Update(frame(0, 5), []detection.Detection{person(0.8, 0, 0, 50, 100), dog(0.8, 200, 0, 250, 100)}, nil)
	want := []string{fmt.Sprintf("%d-000001", t0.UnixMilli()), fmt.Sprintf("%d-000002", t0.UnixMilli())}
	if len(ev) != 2 || ev[0].After.ID != want[0] || ev[1].After.ID != want[1] {
		t.Fatalf("IDs %q, want %q", types(ev), want)
	}
	if got := makeID(t0, 0xabcdef1); got != fmt.Sprintf("%d-abcdef1", t0.UnixMilli()) {
		t.Errorf("makeID(7 hex digits) = %q", got)
	}
}

// Flush on a tracker that never tracked anything ends nothing, and the
// tracker stays usable.
func TestFlushFresh(t *testing.T) {
	tr := newTracker(t, Config{MinHits: 1})
	if ev := tr.Flush(t0); len(ev) != 0 {
		t.Fatalf("Flush of a fresh tracker: %q", types(ev))
	}
	wantTypes(t, "after flush", tr.Update(frame(1, 5), []detection.Detection{person(0.8, 0, 0, 50, 100)}, nil), "new person")
	if act := tr.Active(); len(act) != 1 {
		t.Fatalf("active %+v, want 1 object", act)
	}
}

// Association is greedy, best IoU first: with many mutually overlapping
// tracks and detections (all pairs above IoUMatch), every track gets the
// detection a greedy pass over the pairs by descending IoU gives it.
func TestGreedyAssociationByIoU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rbox := func() detection.Box {
		// Every box contains [10,50]x[10,50] and lies in [0,60]^2: any two
		// have IoU >= 1600/3600.
		return detection.Box{X1: rng.Float32() * 10, Y1: rng.Float32() * 10, X2: 50 + rng.Float32()*10, Y2: 50 + rng.Float32()*10}
	}
	const n = 6
	for round := range 40 {
		tr := newTracker(t, Config{MinHits: 1, IoUMatch: 0.3})
		var d0, d1 []detection.Detection
		for range n {
			b := rbox()
			d0 = append(d0, person(0.8, b.X1, b.Y1, b.X2, b.Y2))
			b = rbox()
			d1 = append(d1, person(0.8, b.X1, b.Y1, b.X2, b.Y2))
		}
		if ev := tr.Update(frame(0, 5), d0, nil); len(ev) != n {
			t.Fatalf("round %d: %d events for %d new objects", round, len(ev), n)
		}
		// Objects are created in detection order, so their IDs sort so.
		type cand struct {
			ti, di int
			iou    float32
		}
		var cands []cand
		for ti := range d0 {
			for di := range d1 {
				cands = append(cands, cand{ti, di, detection.IoU(d0[ti].Box, d1[di].Box)})
			}
		}
		slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.iou, a.iou) })
		want := make([]int, n)
		usedT, usedD := make([]bool, n), make([]bool, n)
		for _, c := range cands {
			if !usedT[c.ti] && !usedD[c.di] {
				usedT[c.ti], usedD[c.di] = true, true
				want[c.ti] = c.di
			}
		}
		tr.Update(frame(1, 5), d1, nil)
		act := tr.Active()
		if len(act) != n {
			t.Fatalf("round %d: %d active, want %d", round, len(act), n)
		}
		for ti, o := range act {
			if o.Box != d1[want[ti]].Box {
				t.Fatalf("round %d: object %d (%s) has %+v, want detection %d %+v", round, ti, o.ID, o.Box, want[ti], d1[want[ti]].Box)
			}
		}
	}
}
