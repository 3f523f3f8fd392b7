package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// stopTB stands in for the testing.TB a helper is given: it records the
// first Fatal/Fatalf/Skipf and Logf output, and stops the helper by
// panicking with itself, which failing recovers. Everything else
// (TempDir, Cleanup, Name) goes to the real test.
type stopTB struct {
	testing.TB
	fatal string
	logs  []string
}

func (s *stopTB) Helper() {}
func (s *stopTB) Fatal(args ...any) {
	s.fatal = fmt.Sprint(args...)
	panic(s)
}
func (s *stopTB) Fatalf(format string, args ...any) {
	s.fatal = fmt.Sprintf(format, args...)
	panic(s)
}
func (s *stopTB) Logf(format string, args ...any) {
	s.logs = append(s.logs, fmt.Sprintf(format, args...))
}

// failing runs fn with a stopTB on t and returns the Fatal message fn gave;
// it fails t when fn returned without calling Fatal, or when the message
// does not contain every string in want.
func failing(t *testing.T, fn func(tb testing.TB), want ...string) string {
	t.Helper()
	s := &stopTB{TB: t}
	stopped := func() (stopped bool) {
		defer func() {
			if r := recover(); r != nil {
				if r != s {
					panic(r)
				}
				stopped = true
			}
		}()
		fn(s)
		return false
	}()
	if !stopped {
		t.Fatalf("helper returned without failing the test")
	}
	for _, w := range want {
		if !strings.Contains(s.fatal, w) {
			t.Errorf("failure %q does not contain %q", s.fatal, w)
		}
	}
	return s.fatal
}
