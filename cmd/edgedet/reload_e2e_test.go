package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestRunReloadsOnSIGHUP: a new score threshold applies without a
// reconnect; an invalid file is rejected and the running config kept.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/#")
	text := agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		"[stats]\ninterval = \"500ms\"\n\n"+clipCamera("porch", clip))
	agent := startAgent(t, text)

	onlines := 0
	threshold := func(want float64) func(testenv.Message) bool {
		return func(m testenv.Message) bool {
			if m.Topic == "edgedet/e2e/available" && string(m.Payload) == "online" {
				onlines++
			}
			if m.Topic != "edgedet/e2e/stats" {
				return false
			}
			var st struct {
				Cameras map[string]struct {
					Threshold float64 `json:"threshold"`
				} `json:"cameras"`
			}
			json.Unmarshal(m.Payload, &st)
			return st.Cameras["porch"].Threshold > want-0.001 && st.Cameras["porch"].Threshold < want+0.001
		}
	}
	waitFor(t, sub, 30*time.Second, "stats with threshold 0.3", threshold(0.3))

	reloaded := strings.Replace(text, "score_threshold = 0.3", "score_threshold = 0.8", 1)
	if err := os.WriteFile(agent.config, []byte(reloaded), 0o644); err != nil {
		t.Fatal(err)
	}
	agent.cmd.Process.Signal(syscall.SIGHUP)
	// The retained control state is republished at once (it kept the old
	// value), then the stats show the new threshold.
	waitFor(t, sub, 10*time.Second, "threshold state 0.8", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/porch/threshold/state" && string(m.Payload) == "0.8"
	})
	waitFor(t, sub, 10*time.Second, "stats with threshold 0.8 after SIGHUP", threshold(0.8))
	// The same file again: nothing to apply, no section said to need a
	// restart (the board's plan filled in at start is not a change).
	agent.cmd.Process.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 10*time.Second, "the second reload logged", func() bool {
		return strings.Count(agent.stderr.String(), "config reloaded") == 2
	})
	if strings.Contains(agent.stderr.String(), "need a restart") {
		t.Errorf("an unchanged file was said to need a restart:\n%s", agent.stderr.String())
	}
	// Detections published after the reload all clear the new threshold.
	waitFor(t, sub, 10*time.Second, "a detections message after the reload", func(m testenv.Message) bool {
		if m.Topic != "edgedet/e2e/porch/detections" {
			return false
		}
		var msg detectionMsg
		json.Unmarshal(m.Payload, &msg)
		for _, d := range msg.Detections {
			if d.Score < 0.8 {
				return false // may still be a frame from before the reload
			}
		}
		return true
	})

	if err := os.WriteFile(agent.config, []byte(reloaded+"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agent.cmd.Process.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 10*time.Second, "the invalid config rejected", func() bool {
		return strings.Contains(agent.stderr.String(), "reload rejected")
	})
	waitFor(t, sub, 10*time.Second, "stats still at 0.8", threshold(0.8))
	if onlines != 1 {
		t.Errorf("saw %d \"online\" messages; a reload must not reconnect", onlines)
	}
	if !strings.Contains(agent.stderr.String(), "config reloaded") {
		t.Error("no \"config reloaded\" log line")
	}
}
