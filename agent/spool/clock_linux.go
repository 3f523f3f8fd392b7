package spool

import (
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var (
	bootOnce   sync.Once
	bootOrigin time.Duration // CLOCK_BOOTTIME at processStart; -1 if unreadable
	bootID     string        // "" if unreadable
)

// initBoot reads CLOCK_BOOTTIME once. Uptime continues it with the
// process's monotonic clock, which costs no system call; that clock does
// not count time suspended, so a suspend during a run is counted only by
// the next run in the same boot (never twice, never backwards).
func initBoot() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		bootOrigin = -1
		return
	}
	bootOrigin = time.Duration(ts.Nano()) - time.Since(processStart)
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		bootID = strings.TrimSpace(string(b))
	}
}

func sysUptime() time.Duration {
	bootOnce.Do(initBoot)
	if bootOrigin < 0 {
		return time.Since(processStart)
	}
	return bootOrigin + time.Since(processStart)
}

func sysBootID() string {
	bootOnce.Do(initBoot)
	return bootID
}
