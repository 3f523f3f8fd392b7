package leakcheck

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestCheckKeepsAFailedRunsCode: a failed run's exit code is returned as
// is, without looking for goroutines.
func TestCheckKeepsAFailedRunsCode(t *testing.T) {
	var out strings.Builder
	looked := false
	find := func(...goleak.Option) error { looked = true; return errors.New("leak") }
	if got := check(3, find, &out); got != 3 || looked || out.Len() != 0 {
		t.Errorf("check(3) = %d (looked %v, wrote %q), want 3 without looking", got, looked, out.String())
	}
}

// TestCheckPassesACleanRun: a passing run without leftovers stays 0.
func TestCheckPassesACleanRun(t *testing.T) {
	var out strings.Builder
	if got := check(0, func(...goleak.Option) error { return nil }, &out); got != 0 || out.Len() != 0 {
		t.Errorf("check(0) = %d, wrote %q; want 0 and nothing", got, out.String())
	}
}

// parkUntilClosed is the goroutine TestCheckFailsOnALeftGoroutine leaves
// running; its name is what the report must show.
func parkUntilClosed(started chan<- struct{}, release <-chan struct{}) {
	close(started)
	<-release
}

// TestCheckFailsOnALeftGoroutine: with goleak's real search, a goroutine
// still running turns a passing run into exit code 1 and is named.
func TestCheckFailsOnALeftGoroutine(t *testing.T) {
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		parkUntilClosed(started, release)
	}()
	<-started
	var out strings.Builder
	got := check(0, goleak.Find, &out)
	close(release)
	<-done
	if got != 1 || !strings.Contains(out.String(), "goroutines left running after the tests") || !strings.Contains(out.String(), "parkUntilClosed") {
		t.Errorf("check(0) with a goroutine left = %d, wrote %q; want 1 and a report naming parkUntilClosed", got, out.String())
	}
}
