// Package leakcheck fails a test binary that leaves goroutines running. It
// is plain Go, so packages that build without cgo can use it; package
// internal/testenv wraps it for the others.
package leakcheck

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Run runs the tests and returns their exit code, turned into a failure
// when a goroutine started by the tests is still running afterwards
// (goleak retries for a while, so goroutines that are merely slow to notice
// their cancellation do not count). Call it from TestMain. The check only
// runs after passing tests: a failed test may leave anything behind.
func Run(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goroutines left running after the tests: %v\n", err)
		return 1
	}
	return code
}
