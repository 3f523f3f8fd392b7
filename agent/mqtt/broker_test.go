package mqtt

import (
	"context"
	"io"
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

// rawConnect opens a TCP connection to addr and sends a CONNECT of MQTT
// 3.1.1 (level 4) or 5 with a clean session and client ID id, then reads
// the CONNACK; it returns the connection.
func rawConnect(t *testing.T, addr string, level byte, id string) net.Conn {
	return rawConnectWill(t, addr, level, id, "", "")
}

// rawConnectWill is rawConnect with a Will (QoS 0, not retained) on
// willTopic when it is not empty.
func rawConnectWill(t *testing.T, addr string, level byte, id, willTopic, will string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	flags := byte(0x02) // clean session
	if willTopic != "" {
		flags |= 0x04
	}
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', level, flags, 0, 60}
	if level == 5 {
		vh = append(vh, 0) // no properties
	}
	payload := append([]byte{0, byte(len(id))}, id...)
	if willTopic != "" {
		if level == 5 {
			payload = append(payload, 0) // no will properties
		}
		payload = append(append(payload, 0, byte(len(willTopic))), willTopic...)
		payload = append(append(payload, 0, byte(len(will))), will...)
	}
	pkt := append([]byte{0x10, byte(len(vh) + len(payload))}, vh...)
	pkt = append(pkt, payload...)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(conn, head); err != nil || head[0] != 0x20 {
		t.Fatalf("CONNACK: %x, %v", head, err)
	}
	rest := make([]byte, head[1])
	if _, err := io.ReadFull(conn, rest); err != nil || rest[1] != 0 {
		t.Fatalf("CONNACK body %x, %v: not accepted", rest, err)
	}
	return conn
}

// TestEmbeddedBrokerCloseByProtocol: at Close an MQTT 3.1.1 client's
// connection is just closed (3.1.1 has no server DISCONNECT; mosquitto_sub
// reported mochi's as a protocol error), an MQTT 5 client gets DISCONNECT
// with reason 0x8B (server shutting down), neither client's Will is sent,
// and the connections the shutdown ends are not logged as warnings.
func TestEmbeddedBrokerCloseByProtocol(t *testing.T) {
	log, logs := newLogger(t)
	b, err := StartBroker("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	v3 := rawConnectWill(t, b.Addr(), 4, "old", "will/old", "gone")
	v5 := rawConnectWill(t, b.Addr(), 5, "new", "will/new", "gone")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(v3); len(got) != 0 || err != nil {
		t.Errorf("MQTT 3.1.1 client read %x (%v) at Close, want the connection closed with nothing sent", got, err)
	}
	got, _ := io.ReadAll(v5)
	if len(got) < 3 || got[0] != 0xE0 || got[2] != 0x8B {
		t.Errorf("MQTT 5 client read %x at Close, want DISCONNECT (e0) with reason 8b", got)
	}
	if w := logs.String(); strings.Contains(w, "level=WARN") {
		t.Errorf("warnings at Close:\n%s", w)
	}
	// The clients were cut off by the shutdown, not failing: no Will.
	// mochi sends one from each client's read loop as it ends, which may
	// be after Close returns: wait for both loops to finish.
	testenv.Eventually(t, 5*time.Second, "clients detached", func() bool { return b.srv.Clients.Len() == 0 })
	if n := b.closingWills.Load(); n != 0 {
		t.Errorf("%d Wills sent at Close, want none", n)
	}
}
