package spool

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The system clock behind Clock: Uptime follows CLOCK_BOOTTIME (not the
// process's age) and BootID is the kernel's boot_id.
func TestSystemBootClock(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skipf("no boot_id: %v", err)
	}
	if got, want := sysBootID(), strings.TrimSpace(string(b)); got != want {
		t.Errorf("sysBootID() = %q, want %q", got, want)
	}
	up := sysUptime()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(ts.Nano()) - up; d < 0 || d > time.Second {
		t.Errorf("sysUptime() = %v, CLOCK_BOOTTIME right after = %v: want it at most 1 s behind", up, time.Duration(ts.Nano()))
	}
}

// Uptime advances with the monotonic clock, never backwards.
func TestSystemUptimeAdvances(t *testing.T) {
	before := time.Now()
	u1 := sysUptime()
	start := time.Now()
	for time.Since(start) < 10*time.Millisecond {
		runtime.Gosched() // let the clock move, measured, not slept on
	}
	u2 := sysUptime()
	elapsed := time.Since(before)
	if d := u2 - u1; d < 10*time.Millisecond || d > elapsed {
		t.Errorf("sysUptime moved by %v while at least 10ms and at most %v passed", d, elapsed)
	}
}
