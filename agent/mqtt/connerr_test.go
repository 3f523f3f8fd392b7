package mqtt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/edgedet/edgedet/internal/testenv"
)

// A broker that refuses the login is logged as such, not as "unreachable",
// with the broker's answer (and never the password).
func TestConnectFailureSaysWhy(t *testing.T) {
	const secret = "s3cret-pass"
	m := testenv.StartMosquittoWith(t, testenv.MosquittoOptions{Users: map[string]string{"edgedet": secret}})
	down := testenv.StartMosquitto(t)
	down.Stop(t)
	certs := testenv.GenerateCerts(t)
	tlsBroker := testenv.StartMosquittoTLS(t, testenv.MosquittoTLS{Files: certs})
	pw := func(p string) string {
		path := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(path, []byte(p+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name, broker, user, password string
		tls                          TLSConfig
		connect                      bool
		logged                       string // the message, with the reason attribute
	}{
		{name: "right password", broker: m.URL, user: "edgedet", password: secret, connect: true},
		{name: "anonymous", broker: m.URL,
			logged: "broker refused the connection: not authorized"},
		{name: "wrong password", broker: m.URL, user: "edgedet", password: "wrong-" + secret,
			logged: "broker refused the connection: not authorized"},
		{name: "unknown user", broker: m.URL, user: "mallory", password: secret,
			logged: "broker refused the connection: not authorized"},
		{name: "nothing listening", broker: down.URL,
			logged: "broker unreachable (connection refused), retrying"},
		{name: "untrusted certificate", broker: tlsBroker.URL, tls: TLSConfig{CAFile: certs.OtherCA},
			logged: "broker certificate not trusted: unknown authority"},
		{name: "name mismatch", broker: tlsBroker.URL, tls: TLSConfig{CAFile: certs.CA, ServerName: "wrong.example"},
			logged: "broker certificate does not match the broker host name"},
		{name: "tls to a plain listener", broker: "ssl://" + m.Addr, tls: TLSConfig{CAFile: certs.CA},
			logged: "broker closed the connection during connect, retrying"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(tc.broker, fmt.Sprintf("why-%d", i))
			cfg.Username, cfg.TLS = tc.user, tc.tls
			if tc.password != "" {
				cfg.PasswordFile = pw(tc.password)
			}
			c, logs := startClient(t, cfg)
			if tc.connect {
				waitConnected(t, c)
				if n := logs.Count("retrying"); n != 0 {
					t.Errorf("connect failure logged:\n%s", logs)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), refusedWait)
			defer cancel()
			if err := c.WaitConnected(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("WaitConnected = %v, want a timeout", err)
			}
			testenv.Eventually(t, msgTimeout, "log says "+tc.logged, func() bool { return logs.Count(tc.logged) == 1 })
			if logs.Count("level=WARN") != 1 || logs.Count(secret) != 0 {
				t.Errorf("want exactly one warning, without the password:\n%s", logs)
			}
		})
	}
}

// Reasons from the errors paho reports.
func TestClassifyConnect(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want connFailure
	}{
		{nil, failNone},
		{errors.New("something odd"), failOther},
		{packets.ErrorRefusedBadUsernameOrPassword, failBadLogin},
		{packets.ErrorRefusedIDRejected, failIDRejected},
		{packets.ErrorRefusedServerUnavailable, failServerUnavailable},
		{fmt.Errorf("network Error : %w", io.EOF), failClosed},
		{fmt.Errorf("network Error : %w", context.DeadlineExceeded), failTimeout},
		{fmt.Errorf("network Error : %w", os.ErrDeadlineExceeded), failTimeout},
		{errors.New("network Error : remote error: tls: certificate required"), failTLSRejected},
		{errors.New("network Error : tls: first record does not look like a TLS handshake"), failTLS},
	} {
		if got := classifyConnect(tc.err); got != tc.want {
			t.Errorf("classifyConnect(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// After a loss, a reconnect the broker refuses (the password changed) is
// logged with the reason; the network errors of an outage are not.
func TestReconnectRefusalLogged(t *testing.T) {
	const secret = "first-pass"
	m := testenv.StartMosquittoWith(t, testenv.MosquittoOptions{Users: map[string]string{"edgedet": secret}})
	cfg := testConfig(m.URL, "why-recon")
	cfg.Username = "edgedet"
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.PasswordFile = path
	c, logs := startClient(t, cfg)
	waitConnected(t, c)

	m.Stop(t)
	testenv.Eventually(t, msgTimeout, "loss noticed", func() bool { return !c.Connected() })
	m.SetUsers(t, map[string]string{"edgedet": "another-pass"})
	m.Restart(t)
	testenv.Eventually(t, connTimeout, "refusal logged", func() bool {
		return logs.Count("broker refused the connection: not authorized", "reason=not_authorized") == 1
	})
	if n := logs.Count("broker unreachable"); n != 0 {
		t.Errorf("network failures of the reconnect logged %d times, want 0:\n%s", n, logs)
	}
}
