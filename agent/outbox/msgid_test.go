package outbox

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/internal/testenv"
)

// attempts records every publish attempt (payload copied) and fails the
// first n with ErrNotConnected.
type attempts struct {
	mu  sync.Mutex
	n   int
	got []publish.Message
}

func (a *attempts) PublishMessage(_ context.Context, m publish.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m.Payload = append([]byte(nil), m.Payload...)
	a.got = append(a.got, m)
	if a.n > 0 {
		a.n--
		return publish.ErrNotConnected
	}
	return nil
}

func (a *attempts) all() []publish.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]publish.Message(nil), a.got...)
}

var msgIDRE = regexp.MustCompile(`^[0-9a-f]{16}-[1-9][0-9]*$`)

// msgID returns the payload's msg_id ("" when it has none), failing on a
// payload that is not JSON.
func msgID(t testing.TB, p []byte) string {
	t.Helper()
	var v struct {
		MsgID string `json:"msg_id"`
	}
	if err := json.Unmarshal(p, &v); err != nil {
		t.Fatalf("payload %q is not a JSON object: %v", p, err)
	}
	return v.MsgID
}

// Non-retained JSON objects get a msg_id, the same on every attempt; other
// payloads are sent as they are.
func TestMessageIDInJSONPayloads(t *testing.T) {
	log, _ := newLogger(t)
	p := &attempts{n: 2}
	o, stop := runOutbox(t, fastConfig(), p, log)
	o.Send(
		publish.Message{Topic: "ev", Payload: []byte(`{"type":"new","after":{"id":3}}`), QoS: 1},
		publish.Message{Topic: "ev", Payload: []byte(" {\n} "), QoS: 1},
		publish.Message{Topic: "state", Payload: []byte(`{"retained":true}`), QoS: 1, Retained: true},
		publish.Message{Topic: "snap", Payload: []byte("\xff\xd8\xff\xe0 jpeg"), QoS: 1},
		publish.Message{Topic: "count", Payload: []byte("3"), QoS: 1},
	)
	testenv.Eventually(t, 10*time.Second, "all published", func() bool { return o.Stats().Published == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := p.all()
	if len(got) != 7 { // the first message twice more
		t.Fatalf("%d attempts, want 7: %v", len(got), got)
	}
	first := msgID(t, got[0].Payload)
	if !msgIDRE.MatchString(first) {
		t.Fatalf("msg_id %q, want <16 hex>-<id>", first)
	}
	for i := 1; i < 3; i++ {
		if string(got[i].Payload) != string(got[0].Payload) {
			t.Errorf("attempt %d sent %q, attempt 0 %q: a retry must carry the same payload and id", i, got[i].Payload, got[0].Payload)
		}
	}
	if want := `{"msg_id":"` + first + `","type":"new","after":{"id":3}}`; string(got[0].Payload) != want {
		t.Errorf("payload %q, want %q", got[0].Payload, want)
	}
	second := msgID(t, got[3].Payload)
	epoch, _, _ := strings.Cut(first, "-")
	if !strings.HasPrefix(second, epoch+"-") || second == first {
		t.Errorf("second msg_id %q, want the epoch of %q and another number", second, first)
	}
	for i, want := range []string{`{"retained":true}`, "\xff\xd8\xff\xe0 jpeg", "3"} {
		if g := string(got[4+i].Payload); g != want {
			t.Errorf("%s payload %q, want it unchanged %q", got[4+i].Topic, g, want)
		}
	}
}

// A disk spool keeps its epoch across restarts, so a message replayed by
// the next run carries the id it had; memory spools get one per Outbox.
func TestMessageIDEpoch(t *testing.T) {
	log, logs := newLogger(t)
	dir := t.TempDir()
	cfg := fastConfig()
	cfg.Dir = dir
	ev := publish.Message{Topic: "ev", Payload: []byte(`{"type":"end"}`), QoS: 1}

	p1 := &attempts{n: 1 << 30}
	o1, stop1 := runOutbox(t, cfg, p1, log)
	o1.Send(ev)
	testenv.Eventually(t, 5*time.Second, "an attempt", func() bool { return len(p1.all()) > 0 })
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	p2 := &attempts{}
	o2, stop2 := runOutbox(t, cfg, p2, log)
	o2.Trigger()
	testenv.Eventually(t, 5*time.Second, "replayed", func() bool { return o2.Stats().Published == 1 })
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	id1, id2 := msgID(t, p1.all()[0].Payload), msgID(t, p2.all()[0].Payload)
	if id1 != id2 || !msgIDRE.MatchString(id1) {
		t.Errorf("msg_id %q before the restart, %q after; want the same", id1, id2)
	}

	// A damaged epoch file is replaced, with a warning.
	path := filepath.Join(dir, EpochFile)
	if err := os.WriteFile(path, []byte("not hex\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o3, err := New(cfg, &attempts{}, log)
	if err != nil {
		t.Fatalf("New with a damaged epoch file: %v", err)
	}
	o3.sp.Close()
	if len(logs.Lines("spool epoch file damaged", EpochFile)) != 1 {
		t.Error("damaged epoch file not logged")
	}
	b, _ := os.ReadFile(path)
	if e := strings.TrimSpace(string(b)); !validEpoch(e) || strings.HasPrefix(id1, e) {
		t.Errorf("epoch file holds %q after repair, want a new epoch", b)
	}

	// Memory spools: one epoch per Outbox.
	m1, err := New(Config{}, &attempts{}, log)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := New(Config{}, &attempts{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if string(m1.idPrefix) == string(m2.idPrefix) {
		t.Errorf("two memory spools share the id prefix %s", m1.idPrefix)
	}
}

func TestWithIDAllocatesNothing(t *testing.T) {
	o, err := New(Config{}, &attempts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := publish.Message{ID: 123456789, Topic: "ev", Payload: []byte(`{"type":"update","before":{},"after":{}}`), QoS: 1}
	var out publish.Message
	out = o.withID(m) // grows the buffer
	if n := testing.AllocsPerRun(100, func() { out = o.withID(m) }); n != 0 {
		t.Errorf("withID allocates %g times, want 0", n)
	}
	if !strings.HasSuffix(msgID(t, out.Payload), "-123456789") {
		t.Errorf("payload %q", out.Payload)
	}
}
