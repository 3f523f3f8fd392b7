// Package clock separates the two clocks the agent reads: the wall clock,
// for timestamps people and subscribers see, and the monotonic clock, for
// every "how long since". A wall clock can step by days (NTP sync on a
// board without RTC, an operator's date command); elapsed time judged from
// it would hide a stall for the size of a backward step and fake one after
// a forward step. Code that ages, expires or judges staleness takes a
// Clock, so a test can step the wall clock and show that it does not care.
package clock

import (
	"sync"
	"time"
)

// Clock reads the wall and the monotonic clock. Implementations are safe
// for concurrent use.
type Clock interface {
	// Now is the wall-clock time: use it only as a timestamp to show or
	// publish, never to measure elapsed time.
	Now() time.Time
	// Mono is a monotonic reading: the time since some fixed, unspecified
	// origin. Only differences between two readings of the same Clock
	// mean anything; it never goes back.
	Mono() time.Duration
}

// System is the machine's clock: Now is time.Now, Mono the time elapsed on
// Go's monotonic clock since the process started.
var System Clock = system{}

type system struct{}

// origin is the monotonic reference of System.Mono.
var origin = time.Now()

func (system) Now() time.Time      { return time.Now() }
func (system) Mono() time.Duration { return time.Since(origin) }

// Fake is a Clock a test drives: Advance moves both clocks (time passes),
// StepWall moves only the wall clock (someone set the date). The zero value
// is not usable; build it with NewFake.
type Fake struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake whose wall clock reads wall and whose monotonic
// clock reads one hour (an arbitrary, non-zero origin).
func NewFake(wall time.Time) *Fake {
	return &Fake{wall: wall, mono: time.Hour}
}

// Now returns the fake wall time (without a monotonic reading).
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

// Mono returns the fake monotonic reading.
func (f *Fake) Mono() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

// Advance lets d pass on both clocks. A negative d is ignored: monotonic
// time never goes back.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall = f.wall.Add(d)
	f.mono += d
}

// StepWall moves the wall clock by d (either way) without any time
// passing.
func (f *Fake) StepWall(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall = f.wall.Add(d)
}
