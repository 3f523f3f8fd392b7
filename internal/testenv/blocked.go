package testenv

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// WaitBlocked polls the stacks of all goroutines until one whose stack
// mentions every string in frames (function names such as
// "(*Detector).Acquire") is parked in a channel operation, a select or a
// sync primitive, and fails the test with what if that does not happen
// within timeout. Tests use it to know that a goroutine is queued on a
// channel or lock before acting on it, instead of sleeping.
func WaitBlocked(t testing.TB, timeout time.Duration, what string, frames ...string) {
	t.Helper()
	Eventually(t, timeout, what, func() bool { return blocked(frames) })
}

// blocked reports whether a goroutine whose stack contains all of frames is
// parked waiting on a channel or a lock.
func blocked(frames []string) bool {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
next:
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !parked(header) {
			continue
		}
		for _, f := range frames {
			if !strings.Contains(g, f) {
				continue next
			}
		}
		return true
	}
	return false
}

// parked reports whether a goroutine header ("goroutine 7 [select]:")
// names a wait on a channel or a lock.
func parked(header string) bool {
	_, state, ok := strings.Cut(header, "[")
	if !ok {
		return false
	}
	for _, s := range []string{"chan receive", "chan send", "select", "semacquire", "sync.Mutex.Lock", "sync.RWMutex", "sync.Cond.Wait", "sync.WaitGroup.Wait"} {
		if strings.HasPrefix(state, s) {
			return true
		}
	}
	return false
}
