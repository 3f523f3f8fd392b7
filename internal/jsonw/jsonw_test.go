package jsonw

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestAppenders(t *testing.T) {
	for _, s := range []string{"plain", `quote " and \ slash`, "tab\tnew\nline\x01", "é 😀", "bad \xff utf8"} {
		var back string
		if err := json.Unmarshal(String(nil, s), &back); err != nil {
			t.Fatalf("String(%q) is not JSON: %v", s, err)
		}
		if s != "bad \xff utf8" && back != s {
			t.Errorf("String round trip %q → %q", s, back)
		}
	}
	if got := string(Floats(nil, 2, 1.234, float32(math.NaN()), float32(math.Inf(1)))); got != "1.23,0.00,0.00" {
		t.Errorf("Floats = %s (NaN and Inf must become 0)", got)
	}
	if got := string(Time(nil, time.Time{})); got != "null" {
		t.Errorf("zero time = %s, want null", got)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.FixedZone("X", 3600))
	if got := string(Time(nil, at)); got != `"2026-01-02T02:04:05.006Z"` {
		t.Errorf("Time = %s", got)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(50, func() { buf = Floats(String(buf[:0], "dog"), 1, 1, 2, 3, 4) }); n != 0 {
		t.Errorf("appenders allocate %.0f times", n)
	}
}
