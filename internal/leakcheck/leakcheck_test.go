package leakcheck_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run fails a test binary whose tests leave a goroutine running, naming
// it, and passes one whose tests do not (testdata/leaky, run as its own
// test binary).
func TestRunFailsOnLeakedGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a test binary")
	}
	run := func(leaky string) (string, error) {
		cmd := exec.Command("go", "test", "-count=1", "./testdata/leaky")
		cmd.Env = append(os.Environ(), "LEAKY="+leaky)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("0"); err != nil {
		t.Fatalf("no leak: %v\n%s", err, out)
	}
	out, err := run("1")
	if err == nil || !strings.Contains(out, "goroutines left running after the tests") || !strings.Contains(out, "leaky.TestMaybeLeak") {
		t.Errorf("a leaked goroutine: err %v, want a failure naming it:\n%s", err, out)
	}
}
