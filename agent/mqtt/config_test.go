package mqtt

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/internal/cfgtypes"
)

func TestWithDefaults(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	got := Config{}.WithDefaults()
	want := Config{
		ClientID:       "edgedet-" + SanitizeLevel(host),
		QoS:            1,
		TopicPrefix:    "edgedet",
		Device:         SanitizeLevel(host),
		KeepAlive:      cfgtypes.Duration(30 * time.Second),
		ConnectTimeout: cfgtypes.Duration(10 * time.Second),
		PublishTimeout: cfgtypes.Duration(5 * time.Second),
		Embedded: EmbeddedConfig{Listen: "127.0.0.1:1883", MaxPacketSize: 4 << 20, MaxRetainedSize: 2 << 20,
			MaxRetainedMessages: 1000, MaxRetainedBytes: 32 << 20},
		defaulted: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Config{}.WithDefaults()\n got %+v\nwant %+v", got, want)
	}
	if got.Broker != "" {
		t.Fatalf("broker defaulted to %q without the embedded broker", got.Broker)
	}

	// Explicit values survive; the receiver is not modified.
	in := Config{Broker: "tcp://b:1883", ClientID: "me", QoS: 2, TopicPrefix: "a/b", Device: "cam1",
		KeepAlive: cfgtypes.Duration(time.Minute)}
	out := in.WithDefaults()
	if out.ClientID != "me" || out.QoS != 2 || out.TopicPrefix != "a/b" || out.Device != "cam1" ||
		out.KeepAlive.D() != time.Minute || out.Broker != "tcp://b:1883" {
		t.Fatalf("explicit values changed: %+v", out)
	}
	if in.defaulted || in.ConnectTimeout != 0 {
		t.Fatalf("receiver modified: %+v", in)
	}
	if c := (Config{Device: "cam1"}).WithDefaults(); c.ClientID != "edgedet-cam1" {
		t.Fatalf("client id %q, want edgedet-cam1", c.ClientID)
	}

	// The embedded broker supplies the broker URL, dialled on loopback.
	emb := Config{Embedded: EmbeddedConfig{Enabled: true, Listen: "0.0.0.0:1884"}}.WithDefaults()
	if emb.Broker != "tcp://127.0.0.1:1884" {
		t.Fatalf("embedded broker URL %q", emb.Broker)
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "mqtt.broker: empty") {
		t.Fatalf("default config without broker: %v", err)
	}
	if err := (Config{Embedded: EmbeddedConfig{Enabled: true}}).WithDefaults().Validate(); err != nil {
		t.Fatalf("default config with embedded broker: %v", err)
	}
}

// qos = 0 decoded onto the defaults must stay 0, also when WithDefaults (as
// NewClient does) runs again.
func TestQoSZeroSurvivesDefaults(t *testing.T) {
	var file struct {
		MQTT Config `toml:"mqtt"`
	}
	file.MQTT = DefaultConfig()
	md, err := toml.Decode(`
[mqtt]
broker = "tcp://127.0.0.1:1883"
client_id = "cid"
username = "u"
password_env = "X"
qos = 0
topic_prefix = "site/edgedet"
device = "cam1"
keep_alive = "15s"
connect_timeout = "3s"
publish_timeout = "2s"
[mqtt.embedded]
enabled = true
listen = "127.0.0.1:1999"
`, &file)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("keys without a field: %v", u)
	}
	c := file.MQTT.WithDefaults()
	if c.QoS != 0 {
		t.Fatalf("qos = 0 became %d", c.QoS)
	}
	if c.KeepAlive.D() != 15*time.Second || c.ConnectTimeout.D() != 3*time.Second || c.PublishTimeout.D() != 2*time.Second ||
		c.TopicPrefix != "site/edgedet" || c.ClientID != "cid" || c.Username != "u" || c.PasswordEnv != "X" ||
		!c.Embedded.Enabled || c.Embedded.Listen != "127.0.0.1:1999" || c.Broker != "tcp://127.0.0.1:1883" {
		t.Fatalf("decoded %+v", c)
	}
	if got := c.Topics(); got != (topic.Tree{Prefix: "site/edgedet", Device: "cam1"}) {
		t.Fatalf("Topics = %+v", got)
	}
	if got := c.Topics().Available(); got != "site/edgedet/cam1/available" {
		t.Fatalf("availability topic %q", got)
	}
}

func TestSanitizeLevel(t *testing.T) {
	for in, want := range map[string]string{
		"edge-01":          "edge-01",
		"cam.local":        "cam.local",
		"My Host/+#":       "My-Host",
		"  x  ":            "x",
		"":                 "",
		"+#/":              "",
		"host_name.domain": "host_name.domain",
		"héllo":            "h--llo",
	} {
		if got := SanitizeLevel(in); got != want {
			t.Errorf("SanitizeLevel(%q) = %q, want %q", in, got, want)
		}
		if got := SanitizeLevel(in); got != "" && checkTopic(got, false) != nil {
			t.Errorf("SanitizeLevel(%q) = %q is not a valid level", in, got)
		}
	}
}

func validConfig(t *testing.T) Config {
	t.Helper()
	c := Config{Broker: "tcp://127.0.0.1:1883", Device: "cam1"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	return c
}

func TestValidateValid(t *testing.T) {
	for _, b := range []string{"tcp://h:1883", "mqtt://h:1883", "ssl://h:8883", "mqtts://h:8883", "tls://h:8883",
		"ws://h:80/mqtt", "wss://h/mqtt", "TCP://h:1883", "tcp://[::1]:1883", "unix:///run/mosquitto.sock"} {
		c := validConfig(t)
		c.Broker = b
		if err := c.Validate(); err != nil {
			t.Errorf("broker %q: %v", b, err)
		}
	}
	c := validConfig(t)
	c.QoS = 0
	c.TopicPrefix = "site-3/edgedet"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-file")
	t.Setenv("EDGEDET_TEST_EMPTY_PW", "")

	cases := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error
	}{
		{"qos", func(c *Config) { c.QoS = 3 }, []string{"mqtt.qos: 3 not in {0,1,2}"}},
		{"broker empty", func(c *Config) { c.Broker = "" }, []string{"mqtt.broker: empty"}},
		{"broker scheme", func(c *Config) { c.Broker = "ftp://h:21" }, []string{`mqtt.broker: "ftp://h:21"`, `scheme "ftp"`}},
		{"broker no scheme", func(c *Config) { c.Broker = "127.0.0.1:1883" }, []string{`mqtt.broker: "127.0.0.1:1883" has no scheme`}},
		{"broker no host", func(c *Config) { c.Broker = "tcp://:1883" }, []string{`mqtt.broker: "tcp://:1883" has no host`}},
		{"broker no port", func(c *Config) { c.Broker = "mqtt://h" }, []string{`mqtt.broker: "mqtt://h" has no port`}},
		{"broker port", func(c *Config) { c.Broker = "tcp://h:99999" }, []string{`mqtt.broker: "tcp://h:99999" port "99999"`}},
		{"broker unparsable", func(c *Config) { c.Broker = "tcp://h:1883/%zz" }, []string{`mqtt.broker: "tcp://h:1883/%zz" is not a URL`}},
		{"client id", func(c *Config) { c.ClientID = "" }, []string{"mqtt.client_id: empty"}},
		{"prefix plus", func(c *Config) { c.TopicPrefix = "a/+/b" }, []string{`mqtt.topic_prefix: "a/+/b"`, "wildcard"}},
		{"prefix hash", func(c *Config) { c.TopicPrefix = "a#" }, []string{`mqtt.topic_prefix: "a#"`, "wildcard"}},
		{"prefix leading", func(c *Config) { c.TopicPrefix = "/a" }, []string{`mqtt.topic_prefix: "/a"`, "leading or trailing"}},
		{"prefix trailing", func(c *Config) { c.TopicPrefix = "a/" }, []string{`mqtt.topic_prefix: "a/"`, "leading or trailing"}},
		{"prefix empty level", func(c *Config) { c.TopicPrefix = "a//b" }, []string{`mqtt.topic_prefix: "a//b"`, "empty level"}},
		{"prefix empty", func(c *Config) { c.TopicPrefix = "" }, []string{`mqtt.topic_prefix: ""`, "empty"}},
		{"prefix $", func(c *Config) { c.TopicPrefix = "$SYS" }, []string{`mqtt.topic_prefix: "$SYS"`}},
		{"prefix NUL", func(c *Config) { c.TopicPrefix = "a\x00b" }, []string{`mqtt.topic_prefix: "a\x00b"`, "NUL"}},
		{"device slash", func(c *Config) { c.Device = "a/b" }, []string{`mqtt.device: "a/b"`, "single topic level"}},
		{"device wildcard", func(c *Config) { c.Device = "cam+" }, []string{`mqtt.device: "cam+"`, "wildcard"}},
		{"device empty", func(c *Config) { c.Device = "" }, []string{"mqtt.device: empty"}},
		{"keep alive", func(c *Config) { c.KeepAlive = cfgtypes.Duration(500 * time.Millisecond) }, []string{"mqtt.keep_alive: 500ms"}},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = cfgtypes.Duration(-time.Second) }, []string{"mqtt.connect_timeout: -1s"}},
		{"publish timeout", func(c *Config) { c.PublishTimeout = cfgtypes.Duration(-time.Second) }, []string{"mqtt.publish_timeout: -1s"}},
		{"listen", func(c *Config) { c.Embedded = EmbeddedConfig{Enabled: true, Listen: "nope"} }, []string{`mqtt.embedded.listen: "nope" not host:port`}},
		{"listen port", func(c *Config) { c.Embedded = EmbeddedConfig{Enabled: true, Listen: "127.0.0.1:70000"} }, []string{`mqtt.embedded.listen: "127.0.0.1:70000" port "70000"`}},
		{"password file missing", func(c *Config) { c.Username = "u"; c.PasswordFile = missing }, []string{`mqtt.password_file: "` + missing + `" unreadable`}},
		{"password file dir", func(c *Config) { c.Username = "u"; c.PasswordFile = dir }, []string{`mqtt.password_file: "` + dir + `" unreadable`}},
		{"password file empty", func(c *Config) { c.Username = "u"; c.PasswordFile = emptyFile }, []string{`mqtt.password_file: "` + emptyFile + `" is empty`}},
		{"password env empty", func(c *Config) { c.Username = "u"; c.PasswordEnv = "EDGEDET_TEST_EMPTY_PW" }, []string{`mqtt.password_env: environment variable "EDGEDET_TEST_EMPTY_PW" is empty`}},
		{"password env unset", func(c *Config) { c.Username = "u"; c.PasswordEnv = "EDGEDET_TEST_UNSET_PW_XYZ" }, []string{`"EDGEDET_TEST_UNSET_PW_XYZ" is empty or unset`}},
		{"two passwords", func(c *Config) { c.Username = "u"; c.Password = "p"; c.PasswordFile = emptyFile }, []string{"mqtt.password, mqtt.password_file: set at most one"}},
		{"password without user", func(c *Config) { c.Password = "p" }, []string{"mqtt.username: empty but mqtt.password is set"}},
		{"compat", func(c *Config) { c.Compat = "Frigate2" }, []string{`mqtt.compat: "Frigate2" is not "" (edgedet's own topics) or "frigate"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// NewClient refuses the same config, unless a default fills
			// the empty field.
			if c.WithDefaults().Validate() == nil {
				return
			}
			if _, err := NewClient(c, slog.New(slog.DiscardHandler)); err == nil {
				t.Errorf("NewClient accepted %s", tc.name)
			}
		})
	}
}

// TestCompatFrigate: compat = "frigate" defaults the prefix to Frigate's,
// keeps an explicit one, and switches the topic tree to Frigate's layout.
func TestCompatFrigate(t *testing.T) {
	c := Config{Broker: "tcp://127.0.0.1:1883", Device: "cam1", Compat: CompatFrigate}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.TopicPrefix != "frigate" {
		t.Errorf("topic prefix %q, want frigate", c.TopicPrefix)
	}
	if got := c.Topics().Available(); got != "frigate/available" {
		t.Errorf("availability topic %q, want frigate/available", got)
	}
	c = Config{Broker: "tcp://127.0.0.1:1883", Device: "cam1", Compat: CompatFrigate, TopicPrefix: "site/frigate"}.WithDefaults()
	if c.TopicPrefix != "site/frigate" || c.Topics().Events("x") != "site/frigate/events" {
		t.Errorf("explicit prefix: %q, events %q", c.TopicPrefix, c.Topics().Events("x"))
	}
	if got := validConfig(t).Topics(); got.Frigate || got.Prefix != "edgedet" {
		t.Errorf("native config gives tree %+v", got)
	}
}

func TestValidateJoinsAllErrors(t *testing.T) {
	c := validConfig(t)
	c.QoS = 7
	c.Device = "a/b"
	c.Broker = "gopher://x"
	err := c.Validate()
	for _, w := range []string{"mqtt.qos: 7", `mqtt.device: "a/b"`, `mqtt.broker: "gopher://x"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("%d error lines, want 3: %v", n, err)
	}
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGEDET_TEST_PW", "from-env")
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Username: "u", PasswordFile: f}, "from-file"},
		{Config{Username: "u", PasswordEnv: "EDGEDET_TEST_PW"}, "from-env"},
		{Config{Username: "u", Password: "inline"}, "inline"},
		{Config{Username: "u"}, ""},
	} {
		c := validConfig(t)
		c.Username, c.Password, c.PasswordFile, c.PasswordEnv = tc.c.Username, tc.c.Password, tc.c.PasswordFile, tc.c.PasswordEnv
		if err := c.Validate(); err != nil {
			t.Fatalf("%+v: %v", tc.c, err)
		}
		got, err := c.password()
		if err != nil || got != tc.want {
			t.Errorf("password() = %q, %v; want %q", got, err, tc.want)
		}
	}
}

// No error, %+v formatting or log line may carry a password, whatever its
// source.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	const (
		inline = "inline-s3cret"
		inURL  = "url-s3cret"
		inFile = "file-s3cret"
	)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(inFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []Config{
		{Broker: "ftp://user:" + inURL + "@h:1", Username: "u", Password: inline},
		{Broker: "tcp://user:" + inURL + "@h:1/%zz", QoS: 9},
		{Broker: "tcp://user:" + inURL + "@:1", Password: inline},
		{Broker: "tcp://h:1", Username: "u", Password: inline, PasswordFile: pwFile},
		{Broker: "tcp://h:1", Password: inline, Device: "x/y"},
	}
	log, buf := newLogger(t)
	for i, c := range bad {
		c = c.WithDefaults()
		err := c.Validate()
		if err == nil {
			t.Fatalf("case %d: Validate() = nil", i)
		}
		_, nerr := NewClient(c, log)
		if nerr == nil {
			t.Fatalf("case %d: NewClient accepted", i)
		}
		for _, s := range []string{fmt.Sprintf("%+v", err), fmt.Sprintf("%+v", nerr), fmt.Sprintf("%#v", nerr), err.Error()} {
			for _, secret := range []string{inline, inURL, inFile} {
				if strings.Contains(s, secret) {
					t.Errorf("case %d: error shows a password: %s", i, s)
				}
			}
		}
		log.Error("config rejected", "err", nerr, "config", c)
	}
	out := buf.String()
	for _, secret := range []string{inline, inURL, inFile} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows password %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "password=REDACTED") || !strings.Contains(out, "user:xxxxx@") {
		t.Errorf("log does not show the redactions:\n%s", out)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://h:1883":            "tcp://h:1883",
		"tcp://u:p@h:1883":        "tcp://u:xxxxx@h:1883",
		"tcp://u@h:1883":          "tcp://u@h:1883",
		"tcp://u:p@h:1883/%zz":    "tcp://u:xxxxx@h:1883/%zz",
		"tcp://u:p@h:1883 \x7f/x": "tcp://u:xxxxx@h:1883 \x7f/x",
		"u:p@h":                   "u:xxxxx@h",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretFilesAreReadBounded(t *testing.T) {
	// /dev/zero never ends: each secret file is read with a bound and the
	// error names the key and the file.
	c := validConfig(t)
	c.Username, c.PasswordFile = "u", "/dev/zero"
	if _, err := c.password(); err == nil || !strings.Contains(err.Error(), "mqtt.password_file") || !strings.Contains(err.Error(), "/dev/zero") {
		t.Errorf("password() from /dev/zero = %v, want an error naming mqtt.password_file and the file", err)
	}
	if _, err := loadCAFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "mqtt.tls.ca_file") {
		t.Errorf("loadCAFile(/dev/zero) = %v, want an error naming mqtt.tls.ca_file", err)
	}
}
