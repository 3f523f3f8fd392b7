package clock

import (
	"testing"
	"time"
)

func TestFakeStepsWallOnly(t *testing.T) {
	t0 := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	f := NewFake(t0)
	m0 := f.Mono()
	f.StepWall(-72 * time.Hour)
	if got := f.Now(); !got.Equal(t0.Add(-72 * time.Hour)) {
		t.Errorf("wall after a -72h step: %v", got)
	}
	if f.Mono() != m0 {
		t.Errorf("a wall step moved the monotonic clock: %v -> %v", m0, f.Mono())
	}
	f.Advance(3 * time.Second)
	f.Advance(-time.Hour) // ignored
	if d := f.Mono() - m0; d != 3*time.Second {
		t.Errorf("monotonic advanced %v, want 3s", d)
	}
	if got := f.Now(); !got.Equal(t0.Add(-72*time.Hour + 3*time.Second)) {
		t.Errorf("wall after advancing 3s: %v", got)
	}
}

func TestSystemMonoNeverGoesBack(t *testing.T) {
	a := System.Mono()
	b := System.Mono()
	if b < a {
		t.Errorf("System.Mono went back: %v then %v", a, b)
	}
}
