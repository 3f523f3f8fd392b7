package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/testenv"
)

const (
	msgTimeout  = 5 * time.Second
	connTimeout = 15 * time.Second // covers paho's 2s connect retry and reconnect back-off
)

func startClient(t *testing.T, cfg Config) (*Client, *logBuffer) {
	t.Helper()
	log, buf := newLogger(t)
	c, err := NewClient(cfg, log)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := c.Connect(context.Background()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c, buf
}

func waitConnected(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connTimeout)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
}

func TestClientPublishAvailabilityClose(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := testConfig(m.URL, "pub")
	avail := cfg.WithDefaults().Topics().Available()
	all := testenv.Subscribe(t, m.URL, "edgedet-test/pub/#")

	c, logs := startClient(t, cfg)
	waitConnected(t, c)
	if !c.Connected() || !c.Stats().Connected {
		t.Fatal("Connected() = false after WaitConnected")
	}
	waitFor(t, all, msgTimeout, "online", payloadIs(avail, "online", false))

	ctx := context.Background()
	topic := testTopic(cfg.WithDefaults(), "detections")
	payload := []byte(`{"label":"person","score":0.9}`)
	if err := c.Publish(ctx, topic, payload, false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	payload[0] = 'X' // Publish copied it
	waitFor(t, all, msgTimeout, "detection", payloadIs(topic, `{"label":"person","score":0.9}`, false))
	if err := c.Publish(ctx, "bad/+/topic", nil, false); err == nil {
		t.Fatal("Publish to a wildcard topic succeeded")
	}
	if s := c.Stats(); s.Published != 1 || s.Failed != 1 || s.Dropped != 0 || s.Connects != 1 || s.Disconnects != 0 {
		t.Fatalf("Stats = %+v", s)
	}

	// A late subscriber sees the retained "online".
	late := testenv.Subscribe(t, m.URL, avail)
	waitFor(t, late, msgTimeout, "retained online", payloadIs(avail, "online", true))

	// Close leaves a retained "stopped" and no Last Will.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(cctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitFor(t, all, msgTimeout, "stopped", payloadIs(avail, "stopped", false))
	after := testenv.Subscribe(t, m.URL, avail)
	waitFor(t, after, msgTimeout, "retained stopped", payloadIs(avail, "stopped", true))
	if c.Connected() {
		t.Fatal("Connected() after Close")
	}
	if err := c.Publish(ctx, topic, payload, false); !errors.Is(err, publish.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := c.Connect(ctx); !errors.Is(err, publish.ErrClosed) {
		t.Fatalf("Connect after Close = %v, want ErrClosed", err)
	}
	if err := c.WaitConnected(ctx); !errors.Is(err, publish.ErrClosed) {
		t.Fatalf("WaitConnected after Close = %v, want ErrClosed", err)
	}
	// The broker's own log confirms the clean disconnect: the will was not sent.
	if n := logs.Count(`msg=connected`); n != 1 {
		t.Errorf("%d 'connected' log lines, want 1", n)
	}
	if n := logs.Count(`msg=closed`); n != 1 {
		t.Errorf("%d 'closed' log lines, want 1", n)
	}
	// Nothing more arrives on the availability topic (in particular no
	// "offline"): a message published after Close by another client is the
	// next one the subscriber sees.
	pub := mustClient(t, m.URL, "after")
	if err := pub.Publish(ctx, avail, []byte("marker"), false); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, after, msgTimeout, "marker", func(m testenv.Message) bool { return true })
	if string(got.Payload) != "marker" {
		t.Fatalf("after Close the availability topic got %q", got.Payload)
	}
}

// mustClient returns a connected client (for publishing test traffic).
func mustClient(t *testing.T, url, device string) *Client {
	t.Helper()
	c, _ := startClient(t, testConfig(url, device))
	waitConnected(t, c)
	return c
}

func TestClientBrokerDownAtStart(t *testing.T) {
	m := testenv.StartMosquitto(t)
	m.Stop(t) // keep the port, lose the broker

	// Credentials in the URL must never reach the logs.
	const secret = "url-s3cret"
	url := strings.Replace(m.URL, "tcp://", "tcp://user:"+secret+"@", 1)
	// Connect must not wait for the broker. One that did would not return
	// at all while it is down (paho retries until it connects), or only
	// after a connect timeout, made long here; any scheduling delay is far
	// below it.
	cfg := testConfig(url, "down")
	cfg.ConnectTimeout = cfgtypes.Duration(20 * time.Second)
	start := time.Now()
	c, logs := startClient(t, cfg)
	if d := time.Since(start); d >= cfg.ConnectTimeout.D()/2 {
		t.Fatalf("Connect took %s with the broker down: it waited for a connection", d)
	}
	ctx := context.Background()
	topic := testTopic(c.Config(), "detections")
	if err := c.Publish(ctx, topic, []byte("x"), false); !errors.Is(err, publish.ErrNotConnected) {
		t.Fatalf("Publish while down = %v, want ErrNotConnected", err)
	}
	if s := c.Stats(); s.Dropped != 1 || s.Connected || s.Connects != 0 {
		t.Fatalf("Stats = %+v", s)
	}
	testenv.Eventually(t, 5*time.Second, "'broker unreachable' logged", func() bool {
		return logs.Count("broker unreachable") == 1
	})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.WaitConnected(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConnected while down = %v", err)
	}

	m.Restart(t)
	msgs := testenv.Subscribe(t, m.URL, "edgedet-test/down/#")
	waitConnected(t, c)
	if err := c.Publish(ctx, topic, []byte("after start"), false); err != nil {
		t.Fatalf("Publish after the broker started: %v", err)
	}
	waitFor(t, msgs, msgTimeout, "detection", payloadIs(topic, "after start", false))
	if s := c.Stats(); s.Published != 1 || s.Dropped != 1 || s.Connects != 1 {
		t.Fatalf("Stats = %+v", s)
	}
	if n := logs.Count("broker unreachable"); n != 1 {
		t.Errorf("'broker unreachable' logged %d times, want once", n)
	}
	if out := logs.String(); strings.Contains(out, secret) || !strings.Contains(out, "user:xxxxx@127.0.0.1") {
		t.Errorf("log does not redact the URL password:\n%s", out)
	}
}

func TestClientReconnect(t *testing.T) {
	m := testenv.StartMosquitto(t)
	const secret = "file-s3cret"
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(m.URL, "recon")
	cfg.Username = "edgedet"
	cfg.PasswordFile = pwFile
	c, logs := startClient(t, cfg)
	waitConnected(t, c)
	avail := c.Config().Topics().Available()

	m.Stop(t)
	testenv.Eventually(t, 5*time.Second, "loss noticed", func() bool { return !c.Connected() })
	if err := c.Publish(context.Background(), testTopic(c.Config(), "x"), []byte("lost"), false); !errors.Is(err, publish.ErrNotConnected) {
		t.Fatalf("Publish after the loss = %v, want ErrNotConnected", err)
	}

	m.Restart(t) // no persistence: the retained "online" is gone
	waitConnected(t, c)
	// The new "online" reaches this subscriber live or, if it was faster,
	// retained; after that the broker holds it retained.
	late := testenv.Subscribe(t, m.URL, avail)
	waitFor(t, late, msgTimeout, "republished online", func(msg testenv.Message) bool {
		return msg.Topic == avail && string(msg.Payload) == "online"
	})
	later := testenv.Subscribe(t, m.URL, avail)
	waitFor(t, later, msgTimeout, "retained online", payloadIs(avail, "online", true))
	if s := c.Stats(); s.Connects != 2 || s.Disconnects != 1 || s.Dropped != 1 || !s.Connected {
		t.Fatalf("Stats = %+v", s)
	}
	msgs := testenv.Subscribe(t, m.URL, testTopic(c.Config(), "x"))
	if err := c.Publish(context.Background(), testTopic(c.Config(), "x"), []byte("back"), true); err != nil {
		t.Fatalf("Publish after reconnect: %v", err)
	}
	waitFor(t, msgs, msgTimeout, "message after reconnect", payloadIs(testTopic(c.Config(), "x"), "back", false))

	if n := logs.Count("connection lost"); n != 1 {
		t.Errorf("'connection lost' logged %d times, want 1", n)
	}
	if n := logs.Count("msg=reconnected"); n != 1 {
		t.Errorf("'reconnected' logged %d times, want 1", n)
	}
	// paho read its store on reconnect (so publishes were let through at
	// once, without the fallback).
	if n := logs.Count("did not settle"); n != 0 {
		t.Errorf("the store-settled fallback ran:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("log shows the password:\n%s", logs.String())
	}
}

// Publishes wait until paho has settled its in-flight store for the
// connection (else paho's resume could send a just-made publish twice); if
// it never does, the OnConnect wait lets them through after PublishTimeout.
func TestClientPublishWaitsForSettledStore(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := testConfig(m.URL, "settle")
	cfg.PublishTimeout = cfgtypes.Duration(200 * time.Millisecond)
	c, logs := startClient(t, cfg)
	waitConnected(t, c)
	if !c.storeSettled.Load() {
		t.Fatal("store not settled after the first connect")
	}
	msgs := testenv.Subscribe(t, m.URL, testTopic(c.Config(), "x"))

	c.storeSettled.Store(false) // as between a reconnect and paho's resume
	before := c.Stats().Dropped
	if err := c.Publish(context.Background(), testTopic(c.Config(), "x"), []byte("early"), false); !errors.Is(err, publish.ErrNotConnected) {
		t.Fatalf("Publish before the store settled = %v, want ErrNotConnected", err)
	}
	if d := c.Stats().Dropped - before; d != 1 {
		t.Errorf("Dropped grew by %d, want 1", d)
	}
	start := time.Now()
	c.waitStoreSettled()
	if d := time.Since(start); d < 150*time.Millisecond || !c.storeSettled.Load() {
		t.Fatalf("waitStoreSettled returned after %s, settled %v; want the 200ms fallback", d, c.storeSettled.Load())
	}
	if n := logs.Count("did not settle"); n != 1 {
		t.Errorf("fallback logged %d times, want 1", n)
	}
	if err := c.Publish(context.Background(), testTopic(c.Config(), "x"), []byte("late"), false); err != nil {
		t.Fatalf("Publish after the fallback: %v", err)
	}
	waitFor(t, msgs, msgTimeout, "message after the fallback", payloadIs(testTopic(c.Config(), "x"), "late", false))
}

// TestLastWill runs a client in a child process and SIGKILLs it: the broker
// sees the TCP connection die without DISCONNECT and publishes the will.
func TestLastWill(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := testConfig(m.URL, "will").WithDefaults()
	avail := cfg.Topics().Available()
	msgs := testenv.Subscribe(t, m.URL, avail)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EDGEDET_MQTT_HELPER_BROKER="+m.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				break
			}
		}
		if sc.Err() != nil {
			ready <- sc.Err()
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("helper stdout: %v", err)
		}
	case <-exited:
		t.Fatalf("helper exited before connecting:\n%s", stderr.String())
	case <-time.After(connTimeout):
		t.Fatalf("helper not connected within %s:\n%s", connTimeout, stderr.String())
	}
	waitFor(t, msgs, msgTimeout, "helper's online", payloadIs(avail, "online", false))

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	waitFor(t, msgs, msgTimeout, "last will", payloadIs(avail, "offline", false))
	late := testenv.Subscribe(t, m.URL, avail)
	waitFor(t, late, msgTimeout, "retained offline", payloadIs(avail, "offline", true))
}

// TestHelperProcess is the child of TestLastWill: it connects, prints
// "ready" and waits to be killed.
func TestHelperProcess(t *testing.T) {
	url := os.Getenv("EDGEDET_MQTT_HELPER_BROKER")
	if url == "" {
		return // not a helper run
	}
	log, _ := newLogger(t)
	c, err := NewClient(testConfig(url, "will"), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// Let "online" reach the broker before announcing readiness.
	if err := c.Publish(ctx, testTopic(c.Config(), "ping"), []byte("ping"), false); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	// Not synchronisation: the child only has to stay alive, connected,
	// until the parent SIGKILLs it (right after reading "ready").
	time.Sleep(time.Minute)
	t.Fatal("helper not killed")
}

func TestClientCloseWhileConnecting(t *testing.T) {
	m := testenv.StartMosquitto(t)
	m.Stop(t)
	log, _ := newLogger(t)
	c, err := NewClient(testConfig(m.URL, "closing"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		t.Fatalf("second Connect: %v", err)
	}
	// Close waits for paho's first connect loop to see the disconnect:
	// within connectRetryInterval + ConnectTimeout (4 s). It fails if ctx
	// ends first; ctx is generous, so only a Close that waits for the
	// wrong thing (a reconnect back-off, the broker) trips it, never load.
	ctx, cancel := context.WithTimeout(context.Background(), 2*maxReconnectInterval)
	defer cancel()
	start := time.Now()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close while the broker is down: %v", err)
	}
	if d := time.Since(start); d >= maxReconnectInterval {
		t.Errorf("Close took %s, a whole reconnect back-off", d)
	}

	// Close without Connect.
	c2, err := NewClient(testConfig(m.URL, "never"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// clientGoroutines returns the stacks of live goroutines running paho or
// this package's code (test functions excluded).
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "_test.go") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "paho") {
			continue
		}
		if strings.Contains(g, "paho.mqtt.golang") || strings.Contains(g, "edgedet/agent/mqtt.") {
			out = append(out, g)
		}
	}
	return out
}

// After Close no goroutine of the client (ours or paho's) is left, whether
// it was connected, reconnecting or never reached the broker.
func TestClientCloseLeavesNoGoroutines(t *testing.T) {
	m := testenv.StartMosquitto(t)
	log, _ := newLogger(t)
	closeNow := func(c *Client) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	check := func(state string) {
		t.Helper()
		var left []string
		deadline := time.Now().Add(maxReconnectInterval + 5*time.Second)
		for left = clientGoroutines(); len(left) != 0; left = clientGoroutines() {
			if time.Now().After(deadline) {
				t.Fatalf("goroutines left after Close (%s):\n%s", state, strings.Join(left, "\n\n"))
			}
			time.Sleep(10 * time.Millisecond) // poll
		}
	}

	c, err := NewClient(testConfig(m.URL, "leak"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, c)
	if err := c.Publish(context.Background(), testTopic(c.Config(), "x"), []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	if len(clientGoroutines()) == 0 {
		t.Fatal("clientGoroutines finds nothing while connected: the check is blind")
	}
	closeNow(c)
	check("connected")

	// Reconnecting: paho's reconnect loop notices the Disconnect after its
	// current back-off sleep (at most maxReconnectInterval).
	c, err = NewClient(testConfig(m.URL, "leak2"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, c)
	m.Stop(t)
	testenv.Eventually(t, 5*time.Second, "loss noticed", func() bool { return c.Stats().Disconnects == 1 })
	closeNow(c)
	check("reconnecting")

	// Never connected: Close waits for paho's first connect loop.
	c, err = NewClient(testConfig(m.URL, "leak3"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeNow(c)
	check("never connected")
}

// PublishMessage with a spool ID: while the broker hangs, calling it again
// for the same message waits for the copy paho holds instead of adding
// one. A reused ID with another payload (a new memory spool) is a new
// message, reported delivered only once it is acknowledged itself.
func TestPublishMessageNoSecondCopy(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := testConfig(m.URL, "copies")
	cfg.PublishTimeout = cfgtypes.Duration(100 * time.Millisecond)
	c, _ := startClient(t, cfg)
	waitConnected(t, c)
	topic := testTopic(c.Config(), "events", "cam")
	sub := testenv.Subscribe(t, m.URL, topic)
	ctx := context.Background()
	a := publish.Message{ID: 1, Topic: topic, Payload: []byte("a"), QoS: 1}
	b := publish.Message{ID: 1, Topic: topic, Payload: []byte("b"), QoS: 1}

	m.Pause(t)
	for range 10 {
		if err := c.PublishMessage(ctx, a); !errors.Is(err, context.DeadlineExceeded) {
			m.Resume(t)
			t.Fatalf("PublishMessage to a hung broker = %v, want a timeout", err)
		}
	}
	if err := c.PublishMessage(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		m.Resume(t)
		t.Fatalf("PublishMessage(b) = %v, want a timeout", err)
	}
	m.Resume(t)
	// b is its own message: a's acknowledgement does not count for it,
	// and a still reaches the broker (paho holds it).
	testenv.Eventually(t, msgTimeout, "b acknowledged", func() bool { return c.PublishMessage(ctx, b) == nil })
	got := map[string]int{}
	for len(got) < 2 {
		select {
		case r := <-sub:
			got[string(r.Payload)]++
		case <-time.After(msgTimeout):
			t.Fatalf("received %v, want a and b", got)
		}
	}
	// No more copies: a late one would come right behind.
	select {
	case r := <-sub:
		got[string(r.Payload)]++
	case <-time.After(500 * time.Millisecond):
	}
	if got["a"] != 1 || got["b"] != 1 {
		t.Errorf("received %v, want a and b once each", got)
	}
}
