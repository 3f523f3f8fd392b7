package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedet/edgedet/internal/testenv"
)

var pahoSeq atomic.Uint64

// brokerWait bounds waits for a message or a dropped connection.
const brokerWait = 10 * time.Second

// pahoClient is a real paho client of the broker at url.
type pahoClient struct {
	paho.Client
	lost chan error // connection losses
}

// dial connects a paho client (no reconnects) with optional credentials
// and will; it returns the connect error instead of failing.
func dial(t testing.TB, url, user, pass string, opts ...func(*paho.ClientOptions)) (*pahoClient, error) {
	t.Helper()
	pc := &pahoClient{lost: make(chan error, 1)}
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(fmt.Sprintf("broker-test-%d", pahoSeq.Add(1))).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetOrderMatters(true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case pc.lost <- err:
			default:
			}
		})
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	for _, f := range opts {
		f(o)
	}
	pc.Client = paho.NewClient(o)
	tok := pc.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { pc.Disconnect(100) })
	return pc, nil
}

func mustDial(t testing.TB, url, user, pass string) *pahoClient {
	t.Helper()
	c, err := dial(t, url, user, pass)
	if err != nil {
		t.Fatalf("connect %s as %q: %v", url, user, err)
	}
	return c
}

// publish sends one message and waits for its acknowledgement.
func (c *pahoClient) publish(t testing.TB, topic string, qos byte, retained bool, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tokenErr(tok))
	}
}

func tokenErr(tok paho.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return errors.New("timed out")
}

func startEmbedded(t testing.TB, cfg EmbeddedConfig, stateDir string) (*Broker, *logBuffer) {
	t.Helper()
	log, logs := newLogger(t)
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := StartEmbedded(cfg.WithDefaults(), stateDir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, logs
}

// retainedPayload is what the broker's index retains on topic.
func (b *Broker) retainedPayload(topic string) (string, bool) {
	pk, ok := b.srv.Topics.Retained.Get(topic)
	return string(pk.Payload), ok && len(pk.Payload) > 0
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestEmbeddedBrokerDropsOversizedPackets(t *testing.T) {
	b, _ := startEmbedded(t, EmbeddedConfig{MaxPacketSize: 64 << 10, MaxRetainedSize: 32 << 10}, "")
	before := heapInUse()
	// Three 16 MiB retained publishes, as an attacker would send: without
	// the cap the broker keeps 48 MiB.
	for i := range 3 {
		c := mustDial(t, b.URL(), "", "")
		payload := bytes.Repeat([]byte{'x'}, 16<<20)
		tok := c.Publish(fmt.Sprintf("big/%d", i), 0, true, payload)
		tok.WaitTimeout(10 * time.Second)
		select {
		case <-c.lost:
		case <-time.After(10 * time.Second):
			t.Fatalf("publish %d: connection not dropped", i)
		}
		c.Disconnect(0)
	}
	if n, size := b.retained.count(); n != 0 || size != 0 {
		t.Fatalf("retained store holds %d messages, %d bytes", n, size)
	}
	for i := range 3 {
		if _, ok := b.retainedPayload(fmt.Sprintf("big/%d", i)); ok {
			t.Fatalf("big/%d retained", i)
		}
	}
	if grown := int64(heapInUse()) - int64(before); grown > 16<<20 {
		t.Errorf("heap grew by %d MiB", grown>>20)
	}
	// A packet within the cap still goes through.
	c := mustDial(t, b.URL(), "", "")
	c.publish(t, "small", 1, true, []byte("ok"))
	if p, ok := b.retainedPayload("small"); !ok || p != "ok" {
		t.Fatalf("small retained = %q, %v", p, ok)
	}
}

func TestEmbeddedBrokerRetainedCaps(t *testing.T) {
	b, logs := startEmbedded(t, EmbeddedConfig{
		MaxRetainedSize:     1000,
		MaxRetainedMessages: 3,
		MaxRetainedBytes:    2000,
	}, "")
	live := testenv.Subscribe(t, b.URL(), "caps/#")
	c := mustDial(t, b.URL(), "", "")
	kb := func(n int) []byte { return bytes.Repeat([]byte{'k'}, n) }

	// Too large: acknowledged (QoS 1 completes), neither retained nor
	// forwarded.
	c.publish(t, "caps/big", 1, true, kb(1001))
	c.publish(t, "caps/a", 1, true, kb(900))
	c.publish(t, "caps/b", 1, true, kb(900))
	// Over max_retained_bytes (1800 + 6-byte topics + 900).
	c.publish(t, "caps/c", 1, true, kb(900))
	c.publish(t, "caps/d", 1, true, []byte("d"))
	// Over max_retained_messages.
	c.publish(t, "caps/e", 1, true, []byte("e"))
	// Replacing and deleting always fit.
	c.publish(t, "caps/a", 1, true, []byte("a2"))
	c.publish(t, "caps/b", 1, true, nil)
	c.publish(t, "caps/e", 1, true, []byte("e2"))
	// Non-retained messages are not capped beyond the packet size.
	c.publish(t, "caps/live", 1, false, kb(1500))

	want := map[string]string{"caps/a": "a2", "caps/d": "d", "caps/e": "e2"}
	for _, topic := range []string{"caps/big", "caps/a", "caps/b", "caps/c", "caps/d", "caps/e"} {
		p, ok := b.retainedPayload(topic)
		if w, retained := want[topic]; ok != retained || p != w {
			t.Errorf("%s retained %v (%d bytes), want %v %q", topic, ok, len(p), retained, w)
		}
	}
	if n, size := b.retained.count(); n != 3 || size != 8+7+8 {
		t.Errorf("store counts %d messages, %d bytes", n, size)
	}
	// The live subscriber saw the accepted ones only, in order (a
	// retained copy may come too when a publish races the subscription).
	var got []string
	for m := range live {
		if m.Retained {
			continue
		}
		got = append(got, fmt.Sprintf("%s:%d", m.Topic, len(m.Payload)))
		if m.Topic == "caps/live" {
			break
		}
	}
	wantSeq := "caps/a:900 caps/b:900 caps/d:1 caps/a:2 caps/b:0 caps/e:2 caps/live:1500"
	if strings.Join(got, " ") != wantSeq {
		t.Errorf("subscriber got %v, want %s", got, wantSeq)
	}
	if !strings.Contains(logs.String(), `msg="retained publish refused"`) || !strings.Contains(logs.String(), "max_retained_size 1000") {
		t.Errorf("refusal not logged:\n%s", logs.String())
	}
}

func TestEmbeddedBrokerRetainedWillOverCaps(t *testing.T) {
	b, _ := startEmbedded(t, EmbeddedConfig{MaxRetainedSize: 100}, "")
	sub := testenv.Subscribe(t, b.URL(), "will/#")
	c, err := dial(t, b.URL(), "", "", func(o *paho.ClientOptions) {
		o.SetBinaryWill("will/big", bytes.Repeat([]byte{'w'}, 200), 1, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Drop the connection without DISCONNECT so the broker sends the Will.
	r := c.OptionsReader()
	cl, ok := b.srv.Clients.Get(r.ClientID())
	if !ok {
		t.Fatalf("client %q not on the broker", r.ClientID())
	}
	cl.Stop(errors.New("test"))
	m := waitFor(t, sub, brokerWait, "will", func(m testenv.Message) bool { return m.Topic == "will/big" })
	if len(m.Payload) != 200 {
		t.Fatalf("will payload %d bytes", len(m.Payload))
	}
	if _, ok := b.retainedPayload("will/big"); ok {
		t.Fatal("oversized will retained")
	}
}

func TestEmbeddedBrokerKeepsRetainedAcrossRestart(t *testing.T) {
	state := t.TempDir()
	b, _ := startEmbedded(t, EmbeddedConfig{}, state)
	c := mustDial(t, b.URL(), "", "")
	c.publish(t, "edgedet/demo/available", 1, true, []byte("stopped"))
	c.publish(t, "edgedet/demo/cam1/person", 1, true, []byte("2"))
	c.publish(t, "edgedet/demo/cam1/dog", 1, true, []byte("1"))
	c.publish(t, "edgedet/demo/cam1/dog", 1, true, nil) // deleted: must stay deleted
	c.Disconnect(100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(state, "broker", "retained")
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) != 2 {
		t.Fatalf("files in %s: %v %v", dir, files, err)
	}

	b2, _ := startEmbedded(t, EmbeddedConfig{}, state)
	sub := testenv.Subscribe(t, b2.URL(), "edgedet/#")
	// The retained messages come in no particular order: collect both
	// (waiting for one, then the other, dropped the second when it came
	// first).
	got := map[string]string{}
	waitFor(t, sub, brokerWait, "the retained available and count", func(m testenv.Message) bool {
		if m.Retained {
			got[m.Topic] = string(m.Payload)
		}
		return got["edgedet/demo/available"] == "stopped" && got["edgedet/demo/cam1/person"] == "2"
	})
	if _, ok := b2.retainedPayload("edgedet/demo/cam1/dog"); ok {
		t.Fatal("deleted retained message came back")
	}
	// Changes on the new broker are kept too; the agent-facing loop.
	mustDial(t, b2.URL(), "", "").publish(t, "edgedet/demo/available", 1, true, []byte("online"))
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	b3, _ := startEmbedded(t, EmbeddedConfig{}, state)
	if p, _ := b3.retainedPayload("edgedet/demo/available"); p != "online" {
		t.Fatalf("available after second restart = %q", p)
	}
}

func TestEmbeddedBrokerDamagedRetainedFiles(t *testing.T) {
	state := t.TempDir()
	b, _ := startEmbedded(t, EmbeddedConfig{}, state)
	c := mustDial(t, b.URL(), "", "")
	for _, topic := range []string{"t/good", "t/flipped", "t/truncated"} {
		c.publish(t, topic, 1, true, []byte(topic+" payload"))
	}
	c.Disconnect(100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	store := b.retained
	flipped, truncated := store.fileName("t/flipped"), store.fileName("t/truncated")
	data, err := os.ReadFile(flipped)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-5] ^= 0x20
	if err := os.WriteFile(flipped, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(truncated, 20); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(store.dir, "0123456789abcdef0123456789abcdef.msg")
	if err := os.WriteFile(garbage, []byte("not a message"), 0o600); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(store.dir, "x.msg.tmp")
	if err := os.WriteFile(leftover, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	b2, logs := startEmbedded(t, EmbeddedConfig{}, state)
	if p, ok := b2.retainedPayload("t/good"); !ok || p != "t/good payload" {
		t.Fatalf("good message = %q, %v", p, ok)
	}
	for _, topic := range []string{"t/flipped", "t/truncated"} {
		if _, ok := b2.retainedPayload(topic); ok {
			t.Errorf("damaged %s loaded", topic)
		}
	}
	out := logs.String()
	for _, f := range []string{flipped, truncated, garbage} {
		if !strings.Contains(out, "file="+f) {
			t.Errorf("no warning naming %s:\n%s", f, out)
		}
		if _, err := os.Stat(f + ".damaged"); err != nil {
			t.Errorf("%s not moved aside: %v", f, err)
		}
	}
	if !strings.Contains(out, "checksum") {
		t.Errorf("flipped byte not reported as a checksum error:\n%s", out)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
	if n, _ := b2.retained.count(); n != 1 {
		t.Errorf("store holds %d messages, want 1", n)
	}
}

func TestEmbeddedBrokerLoweredCapsOnLoad(t *testing.T) {
	state := t.TempDir()
	b, _ := startEmbedded(t, EmbeddedConfig{}, state)
	c := mustDial(t, b.URL(), "", "")
	for i := range 5 {
		c.publish(t, fmt.Sprintf("n/%d", i), 1, true, []byte("x"))
	}
	c.Disconnect(100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, logs := startEmbedded(t, EmbeddedConfig{MaxRetainedMessages: 2}, state)
	if n, _ := b2.retained.count(); n != 2 {
		t.Fatalf("loaded %d messages, want 2", n)
	}
	if got := strings.Count(logs.String(), "retained message from disk dropped"); got != 3 {
		t.Errorf("%d drops logged, want 3:\n%s", got, logs.String())
	}
	files, _ := filepath.Glob(filepath.Join(state, "broker", "retained", "*.msg"))
	if len(files) != 2 {
		t.Errorf("%d files left, want 2", len(files))
	}
}

func TestEmbeddedBrokerStateDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger(t)
	cfg := DefaultEmbeddedConfig()
	cfg.Listen = "127.0.0.1:0"
	_, err := StartEmbedded(cfg, file, log)
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("StartEmbedded on a file as state dir = %v", err)
	}
}

func TestLogLimit(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := &logLimit{every: 10 * time.Second, now: func() time.Time { return now }}
	if _, ok := l.allow(); !ok {
		t.Fatal("first line suppressed")
	}
	for range 3 {
		now = now.Add(time.Second)
		if _, ok := l.allow(); ok {
			t.Fatal("line within the interval allowed")
		}
	}
	now = now.Add(10 * time.Second)
	if n, ok := l.allow(); !ok || n != 3 {
		t.Fatalf("allow() = %d, %v; want 3, true", n, ok)
	}
}

// A client still connected when the broker closes is cut off, not failed:
// its retained Will must not replace what it last published.
func TestEmbeddedBrokerCloseKeepsRetainedOverWills(t *testing.T) {
	state := t.TempDir()
	b, _ := startEmbedded(t, EmbeddedConfig{}, state)
	c, err := dial(t, b.URL(), "", "", func(o *paho.ClientOptions) {
		o.SetWill("x/available", "offline", 1, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	c.publish(t, "x/available", 1, true, []byte("stopped"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, _ := startEmbedded(t, EmbeddedConfig{}, state)
	if p, _ := b2.retainedPayload("x/available"); p != "stopped" {
		t.Fatalf("x/available after restart = %q, want stopped", p)
	}
}

// Clients can make mochi log (each oversized packet, each bad login): one
// line per message per interval reaches the log.
func TestEmbeddedBrokerLimitsMochiLogLines(t *testing.T) {
	b, logs := startEmbedded(t, EmbeddedConfig{MaxPacketSize: 1024, MaxRetainedSize: 100}, "")
	for i := range 5 {
		c := mustDial(t, b.URL(), "", "")
		c.Publish(fmt.Sprintf("big/%d", i), 0, false, bytes.Repeat([]byte{'x'}, 4096))
		select {
		case <-c.lost:
		case <-time.After(brokerWait):
			t.Fatalf("publish %d: connection not dropped", i)
		}
	}
	testenv.Eventually(t, brokerWait, "first line", func() bool {
		return strings.Contains(logs.String(), "packet too large")
	})
	if n := strings.Count(logs.String(), "packet too large"); n != 1 {
		t.Errorf("%d lines about oversized packets, want 1:\n%s", n, logs.String())
	}
}

func TestMsgLimits(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newMsgLimits(time.Minute)
	l.now = func() time.Time { return now }
	if _, ok := l.allow("a"); !ok {
		t.Fatal("first a suppressed")
	}
	if _, ok := l.allow("b"); !ok {
		t.Fatal("first b suppressed (limits are per message)")
	}
	if _, ok := l.allow("a"); ok {
		t.Fatal("second a allowed")
	}
	now = now.Add(time.Minute)
	if n, ok := l.allow("a"); !ok || n != 1 {
		t.Fatalf("allow(a) = %d, %v", n, ok)
	}
	var none *msgLimits
	if _, ok := none.allow("x"); !ok {
		t.Fatal("nil msgLimits suppressed")
	}
}

// Changes reach the disk while the broker runs (an agent killed with
// SIGKILL loses at most the last second), not only at Close.
func TestEmbeddedBrokerWritesRetainedWhileRunning(t *testing.T) {
	state := t.TempDir()
	b, _ := startEmbedded(t, EmbeddedConfig{}, state)
	c := mustDial(t, b.URL(), "", "")
	c.publish(t, "run/a", 1, true, []byte("1"))
	path := b.retained.fileName("run/a")
	testenv.Eventually(t, brokerWait, "run/a written", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	c.publish(t, "run/a", 1, true, nil)
	testenv.Eventually(t, brokerWait, "run/a removed", func() bool {
		_, err := os.Stat(path)
		return os.IsNotExist(err)
	})
}
