package mqtt

import (
	"errors"
	"fmt"
	"github.com/edgedet/edgedet/internal/readlimit"
	"log/slog"
	"os"
	"strings"
	"unicode/utf8"
)

// Defaults of the [mqtt.embedded] caps, applied by
// [EmbeddedConfig.WithDefaults]. They fit edgedet's own largest messages,
// the retained JPEG snapshots (a few hundred KB for a 1080p frame, up to
// about 2 MB for a full 4K frame at quality 70), with room to spare.
const (
	DefaultMaxPacketSize       = 4 << 20  // 4 MiB
	DefaultMaxRetainedSize     = 2 << 20  // 2 MiB
	DefaultMaxRetainedMessages = 1000     // topics with a retained message
	DefaultMaxRetainedBytes    = 32 << 20 // 32 MiB, all retained messages together

	// maxMQTTPacket is the largest packet MQTT can frame: a remaining
	// length of 268435455 plus a 5-byte fixed header.
	maxMQTTPacket = 268435455 + 5
	// minPacketSize keeps max_packet_size from refusing CONNECT packets.
	minPacketSize = 1024
)

// InternalUser is the user name of the agent's own client on the embedded
// broker when it requires credentials (see [Broker.InternalCredentials]);
// no configured user may take it.
const InternalUser = "edgedet-agent"

// EmbeddedConfig is the [mqtt.embedded] table: an in-process broker.
type EmbeddedConfig struct {
	Enabled bool   `toml:"enabled"`
	Listen  string `toml:"listen"` // host:port, default "127.0.0.1:1883"

	// MaxPacketSize is the largest MQTT packet (bytes) a client may send;
	// a larger one closes its connection. Default 4 MiB.
	MaxPacketSize int64 `toml:"max_packet_size"`
	// MaxRetainedSize is the largest retained message (topic + payload
	// bytes) the broker keeps. Default 2 MiB.
	MaxRetainedSize int64 `toml:"max_retained_size"`
	// MaxRetainedMessages and MaxRetainedBytes bound the retained store
	// (count of topics, and topic + payload bytes of all of them).
	// Defaults 1000 and 32 MiB. A retained publish that does not fit is
	// refused (see [StartEmbedded]).
	MaxRetainedMessages int   `toml:"max_retained_messages"`
	MaxRetainedBytes    int64 `toml:"max_retained_bytes"`

	// Users, when not empty, makes the broker require a user name and
	// password from every client (anonymous clients are refused) and
	// applies each user's ACL. Empty: anonymous access to every topic.
	Users []EmbeddedUser `toml:"users"`
}

// EmbeddedUser is one [[mqtt.embedded.users]] entry. Its password comes
// from a file or an environment variable, never from the config itself.
type EmbeddedUser struct {
	Name         string `toml:"name"`
	PasswordFile string `toml:"password_file"` // the file's content, trailing newline trimmed
	PasswordEnv  string `toml:"password_env"`  // name of an environment variable
	// Publish and Subscribe are MQTT topic filters ('+' and '#' wildcards)
	// the user may publish to and subscribe to; a subscription must lie
	// within one of them. Empty: nothing.
	Publish   []string `toml:"publish"`
	Subscribe []string `toml:"subscribe"`
}

// DefaultEmbeddedConfig returns the [mqtt.embedded] defaults (disabled).
func DefaultEmbeddedConfig() EmbeddedConfig { return EmbeddedConfig{}.WithDefaults() }

// WithDefaults returns a copy of e with zero fields set to their defaults.
func (e EmbeddedConfig) WithDefaults() EmbeddedConfig {
	if e.Listen == "" {
		e.Listen = DefaultEmbeddedListen
	}
	if e.MaxPacketSize == 0 {
		e.MaxPacketSize = DefaultMaxPacketSize
	}
	if e.MaxRetainedSize == 0 {
		e.MaxRetainedSize = DefaultMaxRetainedSize
	}
	if e.MaxRetainedMessages == 0 {
		e.MaxRetainedMessages = DefaultMaxRetainedMessages
	}
	if e.MaxRetainedBytes == 0 {
		e.MaxRetainedBytes = DefaultMaxRetainedBytes
	}
	e.Users = append([]EmbeddedUser(nil), e.Users...) // never share the caller's slice
	return e
}

// AuthRequired reports whether the broker requires credentials.
func (e EmbeddedConfig) AuthRequired() bool { return len(e.Users) > 0 }

// validate returns every problem of the table, each naming its key
// (mqtt.embedded.users[1].password_file: ...). It reads the password files
// and variables to check they are set, and never formats a password.
func (e EmbeddedConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkListen(e.Listen); err != nil {
		add("mqtt.embedded.listen: %q %w", e.Listen, err)
	}
	if e.MaxPacketSize < minPacketSize || e.MaxPacketSize > maxMQTTPacket {
		add("mqtt.embedded.max_packet_size: %d not in [%d, %d]", e.MaxPacketSize, minPacketSize, maxMQTTPacket)
	}
	if e.MaxRetainedSize < 1 || e.MaxRetainedSize > e.MaxPacketSize {
		add("mqtt.embedded.max_retained_size: %d not in [1, max_packet_size %d]", e.MaxRetainedSize, e.MaxPacketSize)
	}
	if e.MaxRetainedMessages < 1 {
		add("mqtt.embedded.max_retained_messages: %d must be >= 1", e.MaxRetainedMessages)
	}
	if e.MaxRetainedBytes < e.MaxRetainedSize {
		add("mqtt.embedded.max_retained_bytes: %d is below max_retained_size %d", e.MaxRetainedBytes, e.MaxRetainedSize)
	}
	seen := map[string]int{}
	for i, u := range e.Users {
		key := fmt.Sprintf("mqtt.embedded.users[%d]", i)
		switch {
		case u.Name == "":
			add("%s.name: empty", key)
		case !utf8.ValidString(u.Name) || strings.ContainsRune(u.Name, 0) || len(u.Name) > 65535:
			add("%s.name: %q is not valid UTF-8 without NUL of at most 65535 bytes", key, u.Name)
		case u.Name == InternalUser:
			add("%s.name: %q is reserved for the agent's own client", key, u.Name)
		default:
			if j, dup := seen[u.Name]; dup {
				add("%s.name: %q already used by mqtt.embedded.users[%d]", key, u.Name, j)
			}
			seen[u.Name] = i
		}
		switch {
		case u.PasswordFile != "" && u.PasswordEnv != "":
			add("%s.password_file, %s.password_env: set only one", key, key)
		case u.PasswordFile == "" && u.PasswordEnv == "":
			add("%s: no password (set password_file or password_env)", key)
		default:
			if _, err := u.password(key); err != nil {
				errs = append(errs, err)
			}
		}
		for j, f := range u.Publish {
			if err := checkFilter(f); err != nil {
				add("%s.publish[%d]: %q %w", key, j, f, err)
			}
		}
		for j, f := range u.Subscribe {
			if err := checkFilter(f); err != nil {
				add("%s.subscribe[%d]: %q %w", key, j, f, err)
			}
		}
	}
	return errs
}

// password reads the user's password from its file or variable; key names
// the entry in errors (which never hold the password).
func (u EmbeddedUser) password(key string) (string, error) {
	if u.PasswordEnv != "" {
		pw := os.Getenv(u.PasswordEnv)
		if pw == "" {
			return "", fmt.Errorf("%s.password_env: environment variable %q is empty or unset", key, u.PasswordEnv)
		}
		return pw, nil
	}
	b, err := readlimit.ReadFile(u.PasswordFile, maxPasswordFile)
	if err != nil {
		// os errors name the path, never the content.
		return "", fmt.Errorf("%s.password_file: %q unreadable: %w", key, u.PasswordFile, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	clear(b)
	if pw == "" {
		return "", fmt.Errorf("%s.password_file: %q is empty", key, u.PasswordFile)
	}
	return pw, nil
}

// checkFilter checks an MQTT topic filter: not empty, valid UTF-8 without
// NUL, '+' only as a whole level and '#' only as the whole last level.
func checkFilter(f string) error {
	switch {
	case f == "":
		return errors.New("is empty")
	case len(f) > 65535:
		return errors.New("is over the MQTT limit of 65535 bytes")
	case !utf8.ValidString(f) || strings.ContainsRune(f, 0):
		return errors.New("is not valid UTF-8 without NUL")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return errors.New("has '#' other than as the whole last level")
		case strings.Contains(l, "+") && l != "+":
			return errors.New("has '+' other than as a whole level")
		}
	}
	return nil
}

// logAttrs describes the table for Config.LogValue, without passwords.
func (e EmbeddedConfig) logAttrs() []slog.Attr {
	users := make([]string, len(e.Users))
	for i, u := range e.Users {
		users[i] = u.Name
	}
	return []slog.Attr{
		slog.Bool("embedded.enabled", e.Enabled),
		slog.String("embedded.listen", e.Listen),
		slog.Int64("embedded.max_packet_size", e.MaxPacketSize),
		slog.Int64("embedded.max_retained_size", e.MaxRetainedSize),
		slog.Int("embedded.max_retained_messages", e.MaxRetainedMessages),
		slog.Int64("embedded.max_retained_bytes", e.MaxRetainedBytes),
		slog.String("embedded.users", strings.Join(users, ",")),
	}
}
