// Package systemd integrates edgedet with systemd: sd_notify(3) state
// messages (READY, RELOADING, STOPPING, STATUS, WATCHDOG) sent with
// github.com/coreos/go-systemd/v22/daemon (pure Go, no libsystemd), and a
// Heartbeat that sends watchdog pings only while the pipeline is making
// progress. The unit file and install script live next to this package
// (edgedet.service, install.sh).
//
// Everything is a no-op when the process is not started by systemd
// (NOTIFY_SOCKET unset), including on a nil *Notifier or *Heartbeat, so
// callers never need to branch on "are we under systemd".
package systemd

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Environment variables set by systemd for Type=notify services.
const (
	EnvNotifySocket = "NOTIFY_SOCKET"
	EnvWatchdogUsec = "WATCHDOG_USEC"
	EnvWatchdogPID  = "WATCHDOG_PID"
)

// Notifier sends sd_notify state strings to systemd. The zero value and a
// nil *Notifier are valid and do nothing.
type Notifier struct {
	enabled     bool          // NOTIFY_SOCKET was set at NewNotifier
	watchdog    time.Duration // WATCHDOG_USEC; 0 when disabled or not ours
	watchdogErr error         // why an invalid WATCHDOG_USEC/WATCHDOG_PID disabled it
}

// NewNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. The
// environment is left in place: daemon.SdNotify reads NOTIFY_SOCKET on every
// send (READY is sent again after each reload). The watchdog applies only
// when WATCHDOG_PID is unset or equals os.Getpid(); an invalid WATCHDOG_USEC
// or WATCHDOG_PID disables it, and WatchdogErr says why.
func NewNotifier() *Notifier {
	n := &Notifier{}
	if os.Getenv(EnvNotifySocket) == "" {
		return n
	}
	n.enabled = true
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.watchdogErr = fmt.Errorf("systemd watchdog disabled: %s=%q %s=%q: %w",
			EnvWatchdogUsec, os.Getenv(EnvWatchdogUsec), EnvWatchdogPID, os.Getenv(EnvWatchdogPID), err)
		return n
	}
	if d < 0 { // WATCHDOG_USEC beyond time.Duration's range wrapped around
		n.watchdogErr = fmt.Errorf("systemd watchdog disabled: %s=%q is out of range", EnvWatchdogUsec, os.Getenv(EnvWatchdogUsec))
		return n
	}
	n.watchdog = d
	return n
}

// Enabled reports whether a notify socket is configured.
func (n *Notifier) Enabled() bool { return n != nil && n.enabled }

// WatchdogErr returns why the watchdog settings were rejected, or nil.
func (n *Notifier) WatchdogErr() error {
	if n == nil {
		return nil
	}
	return n.watchdogErr
}

// Send writes one datagram holding the given state lines ("KEY=VALUE"),
// joined by newlines, with daemon.SdNotify. It is a no-op when NOTIFY_SOCKET
// was unset at NewNotifier.
func (n *Notifier) Send(state ...string) error {
	if !n.Enabled() || len(state) == 0 {
		return nil
	}
	msg := strings.Join(state, "\n")
	sent, err := daemon.SdNotify(false, msg)
	if err != nil {
		return fmt.Errorf("sd_notify %s=%s: %w", EnvNotifySocket, os.Getenv(EnvNotifySocket), err)
	}
	if !sent { // NOTIFY_SOCKET was unset after NewNotifier
		return fmt.Errorf("sd_notify %q: %s is no longer set", msg, EnvNotifySocket)
	}
	return nil
}

// Ready sends READY=1: startup is complete. edgedet calls it once the
// publisher has connected and the first inference has succeeded.
func (n *Notifier) Ready() error { return n.Send(daemon.SdNotifyReady) }

// Stopping sends STOPPING=1 at the start of a graceful shutdown.
func (n *Notifier) Stopping() error { return n.Send(daemon.SdNotifyStopping) }

// Reloading sends RELOADING=1 at the start of a SIGHUP config reload, with
// MONOTONIC_USEC as sd_notify(3) asks. The caller must call Ready when the
// reload has finished (successfully or with the old config kept), or
// systemd keeps the unit in "reloading".
func (n *Notifier) Reloading() error {
	state := []string{daemon.SdNotifyReloading}
	if m := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"); m != "" {
		state = append(state, m)
	}
	return n.Send(state...)
}

// Status sends a free-form one-line status shown by `systemctl status`.
// Newlines would start a new state assignment, so they become spaces.
func (n *Notifier) Status(s string) error {
	return n.Send("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// ExtendTimeout asks systemd to extend the current start, reload or stop
// timeout by d (EXTEND_TIMEOUT_USEC), e.g. while TensorRT builds an engine.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("sd_notify: ExtendTimeout(%v): needs a positive duration", d)
	}
	return n.Send("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// WatchdogInterval is how often to send WATCHDOG=1: half of WATCHDOG_USEC,
// as sd_watchdog_enabled(3) recommends; 0 when the watchdog is disabled.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog / 2
}

// Watchdog sends one WATCHDOG=1 keep-alive ping. Prefer Heartbeat, which
// pings only while the pipeline makes progress.
func (n *Notifier) Watchdog() error {
	if n.WatchdogInterval() == 0 {
		return nil
	}
	return n.Send(daemon.SdNotifyWatchdog)
}

// Heartbeat ties watchdog pings to liveness: the pipeline calls Beat on
// every processed frame and Run pings WATCHDOG=1 every WatchdogInterval only
// if a Beat happened since the previous ping. A stuck pipeline stops the
// pings, systemd's WatchdogSec expires and Restart=on-failure restarts us.
type Heartbeat struct {
	n     *Notifier
	beat  atomic.Bool
	pings atomic.Uint64
	errs  atomic.Uint64
}

// NewHeartbeat returns a Heartbeat pinging through n (which may be nil).
func NewHeartbeat(n *Notifier) *Heartbeat { return &Heartbeat{n: n} }

// Beat records progress. It is a single atomic store, safe to call from any
// goroutine on every frame, and a no-op on a nil *Heartbeat.
func (h *Heartbeat) Beat() {
	if h != nil {
		h.beat.Store(true)
	}
}

// Run sends WATCHDOG=1 every WatchdogInterval while beats keep coming and
// returns when ctx is done. With the watchdog disabled it just waits for
// ctx. Send errors are counted (Stats) rather than returned: a transient
// socket error must not stop later pings.
func (h *Heartbeat) Run(ctx context.Context) {
	if h == nil {
		<-ctx.Done()
		return
	}
	iv := h.n.WatchdogInterval()
	if iv <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !h.beat.Swap(false) {
				continue // no progress since the last ping: let the watchdog fire
			}
			if err := h.n.Watchdog(); err != nil {
				h.errs.Add(1)
				continue
			}
			h.pings.Add(1)
		}
	}
}

// Stats returns the number of pings sent and of failed sends so far.
func (h *Heartbeat) Stats() (pings, failed uint64) {
	if h == nil {
		return 0, 0
	}
	return h.pings.Load(), h.errs.Load()
}
