package outbox

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when a goroutine a test started is still running
// afterwards.
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingLeaks(m)) }
