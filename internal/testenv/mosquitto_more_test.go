package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// connectErr connects once to url as user (empty: anonymous) and returns
// the connect error, disconnecting on success.
func connectErr(url, user, pass string, tc *tls.Config) error {
	o := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("testenv-conn-%d", subscriberSeq.Add(1))).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestGenerateCerts: the server and client certificates chain to CA and not
// to OtherCA, the server one names the loopback hosts, keys are 0600 and
// match their certificates.
func TestGenerateCerts(t *testing.T) {
	f := GenerateCerts(t)
	ca, other := readCert(t, f.CA), readCert(t, f.OtherCA)
	if !ca.IsCA || !other.IsCA {
		t.Errorf("CA IsCA %v, OtherCA IsCA %v; want both true", ca.IsCA, other.IsCA)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other)
	srv := readCert(t, f.ServerCert)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{Roots: otherRoots}); err == nil {
		t.Error("server certificate verifies against OtherCA")
	}
	cli := readCert(t, f.ClientCert)
	if cli.Subject.CommonName != "edgedet-test-client" {
		t.Errorf("client CN %q", cli.Subject.CommonName)
	}
	if _, err := cli.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	for _, key := range []string{f.ServerKey, f.ClientKey} {
		fi, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", key, fi.Mode().Perm())
		}
	}
	if _, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey); err != nil {
		t.Errorf("server key pair: %v", err)
	}

	tc := f.ClientTLSConfig(t)
	if len(tc.Certificates) != 1 || tc.RootCAs == nil || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("ClientTLSConfig = %d certificates, RootCAs %v, MinVersion %#x", len(tc.Certificates), tc.RootCAs != nil, tc.MinVersion)
	}
}

func TestClientTLSConfigBadFiles(t *testing.T) {
	f := GenerateCerts(t)
	missing := f
	missing.CA = f.CA + ".absent"
	failing(t, func(tb testing.TB) { missing.ClientTLSConfig(tb) }, "client tls config", "ca.pem.absent")
	notPEM := f
	notPEM.CA = f.ServerKey // a key, no certificate
	failing(t, func(tb testing.TB) { notPEM.ClientTLSConfig(tb) }, "no certificate in", f.ServerKey)
	mismatched := f
	mismatched.ClientKey = f.ServerKey
	failing(t, func(tb testing.TB) { mismatched.ClientTLSConfig(tb) }, "client tls config")
}

// TestMosquittoTLS: a TLS broker that requires a client certificate serves
// a client presenting one and refuses a client without.
func TestMosquittoTLS(t *testing.T) {
	f := GenerateCerts(t)
	m := StartMosquittoWith(t, MosquittoOptions{TLS: &MosquittoTLS{Files: f, RequireCertificate: true}})
	if m.URL != "ssl://"+m.Addr {
		t.Fatalf("URL %q, want ssl://%s", m.URL, m.Addr)
	}
	tc := f.ClientTLSConfig(t)
	msgs := SubscribeTLS(t, m.URL, "tls/#", tc)
	if err := connectErr(m.URL, "", "", tc); err != nil {
		t.Fatalf("client with certificate: %v", err)
	}
	noCert := &tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS12}
	if err := connectErr(m.URL, "", "", noCert); err == nil {
		t.Error("broker requiring a certificate accepted a client without one")
	}
	o := paho.NewClientOptions().AddBroker(m.URL).SetClientID("testenv-tls-pub").SetTLSConfig(tc)
	pub := paho.NewClient(o)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tokenErr(tok))
	}
	defer pub.Disconnect(100)
	if tok := pub.Publish("tls/a", 1, false, "secret"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tokenErr(tok))
	}
	if got := receive(t, msgs); got.Topic != "tls/a" || string(got.Payload) != "secret" {
		t.Errorf("got %+v", got)
	}
}

func TestStartMosquittoTLSMissingFiles(t *testing.T) {
	f := GenerateCerts(t)
	for _, c := range []struct {
		field string
		clear func(*TLSFiles)
	}{
		{"CA", func(f *TLSFiles) { f.CA = "" }},
		{"ServerCert", func(f *TLSFiles) { f.ServerCert = "" }},
		{"ServerKey", func(f *TLSFiles) { f.ServerKey = "" }},
	} {
		t.Run(c.field, func(t *testing.T) {
			files := f
			c.clear(&files)
			failing(t, func(tb testing.TB) { StartMosquittoTLS(tb, MosquittoTLS{Files: files}) }, "TLSFiles."+c.field+" is empty")
		})
	}
}

// TestMosquittoUsers: with Users only those users get in; SetUsers swaps
// them at the next Restart.
func TestMosquittoUsers(t *testing.T) {
	m := StartMosquittoWith(t, MosquittoOptions{Users: map[string]string{"alice": "a-pass"}})
	if err := connectErr(m.URL, "alice", "a-pass", nil); err != nil {
		t.Fatalf("alice with her password: %v", err)
	}
	if err := connectErr(m.URL, "alice", "wrong", nil); err == nil {
		t.Error("alice with a wrong password got in")
	}
	if err := connectErr(m.URL, "", "", nil); err == nil {
		t.Error("anonymous client got in with allow_anonymous false")
	}
	m.SetUsers(t, map[string]string{"bob": "b-pass"})
	m.Restart(t)
	if err := connectErr(m.URL, "bob", "b-pass", nil); err != nil {
		t.Errorf("bob after SetUsers+Restart: %v", err)
	}
	if err := connectErr(m.URL, "alice", "a-pass", nil); err == nil {
		t.Error("alice still gets in after SetUsers replaced her")
	}
	failing(t, func(tb testing.TB) { m.SetUsers(tb, nil) }, "SetUsers needs")
}

func TestSetUsersNeedsUserBroker(t *testing.T) {
	m := StartMosquittoWith(t, MosquittoOptions{})
	if m.URL != "tcp://"+m.Addr {
		t.Fatalf("URL %q", m.URL)
	}
	if err := connectErr(m.URL, "", "", nil); err != nil {
		t.Fatalf("anonymous client on a broker without Users: %v", err)
	}
	failing(t, func(tb testing.TB) { m.SetUsers(tb, map[string]string{"u": "p"}) }, "SetUsers needs a broker started with Users")
}

// procState is the state letter of pid in /proc/pid/stat (T: stopped).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ...
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	return strings.Fields(rest)[0]
}

// TestMosquittoPauseResume: Pause stops the process (SIGSTOP), Resume lets
// it serve again; both fail the test on a stopped broker.
func TestMosquittoPauseResume(t *testing.T) {
	m := StartMosquitto(t)
	pid := m.proc.cmd.Process.Pid
	m.Pause(t)
	Eventually(t, 10*time.Second, "the paused broker to be stopped", func() bool { return procState(t, pid) == "T" })
	m.Resume(t)
	Eventually(t, 10*time.Second, "the resumed broker to run", func() bool { return procState(t, pid) != "T" })
	msgs := Subscribe(t, m.URL, "p")
	Publish(t, m.URL, "p", []byte("resumed"), false)
	if got := receive(t, msgs); string(got.Payload) != "resumed" {
		t.Errorf("after Resume got %+v", got)
	}
	m.Stop(t)
	failing(t, func(tb testing.TB) { m.Pause(tb) }, "not running")
	failing(t, func(tb testing.TB) { m.Resume(tb) }, "not running")
}

// TestPublishRetained: Publish's retained flag reaches a later subscriber;
// a broker that is gone fails the test naming it.
func TestPublishRetained(t *testing.T) {
	m := StartMosquitto(t)
	Publish(t, m.URL, "r/x", []byte("kept"), true)
	got := receive(t, Subscribe(t, m.URL, "r/x"))
	if got.Topic != "r/x" || string(got.Payload) != "kept" || !got.Retained {
		t.Errorf("got %+v, want retained r/x=kept", got)
	}
	m.Stop(t)
	failing(t, func(tb testing.TB) { Publish(tb, m.URL, "r/x", nil, false) }, "publish to "+m.URL, "connect")
	failing(t, func(tb testing.TB) { Subscribe(tb, m.URL, "r/x") }, "subscribe \"r/x\": connect to "+m.URL)
}

// TestMosquittoDumpLog: the log of a broker that served a client is logged
// with its address; a missing log is reported, not fatal.
func TestMosquittoDumpLog(t *testing.T) {
	m := StartMosquitto(t)
	if err := connectErr(m.URL, "", "", nil); err != nil {
		t.Fatal(err)
	}
	m.Stop(t)
	s := &stopTB{TB: t}
	m.dumpLog(s)
	if len(s.logs) != 1 || !strings.Contains(s.logs[0], m.Addr) || !strings.Contains(s.logs[0], "New client connected") {
		t.Errorf("dumpLog logged %q, want the address and the connection", s.logs)
	}
	empty := &Mosquitto{dir: t.TempDir()}
	s = &stopTB{TB: t}
	empty.dumpLog(s)
	if len(s.logs) != 1 || !strings.HasPrefix(s.logs[0], "mosquitto log: ") {
		t.Errorf("dumpLog without a log: %q", s.logs)
	}
}

// TestMosquittoPathFallback: with nothing in PATH the installed
// /usr/sbin/mosquitto is used.
func TestMosquittoPathFallback(t *testing.T) {
	if _, err := os.Stat(mosquittoFallback); err != nil {
		t.Skipf("no %s here: %v", mosquittoFallback, err)
	}
	t.Setenv("PATH", t.TempDir())
	if p := MosquittoPath(t); p != mosquittoFallback {
		t.Errorf("MosquittoPath = %q, want %q", p, mosquittoFallback)
	}
}

// TestStartFailsOnBadBinary: a binary that exits at once is reported with
// its output instead of waiting for a listener.
func TestStartFailsOnBadBinary(t *testing.T) {
	m := &Mosquitto{bin: "/bin/false", dir: t.TempDir()}
	m.setPort(t, 1)
	err := m.start()
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), m.Addr) {
		t.Errorf("start of /bin/false: %v, want an early-exit error naming %s", err, m.Addr)
	}
	m.bin = "/nonexistent/mosquitto"
	if err := m.start(); err == nil || !strings.Contains(err.Error(), "/nonexistent/mosquitto") {
		t.Errorf("start of a missing binary: %v", err)
	}
}

type pendingToken struct{ paho.Token }

func (pendingToken) Error() error { return nil }

func TestTokenErr(t *testing.T) {
	if err := tokenErr(pendingToken{}); err == nil || err.Error() != "timed out" {
		t.Errorf("tokenErr of a token without error = %v, want timed out", err)
	}
}
