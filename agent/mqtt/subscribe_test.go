package mqtt

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/internal/testenv"
)

func TestPublishMessageQoSRetained(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := testConfig(m.URL, "pubmsg")
	cfg.QoS = 0 // the message's own QoS must win
	c, _ := startClient(t, cfg)
	waitConnected(t, c)
	ctx := context.Background()
	topic := testTopic(c.Config(), "pm")

	live := testenv.Subscribe(t, m.URL, topic+"/#")
	for q := byte(0); q <= 2; q++ {
		msg := publish.Message{Topic: topic + "/live", Payload: []byte{'0' + q}, QoS: q}
		if err := c.PublishMessage(ctx, msg); err != nil {
			t.Fatalf("PublishMessage QoS %d: %v", q, err)
		}
		waitFor(t, live, msgTimeout, "live message", payloadIs(topic+"/live", string(msg.Payload), false))
	}
	if err := c.PublishMessage(ctx, publish.Message{Topic: topic + "/ret", Payload: []byte("kept"), QoS: 2, Retained: true}); err != nil {
		t.Fatalf("PublishMessage retained: %v", err)
	}
	late := testenv.Subscribe(t, m.URL, topic+"/ret")
	waitFor(t, late, msgTimeout, "retained message", payloadIs(topic+"/ret", "kept", true))

	for _, bad := range []publish.Message{
		{Topic: topic, QoS: 3},
		{Topic: topic + "/+", QoS: 1},
		{Topic: "", QoS: 1},
	} {
		if err := c.PublishMessage(ctx, bad); !errors.Is(err, publish.ErrInvalidMessage) {
			t.Errorf("PublishMessage(%q, QoS %d) = %v, want ErrInvalidMessage", bad.Topic, bad.QoS, err)
		}
	}
	if s := c.Stats(); s.Published != 4 || s.Failed != 3 {
		t.Errorf("Stats = %+v, want Published 4, Failed 3", s)
	}
}

func TestOnConnectAndSubscribeSurviveRestart(t *testing.T) {
	m := testenv.StartMosquitto(t)
	log, _ := newLogger(t)
	c, err := NewClient(testConfig(m.URL, "hooks"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	var connects atomic.Int32
	c.OnConnect(func() { connects.Add(1) })
	topic := testTopic(c.Config(), "cmd")
	got := make(chan string, 16)
	// Subscribed before connecting: made on connect.
	if err := c.Subscribe(context.Background(), topic+"/+", 1, func(tp string, p []byte) { got <- tp + "=" + string(p) }); err != nil {
		t.Fatalf("Subscribe before connect: %v", err)
	}
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, connTimeout, "OnConnect after the first connect", func() bool { return connects.Load() == 1 })
	pub := func(payload string) {
		t.Helper()
		if err := c.Publish(context.Background(), topic+"/a", []byte(payload), false); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	expect := func(want string) {
		t.Helper()
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("handler got %q, want %q", s, want)
			}
		case <-time.After(msgTimeout):
			t.Fatalf("handler did not get %q", want)
		}
	}
	pub("one")
	expect(topic + "/a=one")

	m.Restart(t) // a fresh broker has no subscriptions
	testenv.Eventually(t, connTimeout, "OnConnect after the restart", func() bool { return connects.Load() == 2 })
	pub("two")
	expect(topic + "/a=two")

	// Subscribing while connected waits for the SUBACK.
	other := make(chan string, 4)
	if err := c.Subscribe(context.Background(), topic+"/b", 0, func(_ string, p []byte) { other <- string(p) }); err != nil {
		t.Fatalf("Subscribe while connected: %v", err)
	}
	if err := c.Publish(context.Background(), topic+"/b", []byte("three"), false); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-other:
		if s != "three" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(msgTimeout):
		t.Fatal("second subscription got nothing")
	}
}

func TestSubscribeBadFilter(t *testing.T) {
	log, _ := newLogger(t)
	c, err := NewClient(testConfig("tcp://127.0.0.1:1", "badfilter"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	h := func(string, []byte) {}
	for _, f := range []string{"", "a/#/b", "a#", "a/b#", "a+/b", "+a", "a/\x00", "$share/g", "$share//a", "$share/g+/a"} {
		if err := c.Subscribe(context.Background(), f, 1, h); err == nil {
			t.Errorf("Subscribe(%q) = nil, want an error", f)
		}
	}
	for _, f := range []string{"#", "+", "a/+/b", "a/#", "+/+/#", "/a", "a//b", "$SYS/#", "$share/g/a/+"} {
		if err := CheckTopicFilter(f); err != nil {
			t.Errorf("CheckTopicFilter(%q) = %v, want nil", f, err)
		}
	}
	if err := c.Subscribe(context.Background(), "a", 3, h); err == nil {
		t.Error("Subscribe with QoS 3 = nil, want an error")
	}
	if err := c.Subscribe(context.Background(), "a", 1, nil); err == nil {
		t.Error("Subscribe with nil handler = nil, want an error")
	}
}
