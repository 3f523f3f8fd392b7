package outbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/testenv"
)

const (
	msgTimeout  = 10 * time.Second
	connTimeout = 15 * time.Second // covers paho's connect retry and reconnect back-off
)

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

// gate is a TCP proxy in front of a broker that the test can close: while
// closed it refuses (accepts and drops) new connections. It lets a test
// subscribe to a restarted broker before the agent's client can reconnect.
type gate struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	URL    string
}

func newGate(t testing.TB, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, URL: "tcp://" + ln.Addr().String()}
	g.open.Store(true)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.open.Load() {
				c.Close()
				continue
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(b, c)
			go pipe(c, b)
		}
	}()
	return g
}

// startClient returns a connecting MQTT client for url, closed in Cleanup.
func startClient(t testing.TB, url, device string, log *slog.Logger) *mqtt.Client {
	t.Helper()
	return startClientTimeout(t, url, device, 3*time.Second, log)
}

// startClientTimeout is startClient with mqtt.publish_timeout set.
func startClientTimeout(t testing.TB, url, device string, publishTimeout time.Duration, log *slog.Logger) *mqtt.Client {
	t.Helper()
	c, err := mqtt.NewClient(mqtt.Config{
		Broker:         url,
		Device:         device,
		TopicPrefix:    "edgedet-test",
		KeepAlive:      cfgtypes.Duration(5 * time.Second),
		ConnectTimeout: cfgtypes.Duration(2 * time.Second),
		PublishTimeout: cfgtypes.Duration(publishTimeout),
	}, log)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	if err := c.Connect(context.Background()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

func waitConnected(t testing.TB, c *mqtt.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connTimeout)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
}

// runOutbox creates an Outbox, starts Run and returns a stop function that
// cancels Run and waits for it (also called in Cleanup).
func runOutbox(t testing.TB, cfg Config, pub publish.Publisher, log *slog.Logger) (*Outbox, func() error) {
	t.Helper()
	return runOutboxClock(t, cfg, pub, log, nil)
}

// runOutboxClock is runOutbox with the Outbox's clock set to clk (nil: the
// real one).
func runOutboxClock(t testing.TB, cfg Config, pub publish.Publisher, log *slog.Logger, clk *fakeClock) (*Outbox, func() error) {
	t.Helper()
	o, err := New(cfg, pub, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if clk != nil {
		o.now = clk.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(FinalFlushTimeout + 5*time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return o, stop
}

// msgs returns n QoS 1 messages on topic with payloads prefix-000, -001...
func msgs(topic, prefix string, from, n int) []publish.Message {
	out := make([]publish.Message, n)
	for i := range out {
		out[i] = publish.Message{Topic: topic, Payload: fmt.Appendf(nil, "%s-%03d", prefix, from+i), QoS: 1}
	}
	return out
}

// receive reads n messages from ch and checks they are want, in order.
func receive(t testing.TB, ch <-chan testenv.Message, want []publish.Message) {
	t.Helper()
	timer := time.NewTimer(msgTimeout)
	defer timer.Stop()
	for i, w := range want {
		select {
		case m := <-ch:
			if m.Topic != w.Topic || !bytes.Equal(m.Payload, w.Payload) {
				t.Fatalf("message %d: got %s=%s, want %s=%s", i, m.Topic, m.Payload, w.Topic, w.Payload)
			}
		case <-timer.C:
			t.Fatalf("received %d of %d messages within %s", i, len(want), msgTimeout)
		}
	}
}

// noMore checks that nothing else arrives on ch for a short while (an
// assertion of absence, not synchronisation).
func noMore(t testing.TB, ch <-chan testenv.Message) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected extra message %s=%s", m.Topic, m.Payload)
	case <-time.After(200 * time.Millisecond):
	}
}

// logBuffer collects log output (see testenv.Buffer).
type logBuffer = testenv.Buffer

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeClock starts at an arbitrary fixed date: nothing depends on today.
func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2031, 5, 17, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
