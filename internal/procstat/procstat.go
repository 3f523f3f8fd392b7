// Package procstat reads the process's own resource use for benchmarks:
// CPU time (getrusage) and memory figures of /proc/self/status.
package procstat

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the process's user+system CPU time (0 if unavailable).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StatusMB reads a "kB" field of /proc/self/status ("VmRSS", "VmHWM",
// "RssAnon", ...) in MB; 0 if absent.
func StatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	return ParseStatusMB(f, field)
}

// ParseStatusMB reads a "kB" field of a /proc/PID/status text in MB; 0 if
// absent or malformed.
func ParseStatusMB(r io.Reader, field string) float64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}
