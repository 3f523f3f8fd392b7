//go:build matprofile

package testenv

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"gocv.io/x/gocv"
)

// RunCheckingMats runs the tests and returns their exit code, turned into a
// failure when any gocv.Mat (or, as RunCheckingLeaks, any goroutine) is
// still open afterwards (built with
// -tags matprofile, which `make test` uses). Call it from TestMain.
func RunCheckingMats(m *testing.M) int {
	code := RunCheckingLeaks(m)
	if n := gocv.MatProfile.Count(); n != 0 {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		fmt.Fprintf(os.Stderr, "leaked %d gocv.Mat:\n%s", n, b.String())
		code = 1
	}
	return code
}
