// Package leaky is run by leakcheck's tests: with LEAKY=1 its test leaves a
// goroutine running, which leakcheck.Run must turn into a failure.
package leaky

import (
	"os"
	"testing"

	"github.com/edgedet/edgedet/internal/leakcheck"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }

var block = make(chan struct{})

func TestMaybeLeak(t *testing.T) {
	if os.Getenv("LEAKY") == "1" {
		go func() { <-block }()
	}
}
