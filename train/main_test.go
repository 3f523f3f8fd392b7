package train

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/leakcheck"
)

// TestMain fails the run when a goroutine a test started (the parallel
// kernels start some) is still running afterwards.
func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
