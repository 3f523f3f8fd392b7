//go:build !matprofile

package calib_test

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when a goroutine a test started (the camera
// stream) is still running afterwards.
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingLeaks(m)) }
