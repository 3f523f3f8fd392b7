package mqtt

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedet/edgedet/internal/testenv"
)

// authConfig has three users: "ha" (Home Assistant: reads edgedet/#,
// writes its status), "ctl" (may set the control topics of cam1) and
// "admin" (everything), with passwords from a file and variables.
func authConfig(t *testing.T) EmbeddedConfig {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "ha-password")
	if err := os.WriteFile(pwFile, []byte("ha-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGEDET_TEST_CTL_PW", "ctl-secret")
	t.Setenv("EDGEDET_TEST_ADMIN_PW", "admin-secret")
	return EmbeddedConfig{Users: []EmbeddedUser{
		{Name: "ha", PasswordFile: pwFile, Publish: []string{"homeassistant/status"}, Subscribe: []string{"edgedet/#"}},
		{Name: "ctl", PasswordEnv: "EDGEDET_TEST_CTL_PW", Publish: []string{"edgedet/demo/cam1/+/set"}, Subscribe: []string{"edgedet/demo/cam1/+"}},
		{Name: "admin", PasswordEnv: "EDGEDET_TEST_ADMIN_PW", Publish: []string{"#"}, Subscribe: []string{"#"}},
	}}
}

func TestEmbeddedBrokerRefusesBadLogins(t *testing.T) {
	b, logs := startEmbedded(t, authConfig(t), "")
	for _, tc := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"wrong password", "ha", "nope"},
		{"other user's password", "ha", "ctl-secret"},
		{"unknown user", "mallory", "ha-secret"},
		{"internal user with a guess", InternalUser, "ha-secret"},
		{"empty password", "ha", ""},
	} {
		if c, err := dial(t, b.URL(), tc.user, tc.pass); err == nil {
			c.Disconnect(0)
			t.Errorf("%s: connected", tc.name)
		} else if !strings.Contains(err.Error(), "not Authorized") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	mustDial(t, b.URL(), "ha", "ha-secret")
	mustDial(t, b.URL(), "ctl", "ctl-secret")
	out := logs.String()
	if !strings.Contains(out, "client refused: bad user name or password") {
		t.Errorf("refusal not logged:\n%s", out)
	}
	for _, pw := range []string{"ha-secret", "ctl-secret", "nope"} {
		if strings.Contains(out, pw) {
			t.Errorf("password %q in the log:\n%s", pw, out)
		}
	}
}

func TestEmbeddedBrokerACL(t *testing.T) {
	b, logs := startEmbedded(t, authConfig(t), "")
	admin := make(chan paho.Message, 64)
	ac := mustDial(t, b.URL(), "admin", "admin-secret")
	if tok := ac.Subscribe("#", 1, func(_ paho.Client, m paho.Message) { admin <- m }); !tok.WaitTimeout(brokerWait) || tok.Error() != nil {
		t.Fatal(tokenErr(tok))
	}
	next := func(what string) paho.Message {
		t.Helper()
		select {
		case m := <-admin:
			return m
		case <-time.After(brokerWait):
			t.Fatalf("admin got no %s", what)
			return nil
		}
	}

	// ha may not switch detection off; the denied QoS 0 publish is
	// dropped, so the admin's next message is the allowed one after it.
	ha := mustDial(t, b.URL(), "ha", "ha-secret")
	ha.publish(t, "edgedet/demo/cam1/detect/set", 0, true, []byte("off"))
	ha.publish(t, "homeassistant/status", 0, false, []byte("online"))
	if m := next("status"); m.Topic() != "homeassistant/status" {
		t.Fatalf("admin got %s=%q first: the denied publish went through", m.Topic(), m.Payload())
	}
	if _, ok := b.retainedPayload("edgedet/demo/cam1/detect/set"); ok {
		t.Fatal("denied publish retained")
	}
	// A denied QoS 1 publish closes an MQTT 3.1.1 connection (the
	// protocol has no negative PUBACK).
	ha.Publish("edgedet/demo/cam1/detect/set", 1, false, []byte("off"))
	select {
	case <-ha.lost:
	case <-time.After(brokerWait):
		t.Fatal("denied QoS 1 publish did not close the connection")
	}

	// ctl may set cam1 but not cam2.
	ctl := mustDial(t, b.URL(), "ctl", "ctl-secret")
	ctl.publish(t, "edgedet/demo/cam2/detect/set", 0, false, []byte("off"))
	ctl.publish(t, "edgedet/demo/cam1/detect/set", 0, false, []byte("off"))
	if m := next("cam1 set"); m.Topic() != "edgedet/demo/cam1/detect/set" {
		t.Fatalf("admin got %s first", m.Topic())
	}

	// Subscriptions: within the filters granted, outside refused (0x80).
	ha = mustDial(t, b.URL(), "ha", "ha-secret")
	for filter, allowed := range map[string]bool{
		"edgedet/#":               true,
		"edgedet/demo/+/person":   true,
		"$share/g/edgedet/demo/#": true,
		"#":                       false,
		"homeassistant/#":         false,
		"$SYS/#":                  false,
		"+/demo/cam1/person":      false,
	} {
		tok := ha.Subscribe(filter, 1, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(brokerWait) || tok.Error() != nil {
			t.Fatalf("subscribe %q: %v", filter, tokenErr(tok))
		}
		res := tok.(*paho.SubscribeToken).Result() // one filter, keyed without $share/<group>/
		if len(res) != 1 {
			t.Fatalf("subscribe %q: results %v", filter, res)
		}
		for _, got := range res {
			if (got < 0x80) != allowed {
				t.Errorf("subscribe %q as ha: SUBACK 0x%02x, want allowed %v", filter, got, allowed)
			}
		}
	}
	if !strings.Contains(logs.String(), `msg="acl: publish denied"`) {
		t.Errorf("denial not logged:\n%s", logs.String())
	}
}

func TestEmbeddedBrokerWillMustPassACL(t *testing.T) {
	b, _ := startEmbedded(t, authConfig(t), "")
	_, err := dial(t, b.URL(), "ha", "ha-secret", func(o *paho.ClientOptions) {
		o.SetWill("edgedet/demo/cam1/detect/set", "off", 1, true)
	})
	if err == nil {
		t.Fatal("will on a denied topic accepted")
	}
	if _, err := dial(t, b.URL(), "ha", "ha-secret", func(o *paho.ClientOptions) {
		o.SetWill("homeassistant/status", "offline", 1, true)
	}); err != nil {
		t.Fatalf("will on an allowed topic: %v", err)
	}
}

// The agent's own client gets internal credentials and may use every
// topic; it still reports availability through the broker.
func TestEmbeddedBrokerInternalClient(t *testing.T) {
	cfg := authConfig(t)
	b, _ := startEmbedded(t, cfg, "")
	user, pw, ok := b.InternalCredentials()
	if !ok || user != InternalUser || len(pw) < 32 {
		t.Fatalf("InternalCredentials() = %q, %d chars, %v", user, len(pw), ok)
	}
	ccfg := testConfig(b.URL(), "internal")
	ccfg.Embedded = EmbeddedConfig{Enabled: true, Listen: b.Addr()}
	ccfg = b.ClientConfig(ccfg)
	if ccfg.Username != InternalUser || ccfg.Password != pw {
		t.Fatalf("ClientConfig did not fill the internal credentials: %q", ccfg.Username)
	}
	if strings.Contains(slogValue(ccfg), pw) {
		t.Fatal("internal password in the config's log value")
	}
	sub := make(chan paho.Message, 16)
	admin := mustDial(t, b.URL(), "admin", "admin-secret")
	admin.Subscribe("edgedet-test/internal/#", 1, func(_ paho.Client, m paho.Message) { sub <- m }).WaitTimeout(brokerWait)
	c, _ := startClient(t, ccfg)
	waitConnected(t, c)
	if err := c.Publish(context.Background(), ccfg.Topics().Set("cam1", "detect"), []byte("on"), true); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(brokerWait)
	for {
		select {
		case m := <-sub:
			if m.Topic() == ccfg.Topics().Set("cam1", "detect") {
				return
			}
		case <-deadline:
			t.Fatal("internal client's publish not delivered")
		}
	}
}

func TestBrokerClientConfigKeepsConfiguredCredentials(t *testing.T) {
	b, _ := startEmbedded(t, authConfig(t), "")
	base := Config{Broker: "tcp://127.0.0.1:1883", Embedded: EmbeddedConfig{Enabled: true, Listen: "127.0.0.1:1883"}}
	if c := b.ClientConfig(base); c.Username != InternalUser {
		t.Fatalf("embedded URL without credentials: user %q", c.Username)
	}
	for name, c := range map[string]Config{
		"own user":       {Broker: base.Broker, Embedded: base.Embedded, Username: "ha", PasswordEnv: "X"},
		"other broker":   {Broker: "tcp://mqtt.example:1883", Embedded: base.Embedded},
		"other listener": {Broker: "tcp://127.0.0.1:1884", Embedded: base.Embedded},
	} {
		if got := b.ClientConfig(c); got.Username != c.Username || got.Password != "" {
			t.Errorf("%s: credentials changed to %q", name, got.Username)
		}
	}
	anon, _ := startEmbedded(t, EmbeddedConfig{}, "")
	if _, _, ok := anon.InternalCredentials(); ok {
		t.Fatal("anonymous broker has internal credentials")
	}
	if c := anon.ClientConfig(base); c.Username != "" {
		t.Fatalf("anonymous broker filled user %q", c.Username)
	}
}

func TestEmbeddedBrokerAuthWarnings(t *testing.T) {
	cfg := authConfig(t)
	cfg.Listen = "0.0.0.0:0"
	_, logs := startEmbedded(t, cfg, "")
	if strings.Contains(logs.String(), "beyond loopback") {
		t.Errorf("warned with auth on:\n%s", logs.String())
	}
	_, logs = startEmbedded(t, EmbeddedConfig{Listen: "0.0.0.0:0"}, "")
	if !strings.Contains(logs.String(), "beyond loopback with anonymous access") {
		t.Errorf("no warning without auth:\n%s", logs.String())
	}
}

func TestFilterCovers(t *testing.T) {
	for _, tc := range []struct {
		acl, f string
		want   bool
	}{
		{"#", "a/b", true},
		{"#", "a/+/#", true},
		{"#", "$SYS/x", false},
		{"+/b", "$SYS/b", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"a/#", "a", true}, // '#' includes the parent level
		{"a/#", "a/b/c", true},
		{"a/#", "b/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/+", true},
		{"a/+", "a/#", false},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/b", "a/b", true},
		{"a/b", "a/+", false},
		{"a/b", "a/b/c", false},
		{"+/+/cam1/#", "edgedet/demo/cam1/person", true},
		{"+/+/cam1/#", "edgedet/demo/cam2/person", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
	} {
		if got := filterCovers(tc.acl, tc.f); got != tc.want {
			t.Errorf("filterCovers(%q, %q) = %v, want %v", tc.acl, tc.f, got, tc.want)
		}
	}
	if got := stripShare("$share/g/a/#"); got != "a/#" {
		t.Errorf("stripShare = %q", got)
	}
}

// the anonymous default stays open: anything goes, as before.
func TestEmbeddedBrokerAnonymousDefault(t *testing.T) {
	b, _ := startEmbedded(t, EmbeddedConfig{}, "")
	sub := testenv.Subscribe(t, b.URL(), "#")
	mustDial(t, b.URL(), "whoever", "whatever").publish(t, "edgedet/demo/cam1/detect/set", 1, false, []byte("off"))
	waitFor(t, sub, brokerWait, "publish", payloadIs("edgedet/demo/cam1/detect/set", "off", false))
}

// slogValue renders v as a log attribute would.
func slogValue(v any) string {
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
	return buf.String()
}

// mochi logs a packet it refused whole; a client controls its payload, so
// the log must hold only its type, topic and size.
func TestEmbeddedBrokerLogsNoPayloads(t *testing.T) {
	b, logs := startEmbedded(t, authConfig(t), "")
	ha := mustDial(t, b.URL(), "ha", "ha-secret")
	secret := strings.Repeat("payload-s3cret ", 100)
	ha.Publish("edgedet/demo/cam1/detect/set", 1, false, secret)
	select {
	case <-ha.lost:
	case <-time.After(brokerWait):
		t.Fatal("denied QoS 1 publish did not close the connection")
	}
	testenv.Eventually(t, brokerWait, "client connection ended logged", func() bool {
		return strings.Contains(logs.String(), `msg="client connection ended"`)
	})
	out := logs.String()
	if strings.Contains(out, "s3cret") || strings.Contains(out, "112 97 121") { // "pay" in decimal
		t.Fatalf("payload in the log:\n%s", out)
	}
	if !strings.Contains(out, "pk.type=Publish pk.topic=edgedet/demo/cam1/detect/set pk.bytes=1500") {
		t.Errorf("packet summary missing:\n%s", out)
	}
	if strings.Contains(out, `msg=""`) {
		t.Errorf("empty log message:\n%s", out)
	}
}

// A user cannot take over (and so cut off) another user's session by
// connecting with its client id; the same user can.
func TestEmbeddedBrokerClientIDTakeover(t *testing.T) {
	b, _ := startEmbedded(t, authConfig(t), "")
	id := func(s string) func(*paho.ClientOptions) { return func(o *paho.ClientOptions) { o.SetClientID(s) } }
	agent, err := dial(t, b.URL(), "ctl", "ctl-secret", id("edgedet-demo"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := dial(t, b.URL(), "ha", "ha-secret", id("edgedet-demo")); err == nil {
		c.Disconnect(0)
		t.Fatal("ha took over ctl's client id")
	}
	if !agent.IsConnectionOpen() {
		t.Fatal("the refused takeover cut off the session")
	}
	if _, err := dial(t, b.URL(), "ctl", "ctl-secret", id("edgedet-demo")); err != nil {
		t.Fatalf("same user reconnecting: %v", err)
	}
}
