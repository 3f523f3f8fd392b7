// Package mqtt is edgedet's MQTT side: the agent's client connection (with
// availability reporting through a retained topic and a Last Will) and an
// optional in-process broker for single-box setups.
package mqtt

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/readlimit"
	"github.com/edgedet/edgedet/internal/redact"
)

// Defaults applied by [Config.WithDefaults].
const (
	DefaultQoS            byte = 1
	DefaultTopicPrefix         = "edgedet"
	DefaultKeepAlive           = 30 * time.Second
	DefaultConnectTimeout      = 10 * time.Second
	DefaultPublishTimeout      = 5 * time.Second
	DefaultEmbeddedListen      = "127.0.0.1:1883"
)

// Topic layouts and payloads (Config.Compat).
const (
	// CompatNative is edgedet's own tree (package topic).
	CompatNative = ""
	// CompatFrigate is the tree and payloads Frigate documents, so that
	// consumers written for Frigate work unchanged.
	CompatFrigate = "frigate"
	// DefaultFrigateTopicPrefix is the topic prefix with compat =
	// "frigate": Frigate's default mqtt.topic_prefix.
	DefaultFrigateTopicPrefix = "frigate"
)

// Availability payloads published (retained) on the availability topic
// ([topic.Tree.Available]).
const (
	AvailabilityOnline  = "online"  // published on every (re)connect
	AvailabilityOffline = "offline" // the Last Will, sent by the broker when the connection dies
	AvailabilityStopped = "stopped" // published by Close before a clean disconnect
)

// Config is the [mqtt] table of agent.toml.
//
// Decode the file onto [DefaultConfig] (as the top-level config.Default does)
// rather than onto a zero Config: qos = 0 is a valid explicit value that
// WithDefaults cannot tell apart from "unset" on a Config it has never seen.
type Config struct {
	// Broker is the broker URL: tcp://, mqtt://, ssl://, tls://, mqtts://,
	// tcps://, mqtt+ssl://, ws://, wss:// (host:port) or unix:// (path).
	// When empty and Embedded.Enabled, it defaults to the embedded listener.
	Broker string `toml:"broker"`
	// ClientID defaults to "edgedet-<device>".
	ClientID string `toml:"client_id"`
	Username string `toml:"username"`
	// Password is discouraged (it sits in the config file): prefer
	// PasswordFile or PasswordEnv. At most one of the three may be set. The
	// password is never logged nor put in errors.
	Password     string `toml:"password"`
	PasswordFile string `toml:"password_file"` // the file's content, trailing newline trimmed
	PasswordEnv  string `toml:"password_env"`  // name of an environment variable
	// QoS for published messages: 0, 1 or 2; default 1.
	QoS byte `toml:"qos"`
	// TopicPrefix is one or more topic levels ("edgedet", "site3/edgedet");
	// default "edgedet", or "frigate" with Compat "frigate".
	TopicPrefix string `toml:"topic_prefix"`
	// Compat selects the topic layout and payloads: "" for edgedet's own
	// (the default), "frigate" for Frigate's (see package topic and
	// report.FrigateEvents).
	Compat string `toml:"compat"`
	// Device is a single topic level; defaults to the host name sanitised.
	Device         string            `toml:"device"`
	KeepAlive      cfgtypes.Duration `toml:"keep_alive"`      // default 30s
	ConnectTimeout cfgtypes.Duration `toml:"connect_timeout"` // default 10s
	PublishTimeout cfgtypes.Duration `toml:"publish_timeout"` // default 5s
	Embedded       EmbeddedConfig    `toml:"embedded"`
	// TLS applies to the TLS broker schemes (ssl, tls, mqtts, tcps,
	// mqtt+ssl, wss); setting it with any other scheme is an error.
	TLS TLSConfig `toml:"tls"`

	// defaulted records that WithDefaults already ran, so that a later
	// WithDefaults keeps an explicit qos = 0 decoded on top of the defaults.
	defaulted bool
}

// TLSConfig is the [mqtt.tls] table. With a TLS broker scheme and an empty
// table the client verifies the broker against the system roots. Validate
// reads the files; their content is never logged nor put in errors.
type TLSConfig struct {
	// CAFile is a PEM file of one or more CA certificates to trust instead
	// of the system roots.
	CAFile string `toml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate (chain) and its
	// private key for mutual TLS: set both or neither.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ServerName overrides the name checked in the broker's certificate
	// (and sent as SNI); default: the broker URL's host.
	ServerName string `toml:"server_name"`
	// InsecureSkipVerify accepts any broker certificate (no chain nor name
	// check): for tests only. The client logs a warning when it is set.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// setKeys returns the mqtt.tls keys set in t with their values, in table
// order.
func (t TLSConfig) setKeys() []string {
	var keys []string
	for _, k := range []struct{ name, val string }{
		{"ca_file", t.CAFile},
		{"cert_file", t.CertFile},
		{"key_file", t.KeyFile},
		{"server_name", t.ServerName},
	} {
		if k.val != "" {
			keys = append(keys, fmt.Sprintf("mqtt.tls.%s %q", k.name, k.val))
		}
	}
	if t.InsecureSkipVerify {
		keys = append(keys, "mqtt.tls.insecure_skip_verify true")
	}
	return keys
}

// DefaultConfig returns a Config with every default filled in: the value to
// decode agent.toml's [mqtt] table onto.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns a copy of c with empty fields set to their defaults.
// QoS 0 becomes 1 only the first time defaults are applied to a Config (so a
// qos = 0 decoded onto DefaultConfig survives); every other default applies
// to zero values only. Device falls back to the host name, sanitised to a
// valid topic level; if the host name cannot be read Device stays empty and
// Validate reports it.
func (c Config) WithDefaults() Config {
	if c.QoS == 0 && !c.defaulted {
		c.QoS = DefaultQoS
	}
	c.defaulted = true
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
		if c.Compat == CompatFrigate {
			c.TopicPrefix = DefaultFrigateTopicPrefix
		}
	}
	if c.Device == "" {
		if h, err := os.Hostname(); err == nil {
			c.Device = SanitizeLevel(h)
		}
	}
	if c.ClientID == "" && c.Device != "" {
		c.ClientID = "edgedet-" + c.Device
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = cfgtypes.Duration(DefaultKeepAlive)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = cfgtypes.Duration(DefaultConnectTimeout)
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = cfgtypes.Duration(DefaultPublishTimeout)
	}
	c.Embedded = c.Embedded.WithDefaults()
	if c.Broker == "" && c.Embedded.Enabled {
		c.Broker = "tcp://" + dialAddr(c.Embedded.Listen)
	}
	return c
}

// SanitizeLevel turns s into a valid single topic level: every character
// other than ASCII letters, digits, '-', '_' and '.' becomes '-', and leading
// or trailing '-' are trimmed. It returns "" if nothing is left.
func SanitizeLevel(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_', ch == '.':
			b = append(b, ch)
		default:
			b = append(b, '-')
		}
	}
	return strings.Trim(string(b), "-")
}

// brokerSchemes are the URL schemes paho.mqtt.golang v1.5.1 can dial.
var brokerSchemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "tcps", "mqtt+ssl", "ws", "wss", "unix"}

// tlsSchemes are the brokerSchemes that paho dials with TLS.
var tlsSchemes = []string{"ssl", "tls", "mqtts", "tcps", "mqtt+ssl", "wss"}

// brokerURLIsTLS reports whether paho dials raw with TLS. Like paho, it
// compares the scheme lower-cased by url.Parse.
func brokerURLIsTLS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && slices.Contains(tlsSchemes, u.Scheme)
}

// Validate checks c as it is (call WithDefaults first) and returns every
// problem joined with errors.Join, each naming the field and its value.
// It reads PasswordFile to check that it is readable and non-empty, and the
// TLS files to check that they load.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	brokerErr := validateBroker(c.Broker, c.Embedded.Enabled)
	if brokerErr != nil {
		errs = append(errs, brokerErr)
	}
	if keys := c.TLS.setKeys(); len(keys) > 0 && brokerErr == nil && !brokerURLIsTLS(c.Broker) {
		add("%s: set with mqtt.broker %q, which is not a TLS URL (use ssl://, tls://, mqtts://, tcps://, mqtt+ssl:// or wss://, or remove [mqtt.tls])",
			strings.Join(keys, ", "), redactURL(c.Broker))
	}
	if _, tlsErrs := c.TLS.build(""); len(tlsErrs) > 0 {
		errs = append(errs, tlsErrs...)
	}
	switch {
	case c.ClientID == "":
		add("mqtt.client_id: empty (set mqtt.client_id or mqtt.device)")
	case !utf8.ValidString(c.ClientID) || strings.ContainsRune(c.ClientID, 0):
		add("mqtt.client_id: %q is not valid UTF-8 without NUL", c.ClientID)
	case len(c.ClientID) > 65535:
		add("mqtt.client_id: %d bytes long, over the MQTT limit of 65535", len(c.ClientID))
	}
	if c.QoS > 2 {
		add("mqtt.qos: %d not in {0,1,2}", c.QoS)
	}
	if c.Compat != CompatNative && c.Compat != CompatFrigate {
		add(`mqtt.compat: %q is not "" (edgedet's own topics) or %q`, c.Compat, CompatFrigate)
	}
	if err := checkTopic(c.TopicPrefix, true); err != nil {
		add("mqtt.topic_prefix: %q %w", c.TopicPrefix, err)
	} else if strings.HasPrefix(c.TopicPrefix, "$") {
		add("mqtt.topic_prefix: %q starts with '$' (reserved for broker topics such as $SYS)", c.TopicPrefix)
	}
	if c.Device == "" {
		add("mqtt.device: empty (set mqtt.device; the host name could not be used)")
	} else if err := checkTopic(c.Device, false); err != nil {
		add("mqtt.device: %q %w", c.Device, err)
	}
	if len(c.TopicPrefix)+len(c.Device) > 60000 {
		add("mqtt.topic_prefix, mqtt.device: topics would exceed the MQTT limit of 65535 bytes")
	}

	durations := []struct {
		name string
		d    time.Duration
		min  time.Duration
		max  time.Duration
	}{
		// paho sends keep-alive in whole seconds; 0 would disable it.
		{"keep_alive", c.KeepAlive.D(), time.Second, 65535 * time.Second},
		{"connect_timeout", c.ConnectTimeout.D(), time.Millisecond, 24 * time.Hour},
		{"publish_timeout", c.PublishTimeout.D(), time.Millisecond, 24 * time.Hour},
	}
	for _, d := range durations {
		if d.d < d.min || d.d > d.max {
			add("mqtt.%s: %s not in [%s, %s]", d.name, d.d, d.min, d.max)
		}
	}

	// Credentials. The password itself is never formatted.
	var srcs []string
	if c.Password != "" {
		srcs = append(srcs, "mqtt.password")
	}
	if c.PasswordFile != "" {
		srcs = append(srcs, "mqtt.password_file")
		if _, err := readPasswordFile(c.PasswordFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.PasswordEnv != "" {
		srcs = append(srcs, "mqtt.password_env")
		if os.Getenv(c.PasswordEnv) == "" {
			add("mqtt.password_env: environment variable %q is empty or unset", c.PasswordEnv)
		}
	}
	if len(srcs) > 1 {
		add("%s: set at most one password source", strings.Join(srcs, ", "))
	}
	if len(srcs) > 0 && c.Username == "" {
		add("mqtt.username: empty but %s is set (MQTT sends a password only with a user name)", srcs[0])
	}

	errs = append(errs, c.Embedded.validate()...)
	return errors.Join(errs...)
}

// build loads the files of t into a tls.Config (TLS 1.2 or later) for a
// broker at host, or returns every problem, each naming the key and file
// but never the content.
func (t TLSConfig) build(host string) (*tls.Config, []error) {
	var errs []error
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cmp.Or(t.ServerName, host),
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pool, err := loadCAFile(t.CAFile)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, fmt.Errorf("mqtt.tls.cert_file: %q set without mqtt.tls.key_file (set both for a client certificate, or neither)", t.CertFile))
	case t.KeyFile != "" && t.CertFile == "":
		errs = append(errs, fmt.Errorf("mqtt.tls.key_file: %q set without mqtt.tls.cert_file (set both for a client certificate, or neither)", t.KeyFile))
	case t.CertFile != "":
		// Read each file separately so that an unreadable one is named
		// alone; os errors name the path, never the content.
		certPEM, cerr := readlimit.ReadFile(t.CertFile, maxPEMFile)
		if cerr != nil {
			errs = append(errs, fmt.Errorf("mqtt.tls.cert_file: %q unreadable: %w", t.CertFile, cerr))
		}
		keyPEM, kerr := readlimit.ReadFile(t.KeyFile, maxPEMFile)
		if kerr != nil {
			errs = append(errs, fmt.Errorf("mqtt.tls.key_file: %q unreadable: %w", t.KeyFile, kerr))
		}
		if cerr == nil && kerr == nil {
			// tls.X509KeyPair is tls.LoadX509KeyPair without the reads; its
			// errors describe the problem without quoting the PEM.
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			clear(keyPEM)
			if err != nil {
				errs = append(errs, fmt.Errorf("mqtt.tls.cert_file, mqtt.tls.key_file: %q and %q do not load as a key pair: %w", t.CertFile, t.KeyFile, err))
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// loadCAFile parses every PEM certificate in path; it needs at least one.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := readlimit.ReadFile(path, maxPEMFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt.tls.ca_file: %q unreadable: %w", path, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		n++
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %q certificate %d does not parse: %w", path, n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, fmt.Errorf("mqtt.tls.ca_file: %q holds no PEM certificate", path)
	}
	return pool, nil
}

func validateBroker(raw string, embedded bool) error {
	if raw == "" {
		if embedded {
			return errors.New("mqtt.broker: empty (WithDefaults sets it from mqtt.embedded.listen)")
		}
		return errors.New(`mqtt.broker: empty (set a URL such as "tcp://127.0.0.1:1883", or enable mqtt.embedded)`)
	}
	shown := redactURL(raw)
	if !strings.Contains(raw, "://") {
		return fmt.Errorf(`mqtt.broker: %q has no scheme (want e.g. "tcp://host:1883")`, shown)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error repeats the raw URL (credentials included): keep
		// only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("mqtt.broker: %q is not a URL: %w", shown, err)
	}
	// url.Parse lower-cases the scheme (paho parses the same way). paho
	// dials tcp and TLS schemes without a default port.
	if !slices.Contains(brokerSchemes, u.Scheme) {
		return fmt.Errorf("mqtt.broker: %q scheme %q not one of %s", shown, u.Scheme, strings.Join(brokerSchemes, ", "))
	}
	if u.Scheme == "unix" {
		if u.Host == "" && u.Path == "" {
			return fmt.Errorf("mqtt.broker: %q has no socket path", shown)
		}
		return nil
	}
	if u.Hostname() == "" {
		return fmt.Errorf("mqtt.broker: %q has no host", shown)
	}
	if u.Port() == "" {
		if u.Scheme == "ws" || u.Scheme == "wss" {
			return nil
		}
		return fmt.Errorf("mqtt.broker: %q has no port (e.g. 1883, or 8883 for TLS)", shown)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("mqtt.broker: %q port %q not in 1..65535", shown, u.Port())
	}
	return nil
}

// checkTopic checks a topic name fragment by the MQTT rules for topic names
// (no wildcards, no NUL, valid UTF-8) plus edgedet's: no empty level and no
// leading or trailing '/'. multiLevel allows '/' between levels.
func checkTopic(s string, multiLevel bool) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("contains NUL")
	case strings.ContainsAny(s, "+#"):
		return errors.New("contains a wildcard ('+' or '#')")
	case !multiLevel && strings.Contains(s, "/"):
		return errors.New("contains '/' (must be a single topic level)")
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/"):
		return errors.New("has a leading or trailing '/'")
	case strings.Contains(s, "//"):
		return errors.New("has an empty level ('//')")
	}
	return nil
}

// checkTopicName checks a full topic name to publish to (MQTT rules only).
func checkTopicName(topic string) error {
	switch {
	case topic == "":
		return errors.New("empty topic")
	case len(topic) > 65535:
		return fmt.Errorf("topic of %d bytes over the MQTT limit of 65535", len(topic))
	case !utf8.ValidString(topic) || strings.ContainsRune(topic, 0):
		return fmt.Errorf("topic %q is not valid UTF-8 without NUL", topic)
	case strings.ContainsAny(topic, "+#"):
		return fmt.Errorf("topic %q contains a wildcard", topic)
	}
	return nil
}

func checkListen(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("not host:port: %s", ae.Err)
		}
		return fmt.Errorf("not host:port: %w", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q not in 0..65535", port)
	}
	return nil
}

// dialAddr turns a listen address into one a client can dial: an empty or
// unspecified host becomes 127.0.0.1.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Bounds on the secret files the config names: a password file holds one
// line, a PEM file a few certificates (a CA bundle is ≈ 200 KB).
const (
	maxPasswordFile = 64 << 10
	maxPEMFile      = 4 << 20
)

func readPasswordFile(path string) (string, error) {
	b, err := readlimit.ReadFile(path, maxPasswordFile)
	if err != nil {
		// os errors name the path, never the content.
		return "", fmt.Errorf("mqtt.password_file: %q unreadable: %w", path, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("mqtt.password_file: %q is empty", path)
	}
	return pw, nil
}

// password returns the configured password from whichever source is set.
func (c Config) password() (string, error) {
	switch {
	case c.PasswordFile != "":
		return readPasswordFile(c.PasswordFile)
	case c.PasswordEnv != "":
		pw := os.Getenv(c.PasswordEnv)
		if pw == "" {
			return "", fmt.Errorf("mqtt.password_env: environment variable %q is empty or unset", c.PasswordEnv)
		}
		return pw, nil
	}
	return c.Password, nil
}

// Topics returns the topic tree under TopicPrefix and Device (see package
// topic).
func (c Config) Topics() topic.Tree {
	return topic.Tree{Prefix: c.TopicPrefix, Device: c.Device, Frigate: c.Compat == CompatFrigate}
}

// LogValue implements slog.LogValuer: the config without its password.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	attrs := []slog.Attr{
		slog.String("broker", redactURL(c.Broker)),
		slog.String("client_id", c.ClientID),
		slog.String("username", c.Username),
		slog.String("password", pw),
		slog.String("password_file", c.PasswordFile),
		slog.String("password_env", c.PasswordEnv),
		slog.Int("qos", int(c.QoS)),
		slog.String("topic_prefix", c.TopicPrefix),
		slog.String("compat", c.Compat),
		slog.String("device", c.Device),
		slog.Duration("keep_alive", c.KeepAlive.D()),
		slog.Duration("connect_timeout", c.ConnectTimeout.D()),
		slog.Duration("publish_timeout", c.PublishTimeout.D()),
		slog.String("tls.ca_file", c.TLS.CAFile),
		slog.String("tls.cert_file", c.TLS.CertFile),
		slog.String("tls.key_file", c.TLS.KeyFile),
		slog.String("tls.server_name", c.TLS.ServerName),
		slog.Bool("tls.insecure_skip_verify", c.TLS.InsecureSkipVerify),
	}
	return slog.GroupValue(append(attrs, c.Embedded.logAttrs()...)...)
}

// redactURL masks the password in a broker URL (see redact.URL).
func redactURL(raw string) string { return redact.URL(raw) }
