package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/spool"
	"github.com/edgedet/edgedet/internal/cfgtypes"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

func TestConfigDirMustBeADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Config{Dir: file}.Validate()
	if err == nil || !strings.Contains(err.Error(), "spool.dir") || !strings.Contains(err.Error(), file) {
		t.Errorf("Validate(dir is a file) = %v, want an error naming spool.dir and %s", err, file)
	}
	if err := (Config{Dir: filepath.Dir(file)}).Validate(); err != nil {
		t.Errorf("Validate(existing dir) = %v", err)
	}
	if err := (Config{Dir: filepath.Join(file + "-missing")}).Validate(); err != nil {
		t.Errorf("Validate(missing dir, created later) = %v", err)
	}
}

func TestConfigFlushIntervalFloor(t *testing.T) {
	for _, d := range []time.Duration{time.Nanosecond, 9 * time.Millisecond} {
		err := Config{FlushInterval: cfgtypes.Duration(d)}.Validate()
		if err == nil || !strings.Contains(err.Error(), "spool.flush_interval") {
			t.Errorf("Validate(flush_interval %v) = %v, want a spool.flush_interval error", d, err)
		}
	}
	if err := (Config{FlushInterval: cfgtypes.Duration(10 * time.Millisecond)}).Validate(); err != nil {
		t.Errorf("Validate(flush_interval 10ms) = %v", err)
	}
}

// The first message a spool assigns (ID 1) gets a msg_id like any other;
// only ID 0 (no spool ID) goes without.
func TestWithIDFromTheFirstID(t *testing.T) {
	o, err := New(Config{}, &attempts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := publish.Message{ID: 1, Topic: "ev", Payload: []byte(`{"a":1}`), QoS: 1}
	if id := msgID(t, o.withID(m).Payload); !strings.HasSuffix(id, "-1") {
		t.Errorf("ID 1: msg_id %q, want one ending in -1", id)
	}
	m.ID = 0
	if out := o.withID(m); string(out.Payload) != `{"a":1}` {
		t.Errorf("ID 0: payload %s, want it unchanged", out.Payload)
	}
}

// An Add error made only of ErrTooLarge lost one message per error; any
// other error lost the whole batch.
func TestCountNotSpooled(t *testing.T) {
	tooLarge := func(topic string) error { return fmt.Errorf("topic %s: %w", topic, spool.ErrTooLarge) }
	closed := errors.New("spool closed")
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"one too large", tooLarge("a"), 1},
		{"two too large", errors.Join(tooLarge("a"), tooLarge("b")), 2},
		{"nested too large", errors.Join(errors.Join(tooLarge("a")), tooLarge("b")), 2},
		{"closed", closed, 5},
		{"too large and closed", errors.Join(tooLarge("a"), closed), 5},
	} {
		if got := countNotSpooled(tc.err, 5); got != tc.want {
			t.Errorf("%s: countNotSpooled(%v, 5) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

// An Outbox without an id prefix (built by hand, not by New) sends
// payloads unchanged.
func TestWithIDWithoutPrefixKeepsPayload(t *testing.T) {
	var o Outbox
	m := publish.Message{ID: 7, Topic: "ev", Payload: []byte(`{"a":1}`), QoS: 1}
	if out := o.withID(m); string(out.Payload) != `{"a":1}` {
		t.Errorf("payload %s, want it unchanged", out.Payload)
	}
}
