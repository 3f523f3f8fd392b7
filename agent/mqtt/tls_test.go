package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/internal/testenv"
)

// refusedWait is how long a client that must not connect gets: paho's
// first attempt fails at once, the next one comes connectRetryInterval later.
const refusedWait = 3 * time.Second

// mtlsConfig is a client config trusting certs.CA and presenting the client
// certificate.
func mtlsConfig(broker, device string, certs testenv.TLSFiles) Config {
	cfg := testConfig(broker, device)
	cfg.TLS = TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	return cfg
}

func TestTLSMutualAuthRoundTrip(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	m := testenv.StartMosquittoTLS(t, testenv.MosquittoTLS{Files: certs, RequireCertificate: true})
	if !strings.HasPrefix(m.URL, "ssl://127.0.0.1:") {
		t.Fatalf("URL %q", m.URL)
	}
	cfg := mtlsConfig(m.URL, "tls-pub", certs)
	all := testenv.SubscribeTLS(t, m.URL, "edgedet-test/tls-pub/#", certs.ClientTLSConfig(t))

	c, logs := startClient(t, cfg)
	waitConnected(t, c)
	waitFor(t, all, msgTimeout, "online", payloadIs(cfg.WithDefaults().Topics().Available(), AvailabilityOnline, false))
	topic := testTopic(cfg.WithDefaults(), "detections")
	if err := c.Publish(context.Background(), topic, []byte("over tls"), false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	waitFor(t, all, msgTimeout, "detection", payloadIs(topic, "over tls", false))
	if n := logs.Count("level=WARN"); n != 0 {
		t.Errorf("%d warnings logged:\n%s", n, logs)
	}
}

// Against a broker that requires a client certificate: the right settings
// connect, every wrong one is refused and logged.
func TestTLSHandshake(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	m := testenv.StartMosquittoTLS(t, testenv.MosquittoTLS{Files: certs, RequireCertificate: true})
	// "localhost" is the server certificate's other name.
	localhost := "ssl://" + strings.Replace(m.Addr, "127.0.0.1", "localhost", 1)

	cases := []struct {
		name    string
		broker  string
		tls     TLSConfig
		connect bool
		logged  []string // substrings of the log, all required
	}{
		{name: "server name override", broker: m.URL, connect: true,
			tls: TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, ServerName: "localhost"}},
		{name: "host name", broker: localhost, connect: true,
			tls: TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}},
		{name: "insecure skip verify", broker: m.URL, connect: true,
			tls:    TLSConfig{CAFile: certs.OtherCA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, InsecureSkipVerify: true},
			logged: []string{"level=WARN", "tls certificate verification disabled", "mqtt.tls.insecure_skip_verify"}},
		{name: "wrong ca", broker: m.URL,
			tls:    TLSConfig{CAFile: certs.OtherCA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey},
			logged: []string{"broker certificate not trusted: unknown authority", "reason=certificate_unknown_authority", "failed to verify certificate"}},
		{name: "system roots", broker: m.URL,
			tls:    TLSConfig{CertFile: certs.ClientCert, KeyFile: certs.ClientKey},
			logged: []string{"broker certificate not trusted: unknown authority", "failed to verify certificate"}},
		{name: "server name mismatch", broker: m.URL,
			tls:    TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, ServerName: "wrong.example"},
			logged: []string{"broker certificate does not match the broker host name", "reason=certificate_name_mismatch", "wrong.example"}},
		{name: "no client certificate", broker: m.URL,
			tls:    TLSConfig{CAFile: certs.CA},
			logged: []string{"broker rejected the TLS handshake", "reason=tls_rejected_by_broker"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(tc.broker, fmt.Sprintf("tls-%d", i))
			cfg.TLS = tc.tls
			c, logs := startClient(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), refusedWait)
			if tc.connect {
				cancel()
				ctx, cancel = context.WithTimeout(context.Background(), connTimeout)
			}
			defer cancel()
			err := c.WaitConnected(ctx)
			switch {
			case tc.connect && err != nil:
				t.Fatalf("WaitConnected: %v", err)
			case !tc.connect && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("WaitConnected = %v, want a timeout", err)
			case !tc.connect && c.Stats().Connects != 0:
				t.Fatalf("connected: %+v", c.Stats())
			}
			for _, s := range tc.logged {
				testenv.Eventually(t, msgTimeout, "log shows "+s, func() bool { return logs.Count(s) > 0 })
			}
			if !tc.connect && logs.Count("level=ERROR") > 0 {
				t.Errorf("error logged:\n%s", logs)
			}
		})
	}
}

func TestTLSValidateErrors(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-ca.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text.pem")
	if err := os.WriteFile(text, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const broker = "ssl://127.0.0.1:8883"

	cases := []struct {
		name   string
		broker string
		tls    TLSConfig
		want   []string
	}{
		{"ca missing", broker, TLSConfig{CAFile: missing},
			[]string{`mqtt.tls.ca_file: "` + missing + `" unreadable`}},
		{"ca garbage", broker, TLSConfig{CAFile: garbage},
			[]string{`mqtt.tls.ca_file: "` + garbage + `" certificate 1 does not parse`}},
		{"ca not pem", broker, TLSConfig{CAFile: text},
			[]string{`mqtt.tls.ca_file: "` + text + `" holds no PEM certificate`}},
		{"ca is a key", broker, TLSConfig{CAFile: certs.ClientKey},
			[]string{`mqtt.tls.ca_file: "` + certs.ClientKey + `" holds no PEM certificate`}},
		{"cert without key", broker, TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert},
			[]string{`mqtt.tls.cert_file: "` + certs.ClientCert + `" set without mqtt.tls.key_file`}},
		{"key without cert", broker, TLSConfig{KeyFile: certs.ClientKey},
			[]string{`mqtt.tls.key_file: "` + certs.ClientKey + `" set without mqtt.tls.cert_file`}},
		{"key missing", broker, TLSConfig{CertFile: certs.ClientCert, KeyFile: missing},
			[]string{`mqtt.tls.key_file: "` + missing + `" unreadable`}},
		{"mismatched pair", broker, TLSConfig{CertFile: certs.ClientCert, KeyFile: certs.ServerKey},
			[]string{`mqtt.tls.cert_file, mqtt.tls.key_file: "` + certs.ClientCert + `" and "` + certs.ServerKey + `" do not load as a key pair`}},
		{"swapped pair", broker, TLSConfig{CertFile: certs.ClientKey, KeyFile: certs.ClientCert},
			[]string{`mqtt.tls.cert_file, mqtt.tls.key_file: "` + certs.ClientKey + `" and "` + certs.ClientCert + `" do not load as a key pair`}},
		{"files with tcp", "tcp://127.0.0.1:1883", TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey},
			[]string{`mqtt.tls.ca_file "` + certs.CA + `", mqtt.tls.cert_file "` + certs.ClientCert + `", mqtt.tls.key_file "` + certs.ClientKey +
				`": set with mqtt.broker "tcp://127.0.0.1:1883", which is not a TLS URL`}},
		{"ca with mqtt", "mqtt://127.0.0.1:1883", TLSConfig{CAFile: certs.CA},
			[]string{`mqtt.tls.ca_file "` + certs.CA + `": set with mqtt.broker "mqtt://127.0.0.1:1883", which is not a TLS URL`}},
		{"insecure with ws", "ws://127.0.0.1/mqtt", TLSConfig{InsecureSkipVerify: true, ServerName: "x"},
			[]string{`mqtt.tls.server_name "x", mqtt.tls.insecure_skip_verify true: set with mqtt.broker "ws://127.0.0.1/mqtt", which is not a TLS URL`}},
	}

	var secrets []string // every line of the key files
	for _, f := range []string{certs.ClientKey, certs.ServerKey} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	if len(secrets) == 0 {
		t.Fatal("no key content read")
	}
	log, logs := newLogger(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			c.Broker = tc.broker
			c.TLS = tc.tls
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			cli, nerr := NewClient(c, log)
			if nerr == nil {
				cli.Close(context.Background())
				t.Fatal("NewClient accepted the config")
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", nerr), fmt.Sprintf("%#v", nerr)} {
				for _, secret := range secrets {
					if strings.Contains(s, secret) {
						t.Fatalf("error shows key file content: %s", s)
					}
				}
			}
			log.Error("config rejected", "err", nerr, "config", c)
		})
	}
	out := logs.String()
	if !strings.Contains(out, "tls.key_file=") {
		t.Errorf("log does not show the TLS config:\n%s", out)
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Fatalf("log shows key file content:\n%s", out)
		}
	}
}

func TestTLSValidateValid(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	for _, b := range []string{"ssl://h:8883", "tls://h:8883", "mqtts://h:8883", "tcps://h:8883", "mqtt+ssl://h:8883", "wss://h/mqtt", "SSL://h:8883"} {
		c := validConfig(t)
		c.Broker = b
		c.TLS = TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, ServerName: "broker.example"}
		if err := c.Validate(); err != nil {
			t.Errorf("broker %q: %v", b, err)
		}
	}
	// A TLS scheme without [mqtt.tls] uses the system roots.
	c := validConfig(t)
	c.Broker = "mqtts://h:8883"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestTLSBuild(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	tc, errs := TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}.build("broker.example")
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.ServerName != "broker.example" || tc.InsecureSkipVerify ||
		tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("tls.Config = %+v", tc)
	}
	tc, errs = TLSConfig{ServerName: "other.example", InsecureSkipVerify: true}.build("broker.example")
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if tc.ServerName != "other.example" || !tc.InsecureSkipVerify || tc.RootCAs != nil || len(tc.Certificates) != 0 {
		t.Errorf("tls.Config = %+v", tc)
	}
}

func TestTLSDecode(t *testing.T) {
	const doc = `
broker = "mqtts://broker.example:8883"
device = "cam1"
[tls]
ca_file = "/etc/edgedet/ca.pem"
cert_file = "/etc/edgedet/client.pem"
key_file = "/etc/edgedet/client.key"
server_name = "mqtt.internal"
insecure_skip_verify = true
`
	c := DefaultConfig()
	md, err := toml.Decode(doc, &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	want := TLSConfig{CAFile: "/etc/edgedet/ca.pem", CertFile: "/etc/edgedet/client.pem", KeyFile: "/etc/edgedet/client.key",
		ServerName: "mqtt.internal", InsecureSkipVerify: true}
	if c.TLS != want {
		t.Errorf("TLS = %+v, want %+v", c.TLS, want)
	}
}
