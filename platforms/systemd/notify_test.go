package systemd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSystemd plays systemd's side of the notify protocol: a unixgram
// socket whose datagrams are delivered on msgs.
type fakeSystemd struct {
	conn *net.UnixConn
	msgs chan string
}

func listen(t *testing.T, name string) *fakeSystemd {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	f := &fakeSystemd{conn: conn, msgs: make(chan string, 1024)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(f.msgs)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			f.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	t.Setenv(EnvNotifySocket, name)
	return f
}

// listenPath listens on a socket file in t.TempDir() (falling back to a
// shorter directory if the path would exceed sun_path's 108 bytes).
func listenPath(t *testing.T) *fakeSystemd {
	t.Helper()
	return listen(t, filepath.Join(sockDir(t), "notify"))
}

func sockDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 90 {
		d, err := os.MkdirTemp("", "sd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	return dir
}

func (f *fakeSystemd) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case m := <-f.msgs:
		return m
	case <-time.After(within):
		t.Fatalf("no datagram within %v", within)
		return ""
	}
}

// expectNone asserts nothing arrives for d.
func (f *fakeSystemd) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-f.msgs:
		t.Fatalf("unexpected datagram %q", m)
	case <-time.After(d):
	}
}

// poll calls cond every millisecond until it is true, failing the test
// with what after 10 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNotifierSendsExactDatagrams(t *testing.T) {
	f := listenPath(t)
	t.Setenv(EnvWatchdogUsec, "200000")
	t.Setenv(EnvWatchdogPID, "")
	n := NewNotifier()
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	steps := []struct {
		call func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{func() error { return n.Status("camera porch: 12.5 fps\nsecond line") }, "STATUS=camera porch: 12.5 fps second line"},
		{n.Reloading, "RELOADING=1\nMONOTONIC_USEC="},
		{n.Ready, "READY=1"},
		{n.Watchdog, "WATCHDOG=1"},
		{func() error { return n.ExtendTimeout(90 * time.Second) }, "EXTEND_TIMEOUT_USEC=90000000"},
		{n.Stopping, "STOPPING=1"},
	}
	for i, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.want, err)
		}
		got := f.next(t, 2*time.Second)
		if strings.HasSuffix(s.want, "MONOTONIC_USEC=") {
			// RELOADING=1 carries the monotonic clock in microseconds.
			usec, err := strconv.ParseUint(strings.TrimPrefix(got, s.want), 10, 64)
			if !strings.HasPrefix(got, s.want) || err != nil || usec == 0 {
				t.Fatalf("step %d: got %q, want %q followed by a positive number", i, got, s.want)
			}
			continue
		}
		if got != s.want {
			t.Fatalf("step %d: got %q, want %q", i, got, s.want)
		}
	}
	f.expectNone(t, 50*time.Millisecond)
	// The environment stays: READY=1 is sent again after every reload.
	if os.Getenv(EnvNotifySocket) == "" || os.Getenv(EnvWatchdogUsec) == "" {
		t.Error("sending cleared the systemd environment")
	}
}

func TestNotifierAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@edgedet-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	f := listen(t, name)
	n := NewNotifier()
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := f.next(t, 2*time.Second); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifierNoSocketIsNoop(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	t.Setenv(EnvWatchdogUsec, "200000")
	for name, n := range map[string]*Notifier{"NewNotifier": NewNotifier(), "nil": nil, "zero": {}} {
		if n.Enabled() {
			t.Errorf("%s: Enabled() = true", name)
		}
		for _, err := range []error{n.Ready(), n.Stopping(), n.Reloading(), n.Status("x"), n.Watchdog(), n.ExtendTimeout(time.Second), n.Send("A=1")} {
			if err != nil {
				t.Errorf("%s: %v, want nil", name, err)
			}
		}
		if iv := n.WatchdogInterval(); iv != 0 {
			t.Errorf("%s: WatchdogInterval() = %v, want 0", name, iv)
		}
		// Heartbeat.Run with no watchdog just waits for ctx.
		h := NewHeartbeat(n)
		h.Beat()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: Run did not return after cancel", name)
		}
	}
	var h *Heartbeat
	h.Beat() // nil-safe
}

func TestNotifierSendErrorWhenNobodyListens(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gone")
	t.Setenv(EnvNotifySocket, sock)
	if err := NewNotifier().Ready(); err == nil || !strings.Contains(err.Error(), "sd_notify NOTIFY_SOCKET="+sock) {
		t.Fatalf("Ready() = %v, want an sd_notify error naming the socket", err)
	}
}

func TestNotifierSocketUnsetAfterStart(t *testing.T) {
	listenPath(t)
	n := NewNotifier()
	t.Setenv(EnvNotifySocket, "")
	if err := n.Ready(); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET is no longer set") {
		t.Fatalf("Ready() = %v, want an error saying NOTIFY_SOCKET is gone", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv(EnvNotifySocket, "@edgedet-unused")
	pid := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		invalid   bool // WatchdogErr names the rejected value
	}{
		{"200000", "", 100 * time.Millisecond, false},
		{"200000", pid, 100 * time.Millisecond, false},
		{"30000000", pid, 15 * time.Second, false},
		{"200000", strconv.Itoa(os.Getpid() + 1), 0, false}, // someone else's watchdog
		{"", "", 0, false},
		{"200000", "garbage", 0, true},
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"abc", "", 0, true},
		{"18446744073709551615", "", 0, true},
		{"9223372036854775807", "", 0, true}, // overflows time.Duration
	} {
		t.Setenv(EnvWatchdogUsec, c.usec)
		t.Setenv(EnvWatchdogPID, c.pid)
		n := NewNotifier()
		if got := n.WatchdogInterval(); got != c.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: interval %v, want %v", c.usec, c.pid, got, c.want)
		}
		err := n.WatchdogErr()
		if c.invalid && (err == nil || !strings.Contains(err.Error(), strconv.Quote(c.usec))) {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: WatchdogErr() = %v, want an error naming the value", c.usec, c.pid, err)
		}
		if !c.invalid && err != nil {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: WatchdogErr() = %v, want nil", c.usec, c.pid, err)
		}
	}
	// Outside systemd the watchdog variables are not even read.
	t.Setenv(EnvNotifySocket, "")
	t.Setenv(EnvWatchdogUsec, "abc")
	if n := NewNotifier(); n.WatchdogErr() != nil || n.WatchdogInterval() != 0 {
		t.Errorf("no NOTIFY_SOCKET: WatchdogErr() = %v, interval %v; want nil, 0", n.WatchdogErr(), n.WatchdogInterval())
	}
	var nilN *Notifier
	if nilN.WatchdogErr() != nil {
		t.Error("nil Notifier: WatchdogErr() != nil")
	}
}

func TestWatchdogPIDMismatchSendsNothing(t *testing.T) {
	f := listenPath(t)
	t.Setenv(EnvWatchdogUsec, "20000")
	t.Setenv(EnvWatchdogPID, strconv.Itoa(os.Getpid()+1))
	n := NewNotifier()
	if err := n.Watchdog(); err != nil {
		t.Fatal(err)
	}
	h := NewHeartbeat(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	for range 5 {
		h.Beat()
		time.Sleep(10 * time.Millisecond) // pacing the beats over several intervals, not waiting for anything
	}
	cancel()
	<-done
	f.expectNone(t, 30*time.Millisecond)
	// The notifier itself still works for READY etc.
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := f.next(t, 2*time.Second); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestHeartbeatPingsOnlyWhileBeating(t *testing.T) {
	f := listenPath(t)
	t.Setenv(EnvWatchdogUsec, "40000") // ping interval 20ms
	t.Setenv(EnvWatchdogPID, strconv.Itoa(os.Getpid()))
	n := NewNotifier()
	iv := n.WatchdogInterval()
	if iv != 20*time.Millisecond {
		t.Fatalf("interval %v", iv)
	}
	h := NewHeartbeat(n)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { h.Run(ctx); close(runDone) }()
	defer func() { cancel(); <-runDone }()

	// No beats yet (pipeline still starting): no pings.
	f.expectNone(t, 3*iv)

	// The pipeline processes frames: pings keep coming.
	beating := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		for {
			select {
			case <-beating:
				return
			default:
			}
			h.Beat()
			time.Sleep(iv / 4) // pacing: a pipeline beating 4 times an interval
		}
	}()
	for i := range 5 {
		if got := f.next(t, 2*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: got %q", i, got)
		}
	}

	// The pipeline gets stuck: at most one ping for a beat already recorded,
	// then silence. Wait until Run has taken the last beat, then count the
	// pings over several more intervals: only the one for that beat (maybe
	// still being sent) may follow. A late ticker only means fewer pings,
	// so this holds on a loaded machine, where draining for a fixed time
	// could leave that ping to land in the silence check.
	close(beating)
	<-beatDone
	poll(t, "Run to take the last beat", func() bool { return !h.beat.Load() })
	sent, _ := h.Stats()
	time.Sleep(5 * iv) // a window for pings that must not come (a negative check, not a wait)
	// Every ping sent so far reaches the fake systemd; drain them.
	received := uint64(5)
	poll(t, "every ping sent to arrive", func() bool {
		for {
			select {
			case m := <-f.msgs:
				if m != "WATCHDOG=1" {
					t.Fatalf("got %q", m)
				}
				received++
				continue
			default:
			}
			pings, _ := h.Stats()
			return received == pings
		}
	})
	pings, failed := h.Stats()
	if pings > sent+1 {
		t.Errorf("%d pings after the beats stopped, want at most 1", pings-sent)
	}
	if pings < 5 || failed != 0 {
		t.Fatalf("Stats() = %d pings, %d failed", pings, failed)
	}

	// Frames flow again: pings resume.
	h.Beat()
	if got := f.next(t, 10*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after resume: got %q", got)
	}

	// Run returns when ctx is done.
	cancel()
	select {
	case <-runDone:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestHeartbeatCountsSendErrors(t *testing.T) {
	sock := filepath.Join(sockDir(t), "notify")
	t.Setenv(EnvNotifySocket, sock) // nobody listens: every send fails
	t.Setenv(EnvWatchdogUsec, "20000")
	t.Setenv(EnvWatchdogPID, "")
	h := NewHeartbeat(NewNotifier())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	// Beat while polling for the failures (the sleep below paces both).
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.Beat()
		if _, failed := h.Stats(); failed >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("send errors not counted")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	<-done
	if err := NewNotifier().Watchdog(); err == nil {
		t.Fatalf("Watchdog() = %v, want error", err)
	}
}
