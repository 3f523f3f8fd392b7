package testenv

import (
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func publish(t *testing.T, url, topic, payload string, retained bool) {
	t.Helper()
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("testenv-pub").SetAutoReconnect(false))
	if tok := cli.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tokenErr(tok))
	}
	defer cli.Disconnect(250)
	if tok := cli.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tokenErr(tok))
	}
}

func receive(t *testing.T, ch <-chan Message) Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return Message{}
	}
}

func TestMosquittoRoundTrip(t *testing.T) {
	m := StartMosquitto(t)
	if !strings.HasPrefix(m.Addr, "127.0.0.1:") || m.URL != "tcp://"+m.Addr {
		t.Fatalf("Addr %q URL %q", m.Addr, m.URL)
	}
	msgs := Subscribe(t, m.URL, "t/#")
	publish(t, m.URL, "t/a", "hello", false)
	got := receive(t, msgs)
	if got.Topic != "t/a" || string(got.Payload) != "hello" || got.Retained {
		t.Fatalf("got %+v", got)
	}

	// A retained message reaches a late subscriber with Retained set.
	publish(t, m.URL, "t/r", "kept", true)
	receive(t, msgs)
	late := Subscribe(t, m.URL, "t/r")
	got = receive(t, late)
	if got.Topic != "t/r" || string(got.Payload) != "kept" || !got.Retained {
		t.Fatalf("late subscriber got %+v", got)
	}
}

func TestMosquittoStopRestart(t *testing.T) {
	m := StartMosquitto(t)
	m.Stop(t)
	m.Stop(t) // safe twice
	if c, err := net.DialTimeout("tcp", m.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", m.Addr)
	}
	addr := m.Addr
	m.Restart(t)
	if m.Addr != addr {
		t.Fatalf("Restart moved from %s to %s", addr, m.Addr)
	}
	msgs := Subscribe(t, m.URL, "x")
	publish(t, m.URL, "x", "after restart", false)
	if got := receive(t, msgs); string(got.Payload) != "after restart" {
		t.Fatalf("got %+v", got)
	}
	m.Restart(t) // restart while running
	c, err := net.DialTimeout("tcp", m.Addr, time.Second)
	if err != nil {
		t.Fatalf("dial after second restart: %v", err)
	}
	c.Close()
}

func TestMosquittoPath(t *testing.T) {
	if p := MosquittoPath(t); p == "" {
		t.Fatal("empty path")
	}
}
