package detector

import (
	"io"
	"log/slog"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestDefaultSlots: without Slots, a detector has one Job more than it has
// sessions, so one frame is prepared while every session runs. (An
// internal test, so it runs before the first Detect: a detector left with
// no Job hangs in Acquire.)
func TestDefaultSlots(t *testing.T) {
	if err := InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	for sessions, want := range map[int]int{0: 2, 2: 3} {
		cfg := DefaultConfig()
		cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
		cfg.Threads = 1
		cfg.Sessions = sessions
		d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Slots(); got != want {
			t.Errorf("sessions %d: Slots() = %d, want %d", sessions, got, want)
		}
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}
}
