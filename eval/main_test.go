package eval

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/leakcheck"
)

// TestMain fails the run when a goroutine a test started (BootstrapDelta
// starts some) is still running afterwards.
func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
