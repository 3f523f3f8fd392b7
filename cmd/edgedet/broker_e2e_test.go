package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/internal/testenv"
)

// The agent with its embedded broker requiring logins: its own client gets
// in (internal credentials) and may use every topic, a configured user sees
// what its ACL grants, and after SIGTERM the retained "stopped" and the
// counts are in state_dir for the next broker.
func TestRunEmbeddedBrokerAuthAndRetainedState(t *testing.T) {
	clip := sampleClip(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "ha.pw")
	if err := os.WriteFile(pwFile, []byte("ha-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	addr := freeAddr(t)
	config := agentConfig("tcp://"+addr, testenv.Shared(t, "models", "yolox_nano_416.onnx"), clipCamera("porch", clip)) +
		fmt.Sprintf(`
[mqtt.embedded]
enabled = true
listen = %q

[[mqtt.embedded.users]]
name = "ha"
password_file = %q
subscribe = ["edgedet/#"]
`, addr, pwFile)
	config = fmt.Sprintf("state_dir = %q\n", state) + config
	agent := startAgent(t, config)

	msgs := make(chan testenv.Message, 1024)
	var ha paho.Client
	testenv.Eventually(t, 30*time.Second, "ha connects to the embedded broker", func() bool {
		o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("e2e-ha").
			SetUsername("ha").SetPassword("ha-s3cret").SetAutoReconnect(false).SetConnectTimeout(2 * time.Second)
		ha = paho.NewClient(o)
		tok := ha.Connect()
		return tok.WaitTimeout(5*time.Second) && tok.Error() == nil
	})
	defer ha.Disconnect(100)
	tok := ha.Subscribe("edgedet/e2e/#", 1, func(_ paho.Client, m paho.Message) {
		msgs <- testenv.Message{Topic: m.Topic(), Payload: bytes.Clone(m.Payload()), Retained: m.Retained()}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	waitFor(t, msgs, 30*time.Second, "online from the agent's own client", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/available" && string(m.Payload) == "online"
	})
	waitFor(t, msgs, 60*time.Second, "a person count", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/porch/person" && string(m.Payload) != "0"
	})
	// ha may not publish (no publish filters): its denied QoS 1 publish
	// closes its connection.
	ha.Publish("edgedet/e2e/porch/detect/set", 1, false, "OFF")
	testenv.Eventually(t, 10*time.Second, "denied publish logged", func() bool {
		return strings.Contains(agent.stderr.String(), "acl: publish denied")
	})
	if strings.Contains(agent.stderr.String(), "ha-s3cret") {
		t.Error("password in the agent's log")
	}

	agent.stop(t, 15*time.Second)

	// The next broker on the same state_dir serves the retained state.
	got := map[string]string{}
	var blog bytes.Buffer
	log := slog.New(slog.NewTextHandler(&blog, nil))
	defer func() {
		if t.Failed() {
			files, _ := filepath.Glob(filepath.Join(state, "*", "*", "*"))
			t.Logf("state files %v\nbroker log:\n%s\nretained seen: %q", files, blog.String(), got)
		}
	}()
	cfg := mqtt.DefaultEmbeddedConfig()
	cfg.Listen = "127.0.0.1:0"
	b, err := mqtt.StartEmbedded(cfg, state, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	late := testenv.Subscribe(t, b.URL(), "edgedet/e2e/#")
	waitFor(t, late, 10*time.Second, "retained stopped and person count", func(m testenv.Message) bool {
		got[m.Topic] = string(m.Payload)
		_, person := got["edgedet/e2e/porch/person"]
		return got["edgedet/e2e/available"] == "stopped" && person
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
