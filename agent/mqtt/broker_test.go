package mqtt

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

func TestEmbeddedBrokerRoundTrip(t *testing.T) {
	log, logs := newLogger(t)
	b, err := StartBroker("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q", b.Addr())
	}
	if b.URL() != "tcp://"+b.Addr() {
		t.Fatalf("URL() = %q", b.URL())
	}

	cfg := testConfig(b.URL(), "emb")
	msgs := testenv.Subscribe(t, b.URL(), "edgedet-test/emb/#")
	c, _ := startClient(t, cfg)
	waitConnected(t, c)
	avail := c.Config().Topics().Available()
	waitFor(t, msgs, msgTimeout, "online", payloadIs(avail, "online", false))
	topic := testTopic(c.Config(), "detections")
	if err := c.Publish(context.Background(), topic, []byte("hello"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, msgs, msgTimeout, "detection", payloadIs(topic, "hello", false))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	late := testenv.Subscribe(t, b.URL(), avail)
	waitFor(t, late, msgTimeout, "retained stopped", payloadIs(avail, "stopped", true))

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	testenv.Eventually(t, 5*time.Second, "listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	// mochi's info chatter stays out; our own start/stop lines are in.
	out := logs.String()
	if strings.Contains(out, "mochi mqtt starting") || strings.Contains(out, "attached listener") {
		t.Errorf("mochi info logs leaked:\n%s", out)
	}
	if !strings.Contains(out, "embedded broker started") || strings.Contains(out, "beyond loopback") {
		t.Errorf("unexpected broker log:\n%s", out)
	}
}

func TestEmbeddedBrokerWarnsBeyondLoopback(t *testing.T) {
	log, logs := newLogger(t)
	b, err := StartBroker("0.0.0.0:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.Contains(logs.String(), "level=WARN msg=\"embedded broker reachable beyond loopback") {
		t.Fatalf("no warning:\n%s", logs.String())
	}
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Fatalf("URL() = %q", b.URL())
	}
}

func TestEmbeddedBrokerErrors(t *testing.T) {
	log, _ := newLogger(t)
	b, err := StartBroker("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b2, err := StartBroker(b.Addr(), log); err == nil {
		b2.Close()
		t.Fatalf("second broker on busy %s started", b.Addr())
	} else if !strings.Contains(err.Error(), b.Addr()) {
		t.Errorf("error does not name the address: %v", err)
	}
	if _, err := StartBroker("nope", log); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("StartBroker(nope) = %v", err)
	}
	var nilBroker *Broker
	if err := nilBroker.Close(); err != nil {
		t.Errorf("nil Close = %v", err)
	}
}
