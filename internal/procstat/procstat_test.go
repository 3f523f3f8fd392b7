package procstat

import (
	"math"
	"strings"
	"testing"
)

const status = `Name:	edgedet
VmHWM:	  204800 kB
VmRSS:	  102400 kB
RssAnon:	   51200 kB
Threads:	12
Broken:	lots kB
`

func TestParseStatusMB(t *testing.T) {
	for field, want := range map[string]float64{
		"VmHWM": 200, "VmRSS": 100, "RssAnon": 50, "Threads": 12.0 / 1024, "Broken": 0, "VmSwap": 0, "Vm": 0,
	} {
		if got := ParseStatusMB(strings.NewReader(status), field); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: %g MB, want %g", field, got, want)
		}
	}
}

// The live figures of this process: resident memory is there on Linux, and
// a busy loop costs CPU time.
func TestLiveFigures(t *testing.T) {
	if rss := StatusMB("VmRSS"); rss <= 0 {
		t.Errorf("VmRSS %g MB", rss)
	}
	t0 := CPUTime()
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	if t1 := CPUTime(); t1 <= t0 {
		t.Errorf("CPU time %v -> %v after a busy loop (%d)", t0, t1, x)
	}
}
