package distill

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/leakcheck"
)

// TestMain fails the run when a goroutine a test started (train's parallel
// kernels start some) is still running afterwards.
func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
