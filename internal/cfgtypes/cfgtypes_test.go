package cfgtypes

import (
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1.5s")); err != nil {
		t.Fatal(err)
	}
	if d.D() != 1500*time.Millisecond {
		t.Fatalf("got %v", d.D())
	}
	b, _ := d.MarshalText()
	if string(b) != "1.5s" {
		t.Fatalf("marshal: %s", b)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Fatal("want error for \"soon\"")
	}
}
