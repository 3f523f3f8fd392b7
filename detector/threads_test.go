package detector

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// osThreads is the number of OS threads of this process (Linux).
func osThreads(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("no /proc/self/task: %v", err)
	}
	return len(tasks)
}

// TestThreadsSetsTheIntraOpPool: threads = N gives the session an intra-op
// pool of N threads (N-1 workers besides the caller), even when N is well
// above what ONNX Runtime would choose for this machine (at most one per
// core), so the setting is really passed on.
func TestThreadsSetsTheIntraOpPool(t *testing.T) {
	if err := InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.Sessions, cfg.Slots = 1, 1
	// More workers than ORT's default pool could have here plus a margin
	// for threads the Go runtime may start meanwhile.
	cfg.Threads = 2*runtime.NumCPU() + 8
	before := osThreads(t)
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if added := osThreads(t) - before; added < cfg.Threads-1 {
		t.Errorf("loading with threads = %d added %d OS threads, want at least %d pool workers", cfg.Threads, added, cfg.Threads-1)
	}
}
