package track

import (
	"math"
	"testing"

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
