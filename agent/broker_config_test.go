package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// [[mqtt.embedded.users]] password files resolve against the config's
// directory, like every other path, and errors name the user's key.
func TestParseEmbeddedBrokerUsers(t *testing.T) {
	dir, text := minimal(t)
	if err := os.WriteFile(filepath.Join(dir, "ha.pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text = "state_dir = \"state\"\n" + text + `
[mqtt.embedded]
enabled = true
max_retained_bytes = 4194304
[[mqtt.embedded.users]]
name = "ha"
password_file = "ha.pw"
subscribe = ["edgedet/#"]
`
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.MQTT.Embedded.Users[0].PasswordFile; got != filepath.Join(dir, "ha.pw") {
		t.Errorf("password_file not resolved: %s", got)
	}
	if cfg.StateDir != filepath.Join(dir, "state") || cfg.MQTT.Embedded.MaxRetainedBytes != 4<<20 {
		t.Errorf("state_dir %q, max_retained_bytes %d", cfg.StateDir, cfg.MQTT.Embedded.MaxRetainedBytes)
	}

	bad := strings.Replace(text, `password_file = "ha.pw"`, `password_file = "nope.pw"`, 1)
	_, err = Parse([]byte(bad), dir)
	if err == nil || !strings.Contains(err.Error(), `mqtt.embedded.users[0].password_file: "`+filepath.Join(dir, "nope.pw")+`" unreadable`) {
		t.Fatalf("missing password file: %v", err)
	}
}
