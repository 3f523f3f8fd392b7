package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/testenv"
)

// eventually polls fn every 10ms until it returns true or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		<-tick.C
	}
}

// logBuffer is a goroutine-safe sink for a slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many log lines contain s.
func (l *logBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// newLogger returns a debug-level text logger writing to a buffer; the
// buffer is printed if the test fails.
func newLogger(t testing.TB) (*slog.Logger, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// testConfig is a client config for broker with short timeouts and its own
// device level (so parallel tests would not share topics).
func testConfig(broker, device string) Config {
	return Config{
		Broker:         broker,
		Device:         device,
		TopicPrefix:    "edgedet-test",
		KeepAlive:      cfgtypes.Duration(5 * time.Second),
		ConnectTimeout: cfgtypes.Duration(2 * time.Second),
		PublishTimeout: cfgtypes.Duration(3 * time.Second),
	}
}

// waitFor reads ch until a message matches, failing after timeout.
func waitFor(t testing.TB, ch <-chan testenv.Message, timeout time.Duration, what string, match func(testenv.Message) bool) testenv.Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case m := <-ch:
			if match(m) {
				return m
			}
			seen = append(seen, m.Topic+"="+string(m.Payload))
		case <-timer.C:
			t.Fatalf("no %s within %s (saw %q)", what, timeout, seen)
			return testenv.Message{}
		}
	}
}

func payloadIs(topic, payload string, retained bool) func(testenv.Message) bool {
	return func(m testenv.Message) bool {
		return m.Topic == topic && string(m.Payload) == payload && m.Retained == retained
	}
}
