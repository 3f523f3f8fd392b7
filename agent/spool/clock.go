package spool

import "time"

// Clock is where a spool reads time; tests inject a fake one with WithClock.
//
// A spool measures how long it has held a message on Uptime alone, so a
// wall clock that is stepped (NTP correcting a board without a real-time
// clock, an operator, a drifting RTC) never ages a message, in either
// direction.
type Clock interface {
	// Now reads the wall clock. A spool only stamps it into a Message
	// whose Time is zero; it never measures an age with it.
	Now() time.Time
	// Uptime reads a clock that moves forward at real speed from an origin
	// fixed for the current boot of the machine, whatever the wall clock
	// does (on Linux CLOCK_BOOTTIME, which also counts time suspended).
	Uptime() time.Duration
	// BootID identifies the current boot, or is "" when unknown. Two
	// Uptime readings taken by different processes are comparable only
	// when both saw the same non-empty BootID.
	BootID() string
}

// SystemClock returns the machine's clocks: time.Now, and on Linux
// CLOCK_BOOTTIME with /proc/sys/kernel/random/boot_id. Elsewhere (or if
// those cannot be read) Uptime is the process's monotonic clock and BootID
// is "", so a Disk spool cannot tell how long it was closed and counts that
// time as zero.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time        { return time.Now() }
func (systemClock) Uptime() time.Duration { return sysUptime() }
func (systemClock) BootID() string        { return sysBootID() }

// processStart is the origin of the fallback Uptime.
var processStart = time.Now()

// Option configures a spool.
type Option func(*options)

type options struct {
	clock   Clock
	segSize int64      // Disk only; 0 = derived from Limits.MaxBytes
	fs      fileSystem // Disk only
}

// WithClock makes the spool read time from c instead of SystemClock.
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// withSegmentSize overrides the Disk segment size (tests).
func withSegmentSize(n int64) Option { return func(o *options) { o.segSize = n } }

func buildOptions(opts []Option) options {
	o := options{clock: SystemClock(), fs: osFS{}}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}
