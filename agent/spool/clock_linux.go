package spool

import (
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var (
	bootOnce sync.Once
	bootOK   bool   // CLOCK_BOOTTIME readable
	bootID   string // "" if unreadable
)

func initBoot() {
	var ts unix.Timespec
	bootOK = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) == nil
	if !bootOK {
		return
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		bootID = strings.TrimSpace(string(b))
	}
}

func sysUptime() time.Duration {
	bootOnce.Do(initBoot)
	if !bootOK {
		return time.Since(processStart)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		// Cannot happen once it worked; a spool never lets its
		// clock go backwards anyway.
		return time.Since(processStart)
	}
	return time.Duration(ts.Nano())
}

func sysBootID() string {
	bootOnce.Do(initBoot)
	return bootID
}
