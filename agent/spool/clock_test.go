package spool

import (
	"sync"
	"time"
)

// fakeClock is a Clock moved by hand. Real time (advance) moves Uptime and
// the wall clock together; stepWall moves only the wall clock, as NTP or an
// operator does; reboot starts a new boot.
type fakeClock struct {
	mu   sync.Mutex
	wall time.Time
	up   time.Duration
	boot string
}

var _ Clock = (*fakeClock)(nil)

// newFakeClock starts a clock whose wall time is wall, an hour after boot.
func newFakeClock(wall time.Time) *fakeClock {
	return &fakeClock{wall: wall, up: time.Hour, boot: "boot-1"}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *fakeClock) Uptime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

func (c *fakeClock) BootID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boot
}

// advance lets d of real time pass.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
	c.up += d
}

// stepWall moves the wall clock alone by d (either direction).
func (c *fakeClock) stepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// reboot starts boot id with Uptime up; the wall clock is set to wall (a
// board without a real-time clock boots with a stale one).
func (c *fakeClock) reboot(id string, up time.Duration, wall time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.boot, c.up, c.wall = id, up, wall
}
