package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const (
	mosquittoFallback = "/usr/sbin/mosquitto"
	mosquittoReady    = 10 * time.Second
	mosquittoHint     = "run scripts/setup.sh (it installs the mosquitto package)"
)

// Mosquitto is a mosquitto broker started for one test.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port, or ssl://127.0.0.1:port with TLS

	bin   string
	tls   *MosquittoTLS // nil: plain TCP listener
	users map[string]string
	dir   string
	conf  string
	port  int

	mu   sync.Mutex
	proc *mosquittoProc
	runs int
}

type mosquittoProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// MosquittoPath returns the mosquitto binary (PATH first, then
// /usr/sbin/mosquitto) or fails the test.
func MosquittoPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if fi, err := os.Stat(mosquittoFallback); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return mosquittoFallback
	}
	t.Fatalf("mosquitto not found in PATH nor at %s: %s", mosquittoFallback, mosquittoHint)
	return ""
}

// StartMosquitto starts a real mosquitto on a free loopback port with a
// generated config in t.TempDir() (listener 127.0.0.1, anonymous access, no
// persistence, `user root` when running as root, log to mosquitto.log in that
// directory), waits until it accepts TCP connections and stops it in
// t.Cleanup. It fails the test when the binary is missing; it never skips.
// The log is printed when the test fails.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return startMosquitto(t, nil)
}

// MosquittoTLS configures the TLS listener of [StartMosquittoTLS].
type MosquittoTLS struct {
	Files TLSFiles // CA, ServerCert and ServerKey are used
	// RequireCertificate makes the broker demand a client certificate
	// signed by Files.CA (require_certificate true).
	RequireCertificate bool
}

// StartMosquittoTLS is [StartMosquitto] with a TLS-only listener (cafile,
// certfile and keyfile from opts.Files, require_certificate as set,
// use_identity_as_username false): URL is ssl://127.0.0.1:port.
func StartMosquittoTLS(t testing.TB, opts MosquittoTLS) *Mosquitto {
	t.Helper()
	for _, f := range []struct{ name, path string }{{"CA", opts.Files.CA}, {"ServerCert", opts.Files.ServerCert}, {"ServerKey", opts.Files.ServerKey}} {
		if f.path == "" {
			t.Fatalf("mosquitto: StartMosquittoTLS: TLSFiles.%s is empty", f.name)
		}
	}
	return startMosquitto(t, &opts)
}

// MosquittoOptions configure [StartMosquittoWith].
type MosquittoOptions struct {
	TLS *MosquittoTLS // nil: plain TCP listener
	// Users, when not empty, turn anonymous access off (allow_anonymous
	// false): only these user names, with their passwords, may connect
	// (a password_file written with mosquitto_passwd).
	Users map[string]string
}

// StartMosquittoWith is [StartMosquitto] with options.
func StartMosquittoWith(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	if opts.TLS != nil {
		return StartMosquittoTLS(t, *opts.TLS) // checks the files
	}
	return startMosquittoUsers(t, nil, opts.Users)
}

func startMosquitto(t testing.TB, tlsOpts *MosquittoTLS) *Mosquitto {
	t.Helper()
	return startMosquittoUsers(t, tlsOpts, nil)
}

func startMosquittoUsers(t testing.TB, tlsOpts *MosquittoTLS, users map[string]string) *Mosquitto {
	t.Helper()
	m := &Mosquitto{bin: MosquittoPath(t), dir: t.TempDir(), tls: tlsOpts, users: users}
	if len(users) > 0 {
		m.writePasswordFile(t)
	}
	t.Cleanup(func() {
		m.Stop(t)
		if t.Failed() {
			m.dumpLog(t)
		}
	})
	// mosquitto cannot bind port 0: pick a free port, then retry with another
	// one if something else grabbed it in between.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("mosquitto: pick a free port: %v", err)
		}
		m.setPort(t, port)
		if lastErr = m.start(); lastErr == nil {
			return m
		}
	}
	t.Fatalf("mosquitto: start: %v", lastErr)
	return nil
}

// Stop kills the broker now (SIGKILL: clients see their connection drop) and
// waits for it to exit. It is safe to call more than once.
func (m *Mosquitto) Stop(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("mosquitto: kill pid %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("mosquitto: pid %d did not exit within 10s of SIGKILL", p.cmd.Process.Pid)
	}
}

// Pause stops the broker with SIGSTOP: it keeps its connections open but
// reads and answers nothing, like a hung broker. Resume continues it.
func (m *Mosquitto) Pause(t testing.TB) {
	t.Helper()
	m.signal(t, syscall.SIGSTOP)
}

// Resume continues a broker stopped by Pause (SIGCONT).
func (m *Mosquitto) Resume(t testing.TB) {
	t.Helper()
	m.signal(t, syscall.SIGCONT)
}

func (m *Mosquitto) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		t.Fatalf("mosquitto: %v: not running", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("mosquitto: %v pid %d: %v", sig, p.cmd.Process.Pid, err)
	}
}

// Restart starts the broker again on the same port (stopping it first if it
// is running). Its retained messages are gone: persistence is off.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.Stop(t)
	// mosquitto sets SO_REUSEADDR, so the port is usable at once; retry
	// briefly in case the kernel still holds it.
	deadline := time.Now().Add(mosquittoReady)
	for {
		err := m.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto: restart on %s: %v", m.Addr, err)
		}
		time.Sleep(100 * time.Millisecond) // back-off between start attempts, not synchronisation
	}
}

func (m *Mosquitto) setPort(t testing.TB, port int) {
	t.Helper()
	m.port = port
	m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	m.URL = "tcp://" + m.Addr
	if m.tls != nil {
		m.URL = "ssl://" + m.Addr
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	conf := fmt.Sprintf(`# generated by internal/testenv for %s
listener %d 127.0.0.1
`, t.Name(), port)
	if m.tls != nil {
		conf += fmt.Sprintf(`cafile %s
certfile %s
keyfile %s
require_certificate %t
use_identity_as_username false
`, m.tls.Files.CA, m.tls.Files.ServerCert, m.tls.Files.ServerKey, m.tls.RequireCertificate)
	}
	if len(m.users) > 0 {
		conf += fmt.Sprintf("allow_anonymous false\npassword_file %s\n", m.passwordFile())
	} else {
		conf += "allow_anonymous true\n"
	}
	conf += fmt.Sprintf(`persistence false
log_dest file %s
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S
`, filepath.Join(m.dir, "mosquitto.log"))
	if os.Geteuid() == 0 {
		// Otherwise mosquitto drops to user "mosquitto", which cannot write
		// the log in our temp dir.
		conf += "user root\n"
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatalf("mosquitto: write config: %v", err)
	}
}

// SetUsers replaces the users of a broker started with
// MosquittoOptions.Users; they apply from the next Restart.
func (m *Mosquitto) SetUsers(t testing.TB, users map[string]string) {
	t.Helper()
	if len(m.users) == 0 || len(users) == 0 {
		t.Fatal("mosquitto: SetUsers needs a broker started with Users, and users")
	}
	m.users = users
	m.writePasswordFile(t)
}

func (m *Mosquitto) passwordFile() string { return filepath.Join(m.dir, "passwd") }

// writePasswordFile writes m.users with mosquitto_passwd (installed with
// mosquitto, next to it or in PATH).
func (m *Mosquitto) writePasswordFile(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		bin = "/usr/bin/mosquitto_passwd"
	}
	path := m.passwordFile()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatalf("mosquitto: password file: %v", err)
	}
	for user, pass := range m.users {
		if out, err := exec.Command(bin, "-b", path, user, pass).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto: %s -b %s %s: %v: %s (%s)", bin, path, user, err, bytes.TrimSpace(out), mosquittoHint)
		}
	}
}

// start runs mosquitto and waits until it accepts TCP connections or exits.
func (m *Mosquitto) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		return errors.New("already running")
	}
	m.runs++
	out, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("mosquitto.%d.out", m.runs)))
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", m.bin, err)
	}
	p := &mosquittoProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()

	deadline := time.Now().Add(mosquittoReady)
	for {
		select {
		case <-p.done:
			msg, _ := os.ReadFile(out.Name())
			return fmt.Errorf("exited (%v) before accepting connections on %s: %s", p.err, m.Addr, bytes.TrimSpace(msg))
		default:
		}
		if c, err := net.DialTimeout("tcp", m.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			m.proc = p
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("not accepting connections on %s after %s", m.Addr, mosquittoReady)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func (m *Mosquitto) dumpLog(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
	if err != nil {
		t.Logf("mosquitto log: %v", err)
		return
	}
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("mosquitto log (%s):\n%s", m.Addr, b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Message is one message received by Subscribe.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

var subscriberSeq atomic.Uint64

// Subscribe connects a paho client to url, subscribes to filter at QoS 1 and
// returns a channel of received messages, in arrival order (buffered; a
// test that stops reading only stalls this subscriber). It disconnects in
// t.Cleanup. The subscriber does not reconnect: after a broker restart,
// subscribe again.
func Subscribe(t testing.TB, url, filter string) <-chan Message {
	t.Helper()
	return SubscribeTLS(t, url, filter, nil)
}

// SubscribeTLS is [Subscribe] for an ssl:// broker, dialled with tc (for
// example [TLSFiles.ClientTLSConfig]); a nil tc is paho's default.
func SubscribeTLS(t testing.TB, url, filter string, tc *tls.Config) <-chan Message {
	t.Helper()
	ch := make(chan Message, 1024)
	done := make(chan struct{})
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(fmt.Sprintf("testenv-sub-%d-%d", os.Getpid(), subscriberSeq.Add(1))).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetOrderMatters(true)
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	cli := paho.NewClient(o)
	if tok := cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %q: connect to %s: %v", filter, url, tokenErr(tok))
	}
	t.Cleanup(func() {
		close(done)
		cli.Disconnect(250)
	})
	handler := func(_ paho.Client, msg paho.Message) {
		m := Message{Topic: msg.Topic(), Payload: bytes.Clone(msg.Payload()), Retained: msg.Retained()}
		select {
		case ch <- m:
		case <-done:
		}
	}
	if tok := cli.Subscribe(filter, 1, handler); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %q on %s: %v", filter, url, tokenErr(tok))
	}
	return ch
}

func tokenErr(tok paho.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return errors.New("timed out")
}

// TLSFiles are PEM files written by [GenerateCerts].
type TLSFiles struct {
	CA         string // self-signed CA that signed the certificates below
	ServerCert string // server certificate for 127.0.0.1, ::1 and localhost
	ServerKey  string
	ClientCert string // client certificate (CN edgedet-test-client)
	ClientKey  string
	OtherCA    string // an unrelated self-signed CA, for negative tests
}

// GenerateCerts writes a CA, a server certificate and a client certificate
// it signed, and an unrelated second CA, into t.TempDir() as PEM files
// (ECDSA P-256 keys in PKCS #8, mode 0600), valid from an hour ago for a
// day.
func GenerateCerts(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	f := TLSFiles{
		CA: path("ca.pem"), ServerCert: path("server.pem"), ServerKey: path("server.key"),
		ClientCert: path("client.pem"), ClientKey: path("client.key"), OtherCA: path("other-ca.pem"),
	}
	ca, caKey := newCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "edgedet test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	writePEM(t, f.CA, "CERTIFICATE", ca.Raw, 0o644)

	srv, srvKey := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	writePEM(t, f.ServerCert, "CERTIFICATE", srv.Raw, 0o644)
	writeKey(t, f.ServerKey, srvKey)

	cli, cliKey := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "edgedet-test-client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	writePEM(t, f.ClientCert, "CERTIFICATE", cli.Raw, 0o644)
	writeKey(t, f.ClientKey, cliKey)

	other, _ := newCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "unrelated test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	writePEM(t, f.OtherCA, "CERTIFICATE", other.Raw, 0o644)
	return f
}

// ClientTLSConfig returns a TLS config for a test client: trusts f.CA and
// presents the client certificate.
func (f TLSFiles) ClientTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatalf("client tls config: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("client tls config: no certificate in %s", f.CA)
	}
	pair, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatalf("client tls config: %v", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

var certSerial atomic.Int64

// newCert creates a certificate from tmpl with a fresh P-256 key, signed by
// parent (self-signed when parent is nil).
func newCert(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano() + certSerial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return cert, key
}

func writeKey(t testing.TB, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	writePEM(t, path, "PRIVATE KEY", der, 0o600)
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// Publish sends one QoS 1 message to the broker at url and waits for the
// acknowledgement (a test playing a subscriber that controls the agent).
func Publish(t testing.TB, url, topic string, payload []byte, retained bool) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("testenv-pub-%d", time.Now().UnixNano()))
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish to %s: connect: %v", url, tokenErr(tok))
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tokenErr(tok))
	}
}
