package mqtt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestEmbeddedConfigDecodes(t *testing.T) {
	var file struct {
		MQTT Config `toml:"mqtt"`
	}
	md, err := toml.Decode(`
[mqtt]
device = "cam1"
[mqtt.embedded]
enabled = true
max_packet_size = 1048576
max_retained_size = 524288
max_retained_messages = 50
max_retained_bytes = 8388608
[[mqtt.embedded.users]]
name = "ha"
password_env = "HA_PW"
publish = ["homeassistant/status"]
subscribe = ["edgedet/#", "homeassistant/#"]
[[mqtt.embedded.users]]
name = "ops"
password_file = "/etc/edgedet/ops"
`, &file)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("keys without a field: %v", u)
	}
	e := file.MQTT.WithDefaults().Embedded
	if e.MaxPacketSize != 1<<20 || e.MaxRetainedSize != 512<<10 || e.MaxRetainedMessages != 50 || e.MaxRetainedBytes != 8<<20 {
		t.Fatalf("caps %+v", e)
	}
	if len(e.Users) != 2 || e.Users[0].Name != "ha" || e.Users[0].PasswordEnv != "HA_PW" ||
		strings.Join(e.Users[0].Subscribe, ",") != "edgedet/#,homeassistant/#" || e.Users[1].PasswordFile != "/etc/edgedet/ops" {
		t.Fatalf("users %+v", e.Users)
	}
	if !e.AuthRequired() || DefaultEmbeddedConfig().AuthRequired() {
		t.Fatal("AuthRequired wrong")
	}
}

func TestEmbeddedConfigWithDefaultsCopiesUsers(t *testing.T) {
	in := EmbeddedConfig{Users: []EmbeddedUser{{Name: "a"}}}
	out := in.WithDefaults()
	out.Users[0].Name = "changed"
	if in.Users[0].Name != "a" {
		t.Fatal("WithDefaults shares the caller's users")
	}
}

func TestEmbeddedConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	t.Setenv("EDGEDET_TEST_BROKER_PW", "env-s3cret")
	t.Setenv("EDGEDET_TEST_BROKER_EMPTY", "")
	good := EmbeddedUser{Name: "u", PasswordFile: pwFile, Publish: []string{"a/#"}, Subscribe: []string{"+/b"}}

	if errs := (EmbeddedConfig{Enabled: true, Users: []EmbeddedUser{good}}).WithDefaults().validate(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	cases := []struct {
		name string
		mod  func(*EmbeddedConfig)
		want string
	}{
		{"packet small", func(e *EmbeddedConfig) { e.MaxPacketSize = 100 }, "mqtt.embedded.max_packet_size: 100 not in [1024, 268435460]"},
		{"packet huge", func(e *EmbeddedConfig) { e.MaxPacketSize = 1 << 30 }, "mqtt.embedded.max_packet_size: 1073741824 not in"},
		{"retained size over packet", func(e *EmbeddedConfig) { e.MaxRetainedSize = 8 << 20 }, "mqtt.embedded.max_retained_size: 8388608 not in [1, max_packet_size 4194304]"},
		{"retained size negative", func(e *EmbeddedConfig) { e.MaxRetainedSize = -1 }, "mqtt.embedded.max_retained_size: -1"},
		{"retained count", func(e *EmbeddedConfig) { e.MaxRetainedMessages = -5 }, "mqtt.embedded.max_retained_messages: -5 must be >= 1"},
		{"retained bytes", func(e *EmbeddedConfig) { e.MaxRetainedBytes = 10 }, "mqtt.embedded.max_retained_bytes: 10 is below max_retained_size 2097152"},
		{"listen", func(e *EmbeddedConfig) { e.Listen = "nope" }, `mqtt.embedded.listen: "nope" not host:port`},
		{"no name", func(e *EmbeddedConfig) { e.Users[0].Name = "" }, "mqtt.embedded.users[0].name: empty"},
		{"reserved name", func(e *EmbeddedConfig) { e.Users[0].Name = InternalUser }, `mqtt.embedded.users[0].name: "edgedet-agent" is reserved`},
		{"bad name", func(e *EmbeddedConfig) { e.Users[0].Name = "a\x00" }, `mqtt.embedded.users[0].name: "a\x00" is not valid`},
		{"duplicate", func(e *EmbeddedConfig) { e.Users = append(e.Users, good) }, `mqtt.embedded.users[1].name: "u" already used by mqtt.embedded.users[0]`},
		{"no password", func(e *EmbeddedConfig) { e.Users[0].PasswordFile = "" }, "mqtt.embedded.users[0]: no password (set password_file or password_env)"},
		{"two passwords", func(e *EmbeddedConfig) { e.Users[0].PasswordEnv = "EDGEDET_TEST_BROKER_PW" }, "mqtt.embedded.users[0].password_file, mqtt.embedded.users[0].password_env: set only one"},
		{"missing file", func(e *EmbeddedConfig) { e.Users[0].PasswordFile = missing }, `mqtt.embedded.users[0].password_file: "` + missing + `" unreadable`},
		{"empty file", func(e *EmbeddedConfig) { e.Users[0].PasswordFile = emptyFile }, `mqtt.embedded.users[0].password_file: "` + emptyFile + `" is empty`},
		{"empty env", func(e *EmbeddedConfig) {
			e.Users[0].PasswordFile, e.Users[0].PasswordEnv = "", "EDGEDET_TEST_BROKER_EMPTY"
		}, `mqtt.embedded.users[0].password_env: environment variable "EDGEDET_TEST_BROKER_EMPTY" is empty or unset`},
		{"publish filter", func(e *EmbeddedConfig) { e.Users[0].Publish = []string{"a/#", "a/#/b"} }, `mqtt.embedded.users[0].publish[1]: "a/#/b" has '#' other than as the whole last level`},
		{"subscribe filter", func(e *EmbeddedConfig) { e.Users[0].Subscribe = []string{"a+"} }, `mqtt.embedded.users[0].subscribe[0]: "a+" has '+' other than as a whole level`},
		{"empty filter", func(e *EmbeddedConfig) { e.Users[0].Subscribe = []string{""} }, `mqtt.embedded.users[0].subscribe[0]: "" is empty`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := EmbeddedConfig{Enabled: true, Users: []EmbeddedUser{good}}.WithDefaults()
			tc.mod(&e)
			err := fmt.Sprint(e.validate())
			if !strings.Contains(err, tc.want) {
				t.Errorf("errors %s do not contain %q", err, tc.want)
			}
			for _, secret := range []string{"file-s3cret", "env-s3cret"} {
				if strings.Contains(err, secret) {
					t.Errorf("error shows a password: %s", err)
				}
			}
			// The whole [mqtt] config reports it, and StartEmbedded refuses it.
			c := Config{Broker: "tcp://h:1", Device: "d", Embedded: e}.WithDefaults()
			if verr := c.Validate(); verr == nil || !strings.Contains(verr.Error(), tc.want) {
				t.Errorf("Config.Validate() = %v", verr)
			}
			log, _ := newLogger(t)
			e.Listen = "127.0.0.1:0"
			if b, serr := StartEmbedded(e, "", log); serr == nil {
				b.Close()
				if tc.name != "listen" {
					t.Errorf("StartEmbedded accepted it")
				}
			}
		})
	}
}

func TestEmbeddedConfigLogValueHidesPasswords(t *testing.T) {
	t.Setenv("EDGEDET_TEST_BROKER_PW", "env-s3cret")
	c := Config{Broker: "tcp://h:1", Device: "d", Embedded: EmbeddedConfig{
		Enabled: true,
		Users:   []EmbeddedUser{{Name: "ha", PasswordEnv: "EDGEDET_TEST_BROKER_PW"}, {Name: "ops", PasswordEnv: "EDGEDET_TEST_BROKER_PW"}},
	}}.WithDefaults()
	out := slogValue(c)
	if strings.Contains(out, "env-s3cret") {
		t.Fatalf("password in log value: %s", out)
	}
	for _, w := range []string{"embedded.users=ha,ops", "embedded.max_packet_size=4194304", "embedded.max_retained_bytes=33554432"} {
		if !strings.Contains(out, w) {
			t.Errorf("log value lacks %q: %s", w, out)
		}
	}
}
