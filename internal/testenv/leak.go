package testenv

import (
	"testing"

	"github.com/edgedet/edgedet/internal/leakcheck"
)

// RunCheckingLeaks runs the tests and fails the run when a goroutine they
// started is still running afterwards: see leakcheck.Run.
func RunCheckingLeaks(m *testing.M) int { return leakcheck.Run(m) }
