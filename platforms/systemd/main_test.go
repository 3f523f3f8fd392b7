package systemd

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine a test started is still running
// afterwards.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
