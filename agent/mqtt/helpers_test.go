package mqtt

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/testenv"
)

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

// logBuffer collects log output (see testenv.Buffer).
type logBuffer = testenv.Buffer

// testTopic is a topic under cfg's prefix and device for tests that need
// one the agent itself does not use.
func testTopic(cfg Config, levels ...string) string {
	return cfg.TopicPrefix + "/" + cfg.Device + "/" + strings.Join(levels, "/")
}
