package agent

import (
	"slices"
	"testing"

	"github.com/edgedet/edgedet/agent/control"
)

// Reload reports which sections differ; the detector is not needed for a
// config whose threshold does not change.
func TestReloadNamesSectionsNeedingRestart(t *testing.T) {
	dir, text := minimal(t)
	cur, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse([]byte(text+"\n[stats]\ninterval = \"5s\"\n\n[log]\nlevel = \"debug\"\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: cur}
	applied, restart, err := a.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"log.level"}) || !slices.Equal(restart, []string{"stats"}) {
		t.Fatalf("applied %v, restart %v; want [log.level] applied and [stats] (log level applies live)", applied, restart)
	}
	if a.cfg.Log.Level != "debug" {
		t.Errorf("log level not taken over: %q", a.cfg.Log.Level)
	}

	// The state directory is opened once, at start.
	moved, err := Parse([]byte("state_dir = \"elsewhere\"\n"+text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, restart, err := a.Reload(moved); err != nil || !slices.Equal(restart, []string{"state_dir"}) {
		t.Errorf("state_dir changed: restart %v, err %v; want [state_dir]", restart, err)
	}
}

// A new threshold reaches the detector and every camera's control, and
// the retained control states are queued again; the same file reloaded
// changes nothing and names nothing.
func TestReloadThresholdRepublishesState(t *testing.T) {
	dir, text := minimal(t)
	cur, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	det := newFakeDetector()
	ctrl := control.NewCamera("front", cur.Detector.ScoreThreshold)
	a := &Agent{cfg: cur, det: det, pipes: []*pipeline{{name: "front", ctrl: ctrl}}}
	published := 0
	pub := func() { published++ }
	a.publishControl.Store(&pub)

	same, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if applied, restart, err := a.Reload(same); err != nil || len(applied) != 0 || len(restart) != 0 || published != 0 {
		t.Fatalf("unchanged file: applied %v, restart %v, err %v, %d republished; want nothing", applied, restart, err, published)
	}
	next := *cur
	next.Detector.ScoreThreshold = 0.8
	applied, restart, err := a.Reload(&next)
	if err != nil || !slices.Equal(applied, []string{"detector.score_threshold"}) || len(restart) != 0 {
		t.Fatalf("applied %v, restart %v, err %v", applied, restart, err)
	}
	if det.threshold != 0.8 || ctrl.Threshold() != 0.8 || published != 1 {
		t.Errorf("detector %v, control %v, %d republished; want 0.8, 0.8, 1", det.threshold, ctrl.Threshold(), published)
	}
}
