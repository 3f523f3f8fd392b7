package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// openInStateFile returns the IDs (with their labels) the agent's state
// file lists as open for camera.
func openInStateFile(t *testing.T, dir, camera string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "open-objects.json"))
	if os.IsNotExist(err) {
		return map[string]string{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Cameras map[string]struct {
			Objects []struct {
				ID    string `json:"id"`
				Label string `json:"label"`
			} `json:"objects"`
		} `json:"cameras"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file: %v: %s", err, data)
	}
	out := map[string]string{}
	for _, o := range st.Cameras[camera].Objects {
		out[o.ID] = o.Label
	}
	return out
}

type lifecycleEvent struct {
	Type      string     `json:"type"`
	EndReason string     `json:"end_reason"`
	Before    *objectMsg `json:"before"`
	After     objectMsg  `json:"after"`
}

// TestRunEndsObjectsLeftOpenByAKill: the agent is SIGKILLed while objects
// are in view; the next start publishes exactly one "end" with end_reason
// "restart" for each of them, and the per-label counts back to 0, before
// any new "new". A clean stop after that leaves nothing open.
func TestRunEndsObjectsLeftOpenByAKill(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	stateDir := t.TempDir()
	// max_age far beyond the test: nothing ends by itself.
	cfg := fmt.Sprintf("state_dir = %q\n", stateDir) +
		agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"),
			"[events]\nmin_hits = 2\nmax_age = \"10m\"\n\n[snapshots]\nenabled = false\n\n"+clipCamera("porch", clip))

	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/porch/events")
	first := startAgent(t, cfg)
	open := map[string]string{} // id → label, as a subscriber sees them
	drain := func() {
		for {
			select {
			case m := <-sub:
				var ev lifecycleEvent
				if err := json.Unmarshal(m.Payload, &ev); err != nil {
					t.Fatalf("event is not JSON: %v: %s", err, m.Payload)
				}
				switch ev.Type {
				case "new":
					open[ev.After.ID] = ev.After.Label
				case "end":
					t.Fatalf("an object ended with max_age 10m: %s", m.Payload)
				}
			default:
				return
			}
		}
	}
	testenv.Eventually(t, 60*time.Second, "the first agent to report 2 objects, recorded in its state file", func() bool {
		drain()
		return len(open) >= 2 && maps.Equal(openInStateFile(t, stateDir, "porch"), open)
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- nil
	left := openInStateFile(t, stateDir, "porch")
	for id := range open {
		if _, ok := left[id]; !ok {
			t.Fatalf("object %s was open at the kill but the state file lists only %v", id, left)
		}
	}
	t.Logf("killed with %d objects open: %v", len(left), left)

	// The second run: a fresh subscriber sees only its messages (and what
	// the broker retained, flagged as such).
	sub2 := testenv.Subscribe(t, broker.URL, "edgedet/e2e/porch/#")
	second := startAgent(t, cfg)
	restartEnds := map[string]int{}
	zeroed := map[string]bool{} // labels whose count went to 0 before the first new
	news := 0
	waitFor(t, sub2, 60*time.Second, "restart ends for every object, then 2 new objects", func(m testenv.Message) bool {
		if m.Retained {
			return false
		}
		if m.Topic != "edgedet/e2e/porch/events" {
			label := m.Topic[len("edgedet/e2e/porch/"):]
			if news == 0 && string(m.Payload) == "0" {
				zeroed[label] = true
			}
			return false
		}
		var ev lifecycleEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("event is not JSON: %v: %s", err, m.Payload)
		}
		switch {
		case ev.Type == "end" && ev.EndReason == "restart":
			if news > 0 {
				t.Fatalf("restart end after a new event: %s", m.Payload)
			}
			if _, ok := left[ev.After.ID]; !ok {
				t.Fatalf("restart end for %s, which was not open: %s", ev.After.ID, m.Payload)
			}
			if ev.After.Label != left[ev.After.ID] || ev.After.EndTime == nil || ev.Before == nil || ev.Before.ID != ev.After.ID {
				t.Fatalf("restart end does not describe the object: %s", m.Payload)
			}
			restartEnds[ev.After.ID]++
		case ev.Type == "new":
			if len(restartEnds) != len(left) {
				t.Fatalf("new event before every left object was ended (%d of %d): %s", len(restartEnds), len(left), m.Payload)
			}
			news++
		case ev.Type == "end":
			t.Fatalf("end with reason %q, want restart or none yet: %s", ev.EndReason, m.Payload)
		}
		return news >= 2
	})
	for id, n := range restartEnds {
		if n != 1 {
			t.Errorf("object %s got %d restart ends, want 1", id, n)
		}
	}
	for _, label := range left {
		if !zeroed[label] {
			t.Errorf("count of %q not set to 0 before the first new (zeroed: %v)", label, zeroed)
		}
	}

	// A clean stop ends what is open (reason shutdown) and empties the file.
	second.stop(t, 20*time.Second)
	waitFor(t, sub2, 10*time.Second, "an end with reason shutdown", func(m testenv.Message) bool {
		var ev lifecycleEvent
		return m.Topic == "edgedet/e2e/porch/events" && json.Unmarshal(m.Payload, &ev) == nil &&
			ev.Type == "end" && ev.EndReason == "shutdown"
	})
	if rest := openInStateFile(t, stateDir, "porch"); len(rest) != 0 {
		t.Errorf("state file after a clean stop lists %v", rest)
	}
}
