package outbox

import (
	"context"
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
	"github.com/edgedet/edgedet/internal/testenv"
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

// The epoch file is private like the spool's own files (0600), and an
// epoch that cannot be written is an error of New naming the step. The
// write is made to fail (even for root) by a spool directory whose path is
// so long that the epoch file's name fits in PATH_MAX but its temporary
// file's (".tmp" longer) does not.
func TestEpochFileWrite(t *testing.T) {
	dir := t.TempDir()
	o, err := New(Config{Dir: dir}, &attempts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.sp.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, EpochFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("epoch file mode %v, want 0600", perm)
	}

	const pathMax = 4096 // Linux, terminating NUL included
	// A directory of want bytes: its epoch file's path has want+12, its
	// temporary file's want+16 = pathMax.
	want := pathMax - len("/"+EpochFile) - len(".tmp")
	dir = t.TempDir()
	for len(dir) < want-200 {
		dir = filepath.Join(dir, strings.Repeat("d", 199))
	}
	dir = filepath.Join(dir, strings.Repeat("e", want-len(dir)-1))
	if n := len(filepath.Join(dir, EpochFile)); len(dir) != want || n >= pathMax || n+len(".tmp") < pathMax {
		t.Fatalf("test setup: directory %d bytes, epoch path %d", len(dir), n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	o, err = New(Config{Dir: dir}, &attempts{}, nil)
	if err == nil {
		o.sp.Close()
		t.Fatal("New with an unwritable epoch file: no error")
	}
	if !strings.Contains(err.Error(), "outbox: write message id epoch") {
		t.Errorf("New with an unwritable epoch file: %v, want it to name the epoch write", err)
	}
}

// An epoch file holding hex of the wrong length is damaged too: it is
// replaced by a new 16-digit epoch.
func TestEpochFileWrongLength(t *testing.T) {
	for _, old := range []string{"abcd", "0123456789abcdef01"} {
		log, logs := newLogger(t)
		dir := t.TempDir()
		path := filepath.Join(dir, EpochFile)
		if err := os.WriteFile(path, []byte(old+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := New(Config{Dir: dir}, &attempts{}, log)
		if err != nil {
			t.Fatal(err)
		}
		o.sp.Close()
		if len(logs.Lines("spool epoch file damaged")) != 1 {
			t.Errorf("epoch %q: not logged as damaged", old)
		}
		b, _ := os.ReadFile(path)
		if e := strings.TrimSpace(string(b)); len(e) != 16 || e == old {
			t.Errorf("epoch %q: file holds %q after repair, want a new 16-digit epoch", old, b)
		}
		if !strings.HasPrefix(string(o.idPrefix), `"msg_id":"`) || strings.Contains(string(o.idPrefix), old) {
			t.Errorf("epoch %q: id prefix %s", old, o.idPrefix)
		}
	}
}

// Only JSON objects get a msg_id: the empty object {} does (with no
// comma), other payloads of two or more bytes are sent unchanged.
func TestWithIDOnlyJSONObjects(t *testing.T) {
	o, err := New(Config{}, &attempts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prefix := string(o.idPrefix)
	for in, want := range map[string]string{
		`{}`:           `{` + prefix + `5"}`,
		` { } `:        ` {` + prefix + `5" } `,
		`{"a":1}`:      `{` + prefix + `5","a":1}`,
		`[1,2]`:        `[1,2]`,
		`hello`:        `hello`,
		`{"a":1`:       `{"a":1`,
		`"a":1}`:       `"a":1}`,
		"\xff\xd8\xff": "\xff\xd8\xff",
		`{`:            `{`,
	} {
		m := publish.Message{ID: 5, Topic: "ev", Payload: []byte(in), QoS: 1}
		if got := string(o.withID(m).Payload); got != want {
			t.Errorf("withID(%q) = %q, want %q", in, got, want)
		}
	}
}

// The final flush runs under a fresh FinalFlushTimeout (5 s) deadline.
// (The publisher measures the time left when it is called, a relative
// time: only a stall of a second between the two would upset it.)
func TestFinalFlushDeadline(t *testing.T) {
	var left []time.Duration
	pub := publisherFunc(func(ctx context.Context, m publish.Message) error {
		dl, ok := ctx.Deadline()
		if !ok {
			left = append(left, -1)
			return nil
		}
		left = append(left, time.Until(dl))
		return nil
	})
	o, err := New(Config{}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Send(publish.Message{Topic: "t", Payload: []byte("x"), QoS: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shutdown wins over the ready flush: only the final flush publishes
	if err := o.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] <= 4*time.Second || left[0] > 5*time.Second {
		t.Errorf("final flush deadline left %v, want one publish with just under 5s", left)
	}
}

// New needs a publisher.
func TestNewNilPublisher(t *testing.T) {
	o, err := New(Config{}, nil, nil)
	if err == nil || o != nil || err.Error() != "outbox: nil publisher" {
		t.Errorf("New(nil publisher) = %v, %v; want nil and \"outbox: nil publisher\"", o, err)
	}
}

// Triggers made while one is still pending coalesce: one flush drains
// everything, so three triggers before Run looks give one flush (plus the
// final one).
func TestTriggersCoalesce(t *testing.T) {
	o, err := New(Config{FlushInterval: cfgtypes.Duration(time.Hour)}, &attempts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Trigger()
	o.Trigger()
	o.Trigger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	// Once no trigger is pending, every one taken has started its flush.
	testenv.Eventually(t, 5*time.Second, "triggers taken", func() bool { return len(o.trigger) == 0 && o.Stats().Flushes > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := o.Stats().Flushes; n != 2 {
		t.Errorf("%d flushes, want 2 (one for the triggers, the final one)", n)
	}
}

// New reports a disk spool it cannot open, and logs (only) a non-empty
// spool left by a previous run, with its size.
func TestNewDiskSpool(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := New(Config{Dir: filepath.Join(file, "spool")}, &attempts{}, nil)
	if err == nil || o != nil || !strings.Contains(err.Error(), "outbox: open spool") {
		t.Fatalf("New(spool dir under a file) = %v, %v; want an open spool error", o, err)
	}

	log, logs := newLogger(t)
	dir := t.TempDir()
	held := func() []string { return logs.Lines("spool holds messages from a previous run") }
	o, err = New(Config{Dir: dir}, &attempts{}, log)
	if err != nil {
		t.Fatal(err)
	}
	o.Send(msgs("t", "p", 0, 1)...) // Run is not running: it stays spooled
	if err := o.sp.Close(); err != nil {
		t.Fatal(err)
	}
	if l := held(); len(l) != 0 {
		t.Fatalf("empty spool logged as holding messages: %q", l)
	}
	o, err = New(Config{Dir: dir}, &attempts{}, log)
	if err != nil {
		t.Fatal(err)
	}
	o.sp.Close()
	if l := held(); len(l) != 1 || !strings.Contains(l[0], "messages=1") {
		t.Errorf("reopened spool logged %q, want one line with messages=1", l)
	}
}

// Send without messages does nothing: it does not even wake Run.
func TestSendNothing(t *testing.T) {
	o, err := New(Config{}, &attempts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Send()
	if len(o.ready) != 0 || o.readyPending.Load() {
		t.Error("an empty Send signalled a flush")
	}
	o.Send(msgs("t", "p", 0, 1)...)
	if len(o.ready) != 1 || o.Stats().Len != 1 {
		t.Errorf("Send of one message: ready %d, spooled %d; want 1, 1", len(o.ready), o.Stats().Len)
	}
}

// Messages Send could not spool are logged by the next flush: how many
// Send calls failed and the last error; then the count starts over.
func TestNotSpooledLogged(t *testing.T) {
	log, logs := newLogger(t)
	o, err := New(Config{MaxBytes: 50}, &attempts{}, log)
	if err != nil {
		t.Fatal(err)
	}
	big := publish.Message{Topic: "t", Payload: make([]byte, 100), QoS: 1}
	o.Send(big)
	o.Send(big)
	o.flush(context.Background(), nil)
	lost := func() []string { return logs.Lines("messages not spooled, lost") }
	if l := lost(); len(l) != 1 || !strings.Contains(l[0], "calls=2 ") || !strings.Contains(l[0], "last_err=") {
		t.Fatalf("logged %q, want one line with calls=2 and the last error", l)
	}
	if s := o.Stats(); s.NotSpooled != 2 {
		t.Errorf("NotSpooled %d, want 2", s.NotSpooled)
	}
	o.flush(context.Background(), nil)
	if l := lost(); len(l) != 1 {
		t.Errorf("logged again without new losses: %q", l)
	}
	o.Send(big)
	o.flush(context.Background(), nil)
	if l := lost(); len(l) != 2 || !strings.Contains(l[1], "calls=1 ") {
		t.Errorf("one more loss logged as %q, want a second line with calls=1", l)
	}
}

// Run may be called only once.
func TestRunTwice(t *testing.T) {
	o, stop := runOutbox(t, Config{FlushInterval: cfgtypes.Duration(time.Hour)}, &attempts{}, nil)
	testenv.Eventually(t, 5*time.Second, "Run started", o.running.Load)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Run(ctx); err == nil || err.Error() != "outbox: Run called more than once" {
		t.Errorf("second Run = %v, want \"outbox: Run called more than once\"", err)
	}
	if err := stop(); err != nil {
		t.Errorf("first Run: %v", err)
	}
}

// At shutdown what is left in the spool is reported: lost from a memory
// spool, kept by a disk spool; nothing is said when nothing is left.
func TestShutdownReportsLeftovers(t *testing.T) {
	down := &flaky{n: 1 << 30, err: publish.ErrNotConnected}
	for _, c := range []struct {
		name string
		dir  string
		pub  publish.Publisher
		send int
		want string // "" for no line
	}{
		{"memory, delivered", "", &attempts{}, 1, ""},
		{"memory, one left", "", down, 1, "undelivered messages lost"},
		{"disk, one left", t.TempDir(), down, 1, "undelivered messages kept in the disk spool"},
	} {
		log, logs := newLogger(t)
		cfg := Config{Dir: c.dir, FlushInterval: cfgtypes.Duration(time.Hour)}
		o, stop := runOutbox(t, cfg, c.pub, log)
		o.Send(msgs("t", "p", 0, c.send)...)
		testenv.Eventually(t, 5*time.Second, "a flush", func() bool { return o.Stats().Flushes > 0 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		lines := logs.Lines("undelivered messages")
		switch {
		case c.want == "" && len(lines) != 0:
			t.Errorf("%s: logged %q, want nothing", c.name, lines)
		case c.want != "" && (len(lines) != 1 || !strings.Contains(lines[0], c.want) || !strings.Contains(lines[0], "messages=1")):
			t.Errorf("%s: logged %q, want one %q line with messages=1", c.name, lines, c.want)
		}
	}
}

// spoolClock makes a fakeClock a spool.Clock: uptime is the time it moved.
type spoolClock struct {
	c     *fakeClock
	start time.Time
}

func (s spoolClock) Now() time.Time         { return s.c.Now() }
func (s spoolClock) Uptime() time.Duration  { return s.c.Now().Sub(s.start) }
func (s spoolClock) BootID() string         { return "outbox-test" }
func newSpoolClock(c *fakeClock) spoolClock { return spoolClock{c, c.Now()} }

// A flush takes what was spooled when it started, counting the messages
// Begin dropped for age: not fewer (earlier age drops do not count), not
// more (a message sent while it publishes waits for the next flush).
func TestFlushCountsAgeDrops(t *testing.T) {
	clk := newFakeClock()
	var o *Outbox
	var got []string
	late := true
	o, err := New(Config{BatchSize: 2}, publisherFunc(func(_ context.Context, m publish.Message) error {
		got = append(got, string(m.Payload))
		if late {
			late = false
			o.Send(publish.Message{Topic: "t", Payload: []byte("late"), QoS: 1})
		}
		return nil
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	o.sp = spool.NewMemory(spool.Limits{MaxMessages: 100, MaxBytes: 1 << 20, MaxAge: time.Minute}, spool.WithClock(newSpoolClock(clk)))

	// One old message, dropped for age by the first Begin, and one fresh.
	o.Send(publish.Message{Topic: "t", Payload: []byte("old"), QoS: 1})
	clk.Add(2 * time.Minute)
	o.Send(publish.Message{Topic: "t", Payload: []byte("fresh"), QoS: 1})
	if !o.flush(context.Background(), nil) {
		t.Fatal("first flush incomplete")
	}
	if strings.Join(got, " ") != "fresh" || o.Stats().DroppedAge != 1 || o.sp.Len() != 1 {
		t.Fatalf("first flush published %q (dropped for age %d, left %d), want fresh, 1 and late left", got, o.Stats().DroppedAge, o.sp.Len())
	}

	// Four more (five spooled): with an earlier age drop on record the
	// next flush still takes all five, in batches of two.
	got = nil
	o.Send(msgs("t", "m", 0, 4)...)
	if !o.flush(context.Background(), nil) {
		t.Fatal("second flush incomplete")
	}
	if strings.Join(got, " ") != "late m-000 m-001 m-002 m-003" || o.sp.Len() != 0 {
		t.Errorf("second flush published %q and left %d, want all five", got, o.sp.Len())
	}
}

// A flush stopped by an outage (not connected, client closed, cancelled)
// is logged quietly at debug level; any other publish error is a warning.
func TestFlushFailureLogLevel(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{publish.ErrNotConnected, "level=DEBUG msg=\"flush stopped, messages kept\""},
		{publish.ErrClosed, "level=DEBUG msg=\"flush stopped, messages kept\""},
		{fmt.Errorf("publish: %w", context.Canceled), "level=DEBUG msg=\"flush stopped, messages kept\""},
		{errors.New("broker said no"), "level=WARN msg=\"flush failed, messages kept for retry\""},
	} {
		log, logs := newLogger(t)
		o, err := New(Config{}, publisherFunc(func(context.Context, publish.Message) error { return c.err }), log)
		if err != nil {
			t.Fatal(err)
		}
		o.Send(msgs("t", "p", 0, 1)...)
		if o.flush(context.Background(), nil) {
			t.Fatalf("%v: flush completed", c.err)
		}
		lines := logs.Lines("flush ")
		if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v: logged %q, want one line with %s", c.err, lines, c.want)
		}
	}
}

// The "spool full" warning carries exactly its attributes, in order.
func TestDropWarningAttributes(t *testing.T) {
	log, logs := newLogger(t)
	o, err := New(Config{MaxMessages: 1}, &attempts{}, log)
	if err != nil {
		t.Fatal(err)
	}
	o.Send(msgs("t", "p", 0, 2)...)
	l := logs.Lines("spool full")
	want := `level=WARN msg="spool full, dropped oldest messages" component=outbox dropped=1 dropped_total=1 limit=spool.max_messages max_messages=1`
	if len(l) != 1 || !strings.Contains(l[0], want) || strings.Contains(l[0], "BADKEY") {
		t.Errorf("logged %q, want one line with %s", l, want)
	}
}
