package testenv

import (
	"testing"
	"time"
)

func parkOnChannel(ch chan struct{}, done chan struct{}) {
	<-ch
	close(done)
}

// TestBlockedFindsParkedGoroutine: blocked sees a goroutine parked on a
// channel receive by a function on its stack, and stops seeing it once it
// has moved on.
func TestBlockedFindsParkedGoroutine(t *testing.T) {
	ch, done := make(chan struct{}), make(chan struct{})
	if blocked([]string{"testenv.parkOnChannel"}) {
		t.Fatal("found a parked parkOnChannel before starting one")
	}
	go parkOnChannel(ch, done)
	WaitBlocked(t, 10*time.Second, "parkOnChannel parked", "testenv.parkOnChannel")
	if blocked([]string{"testenv.parkOnChannel", "no such function"}) {
		t.Error("every frame must be on the stack")
	}
	close(ch)
	<-done
	Eventually(t, 10*time.Second, "parkOnChannel gone", func() bool { return !blocked([]string{"testenv.parkOnChannel"}) })
}

func TestParkedStates(t *testing.T) {
	for header, want := range map[string]bool{
		"goroutine 7 [chan receive]:":              true,
		"goroutine 7 [chan send, 2 minutes]:":      true,
		"goroutine 7 [select]:":                    true,
		"goroutine 7 [sync.Mutex.Lock]:":           true,
		"goroutine 7 [semacquire]:":                true,
		"goroutine 7 [running]:":                   false,
		"goroutine 7 [runnable]:":                  false,
		"goroutine 7 [sleep]:":                     false,
		"goroutine 7 [IO wait]:":                   false,
		"goroutine 7 [syscall, locked to thread]:": false,
		"not a header":                             false,
	} {
		if got := parked(header); got != want {
			t.Errorf("parked(%q) = %v, want %v", header, got, want)
		}
	}
}
