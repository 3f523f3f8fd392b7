//go:build !matprofile

package snapshot

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when a goroutine a test started is still running
// afterwards (with -tags matprofile, matprofile_test.go also checks Mats).
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingLeaks(m)) }
