//go:build matprofile

package testenv

import (
	"os"
	"testing"
)

// TestMain fails the run when any gocv.Mat is still open after the tests.
func TestMain(m *testing.M) { os.Exit(RunCheckingMats(m)) }
