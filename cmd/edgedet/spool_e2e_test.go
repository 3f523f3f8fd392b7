package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

var loggedEvent = regexp.MustCompile(`msg=event .*?type=(\w+) id=(\S+)`)

// TestRunSpoolSurvivesOutageAndKill: events produced while the broker is
// down are spooled on disk; the agent is killed with SIGKILL; a new agent
// on the same spool delivers every one of them, in order, once the broker
// is back.
func TestRunSpoolSurvivesOutageAndKill(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	broker.Stop(t)
	cfg := agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		fmt.Sprintf("[events]\nmin_hits = 2\nmax_age = \"1s\"\n\n[snapshots]\nenabled = false\n\n[spool]\ndir = %q\n\n", t.TempDir())+
			clipCamera("porch", clip))

	first := startAgent(t, cfg)
	var spooled [][2]string // type, id in the order the first agent queued them
	testenv.Eventually(t, 60*time.Second, "the first agent to queue 4 events with the broker down", func() bool {
		spooled = nil
		for _, m := range loggedEvent.FindAllStringSubmatch(first.stderr.String(), -1) {
			spooled = append(spooled, [2]string{m[1], m[2]})
		}
		return len(spooled) >= 4
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- nil
	spooled = nil
	for _, m := range loggedEvent.FindAllStringSubmatch(first.stderr.String(), -1) {
		spooled = append(spooled, [2]string{m[1], m[2]})
	}

	broker.Restart(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/porch/events")
	startAgent(t, cfg)
	want := map[string]bool{}
	for _, e := range spooled {
		want[e[0]+" "+e[1]] = true
	}
	var got [][2]string
	waitFor(t, sub, 60*time.Second, fmt.Sprintf("all %d events spooled by the killed agent", len(spooled)), func(m testenv.Message) bool {
		var ev eventMsg
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("event is not JSON: %v", err)
		}
		if want[ev.Type+" "+ev.After.ID] {
			got = append(got, [2]string{ev.Type, ev.After.ID})
		}
		return len(got) == len(spooled)
	})
	if !slices.Equal(got, spooled) {
		t.Fatalf("spooled events arrived out of order:\n got  %v\n want %v", got, spooled)
	}
}
