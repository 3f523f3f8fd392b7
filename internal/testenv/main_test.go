//go:build !matprofile

package testenv

import (
	"os"
	"testing"
)

// TestMain fails the run when a goroutine a test started (a Mosquitto
// watcher, say) is still running afterwards (with -tags matprofile,
// matprofile_test.go also checks Mats).
func TestMain(m *testing.M) { os.Exit(RunCheckingLeaks(m)) }
