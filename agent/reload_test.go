package agent

import (
	"slices"
	"testing"
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
	if len(applied) != 0 || !slices.Equal(restart, []string{"stats"}) {
		t.Fatalf("applied %v, restart %v; want none applied and [stats] (log level applies live)", applied, restart)
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
