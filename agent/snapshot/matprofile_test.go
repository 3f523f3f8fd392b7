//go:build matprofile

package snapshot

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when any gocv.Mat is still open after the tests,
// including those Encode creates on its success and error paths.
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingMats(m)) }
