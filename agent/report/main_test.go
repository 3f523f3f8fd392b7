package report

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/leakcheck"
)

// TestMain fails the run when a goroutine a test started is still running
// afterwards. The package is plain Go: its tests build without cgo.
func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
