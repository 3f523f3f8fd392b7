//go:build matprofile

package lut

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when any gocv.Mat is still open after the tests.
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingMats(m)) }
