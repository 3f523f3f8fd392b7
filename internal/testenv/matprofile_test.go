//go:build matprofile

package testenv

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"gocv.io/x/gocv"
)

// TestMain fails the run when any gocv.Mat is still open after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if n := gocv.MatProfile.Count(); n != 0 {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		fmt.Fprintf(os.Stderr, "leaked %d gocv.Mat:\n%s", n, b.String())
		code = 1
	}
	os.Exit(code)
}
