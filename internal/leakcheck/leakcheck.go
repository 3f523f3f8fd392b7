// Package leakcheck fails a test binary that leaves goroutines running. It
// is plain Go, so packages that build without cgo can use it; package
// internal/testenv wraps it for the others.
package leakcheck

import (
	"fmt"
	"io"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Run runs the tests and returns their exit code, turned into a failure
// when a goroutine started by the tests is still running afterwards
// (goleak retries for a while, so goroutines that are merely slow to notice
// their cancellation do not count). Call it from TestMain. The check only
// runs after passing tests: a failed test may leave anything behind.
func Run(m *testing.M) int { return check(m.Run(), goleak.Find, os.Stderr) }

// check is Run's verdict on a test run that exited with code: find looks
// for goroutines left running, and what it reports is written to w.
func check(code int, find func(...goleak.Option) error, w io.Writer) int {
	if code != 0 {
		return code
	}
	if err := find(); err != nil {
		fmt.Fprintf(w, "goroutines left running after the tests: %v\n", err)
		return 1
	}
	return code
}
