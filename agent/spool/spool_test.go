package spool

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

// testSegmentSize is small so that the shared suite rolls over segments.
const testSegmentSize = 256

type openFunc func(t testing.TB, l Limits, opts ...Option) Spool

type constructor struct {
	name string
	open openFunc
}

func constructors() []constructor {
	return []constructor{
		{"memory", func(t testing.TB, l Limits, opts ...Option) Spool {
			t.Helper()
			s := NewMemory(l, opts...)
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"disk", func(t testing.TB, l Limits, opts ...Option) Spool {
			t.Helper()
			return openTestDisk(t, t.TempDir(), l, testSegmentSize, nil, opts...)
		}},
	}
}

func openTestDisk(t testing.TB, dir string, l Limits, segSize int64, log *slog.Logger, opts ...Option) *Disk {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := OpenDisk(dir, l, log, append([]Option{withSegmentSize(segSize)}, opts...)...)
	if err != nil {
		t.Fatalf("open disk spool: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func msg(topic, payload string) publish.Message {
	return publish.Message{Topic: topic, Payload: []byte(payload), QoS: 1}
}

func add(t testing.TB, s Spool, msgs ...publish.Message) {
	t.Helper()
	if _, err := s.Add(msgs...); err != nil {
		t.Fatalf("add: %v", err)
	}
}

// addN adds payloads "0".."n-1" on topic t, one Add call each.
func addN(t testing.TB, s Spool, n int) {
	t.Helper()
	for i := range n {
		add(t, s, msg("t", fmt.Sprint(i)))
	}
}

func payloads(msgs []publish.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

// drain takes everything left, accepting it, and returns the payloads.
func drain(t testing.TB, s Spool) []string {
	t.Helper()
	tx := s.Begin(1 << 20)
	tx.AcceptAll()
	s.End(tx)
	if n := s.Len(); n != 0 {
		t.Fatalf("Len after drain = %d, want 0", n)
	}
	return payloads(tx.Messages)
}

func wantPayloads(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func TestSuite(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, open openFunc)
	}{
		{"FIFO", testFIFO},
		{"AcceptAll", testAcceptAll},
		{"AcceptSomeKeepRest", testAcceptSomeKeepRest},
		{"KeepAll", testKeepAll},
		{"Reject", testReject},
		{"OneTxAtATime", testOneTxAtATime},
		{"NilAndEmptyTx", testNilAndEmptyTx},
		{"MaxMessages", testMaxMessages},
		{"EvictInFlight", testEvictInFlight},
		{"MaxAge", testMaxAge},
		{"Stats", testStats},
		{"Closed", testClosed},
		{"ConcurrentAdd", testConcurrentAdd},
	}
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, c.open) })
			}
		})
	}
}

func testFIFO(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 3)
	add(t, s, msg("t", "3"), msg("t", "4"), msg("t", "5"))
	if n := s.Len(); n != 6 {
		t.Fatalf("Len = %d, want 6", n)
	}
	tx := s.Begin(4)
	wantPayloads(t, "first batch", payloads(tx.Messages), "0", "1", "2", "3")
	for i := 1; i < len(tx.Messages); i++ {
		if tx.Messages[i].ID <= tx.Messages[i-1].ID {
			t.Fatalf("IDs not increasing: %d then %d", tx.Messages[i-1].ID, tx.Messages[i].ID)
		}
	}
	if m := tx.Messages[0]; m.Topic != "t" || m.QoS != 1 || m.Time.IsZero() {
		t.Fatalf("message = %+v, want topic t, QoS 1 and a time", m)
	}
	tx.AcceptAll()
	s.End(tx)
	wantPayloads(t, "rest", drain(t, s), "4", "5")
}

func testAcceptAll(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 5)
	tx := s.Begin(10)
	if len(tx.Messages) != 5 {
		t.Fatalf("Begin took %d, want 5", len(tx.Messages))
	}
	tx.AcceptAll()
	s.End(tx)
	if n := s.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
	if tx := s.Begin(10); len(tx.Messages) != 0 {
		t.Fatalf("Begin on empty spool took %d", len(tx.Messages))
	}
}

func testAcceptSomeKeepRest(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 6)
	tx := s.Begin(5) // 0..4
	tx.Accept(0, 2)
	tx.Reject(4)
	tx.Accept(99, -1) // ignored
	add(t, s, msg("t", "new1"), msg("t", "new2"))
	if n := s.Len(); n != 8 {
		t.Fatalf("Len during tx = %d, want 8", n)
	}
	s.End(tx)
	wantPayloads(t, "after partial tx", drain(t, s), "1", "3", "5", "new1", "new2")
	st := s.Stats()
	if st.Delivered != 2+5 || st.DroppedRejected != 1 {
		t.Fatalf("stats = %+v, want Delivered 7, DroppedRejected 1", st)
	}
}

func testKeepAll(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 4)
	tx := s.Begin(2)
	s.End(tx) // publisher not connected: keep all
	tx = s.Begin(3)
	wantPayloads(t, "retry", payloads(tx.Messages), "0", "1", "2")
	tx.Accept(0)
	s.End(tx)
	wantPayloads(t, "rest", drain(t, s), "1", "2", "3")
}

func testReject(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 3)
	tx := s.Begin(3)
	tx.Accept(0, 1, 2)
	tx.Reject(0, 1, 2) // last mark wins
	s.End(tx)
	st := s.Stats()
	if st.Len != 0 || st.DroppedRejected != 3 || st.Delivered != 0 {
		t.Fatalf("stats = %+v, want Len 0, DroppedRejected 3, Delivered 0", st)
	}
}

func testOneTxAtATime(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 4)
	tx1 := s.Begin(2)
	tx2 := s.Begin(2)
	if tx2 == nil || len(tx2.Messages) != 0 {
		t.Fatalf("second Begin = %+v, want an empty Tx", tx2)
	}
	tx2.AcceptAll()
	s.End(tx2) // no effect
	if n := s.Len(); n != 4 {
		t.Fatalf("Len = %d, want 4", n)
	}
	tx1.Accept(1)
	s.End(tx1)
	s.End(tx1) // a second End does nothing
	wantPayloads(t, "rest", drain(t, s), "0", "2", "3")
}

func testNilAndEmptyTx(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	var nilTx *Tx
	nilTx.Accept(0)
	nilTx.Reject(0)
	nilTx.AcceptAll()
	s.End(nil)
	tx := s.Begin(10)
	if tx == nil || len(tx.Messages) != 0 {
		t.Fatalf("Begin on empty spool = %+v, want an empty Tx", tx)
	}
	tx.AcceptAll()
	s.End(tx)
	addN(t, s, 1)
	if tx := s.Begin(0); len(tx.Messages) != 0 {
		t.Fatalf("Begin(0) took %d messages", len(tx.Messages))
	}
	wantPayloads(t, "rest", drain(t, s), "0")
}

func testMaxMessages(t *testing.T, open openFunc) {
	s := open(t, Limits{MaxMessages: 3})
	addN(t, s, 2)
	dropped, err := s.Add(msg("t", "2"), msg("t", "3"), msg("t", "4"))
	if err != nil || dropped != 2 {
		t.Fatalf("Add = %d, %v; want 2 dropped", dropped, err)
	}
	if st := s.Stats(); st.Len != 3 || st.DroppedFull != 2 {
		t.Fatalf("stats = %+v, want Len 3, DroppedFull 2", st)
	}
	wantPayloads(t, "kept", drain(t, s), "2", "3", "4")
}

// MaxBytes counts Message.Size in a Memory spool; a Disk spool counts its
// files (TestDiskMaxBytes*).
func TestMemoryMaxBytes(t *testing.T) {
	s := NewMemory(Limits{MaxBytes: 30})
	for i := range 4 {
		dropped, err := s.Add(msg("t", fmt.Sprintf("payload-%d", i))) // 10 bytes each
		want := 0
		if i == 3 {
			want = 1
		}
		if err != nil || dropped != want {
			t.Fatalf("Add #%d = %d, %v; want %d dropped", i, dropped, err, want)
		}
	}
	dropped, err := s.Add(msg("t", "payload-4-longer")) // 17 bytes: drops two
	if err != nil || dropped != 2 {
		t.Fatalf("Add = %d, %v; want 2 dropped", dropped, err)
	}
	if st := s.Stats(); st.Bytes != 27 || st.DroppedFull != 3 {
		t.Fatalf("stats = %+v, want Bytes 27, DroppedFull 3", st)
	}
	wantPayloads(t, "kept", drain(t, s), "payload-3", "payload-4-longer")
}

func testEvictInFlight(t *testing.T, open openFunc) {
	s := open(t, Limits{MaxMessages: 3})
	addN(t, s, 3)
	tx := s.Begin(2) // 0, 1
	dropped, err := s.Add(msg("t", "3"), msg("t", "4"))
	if err != nil || dropped != 2 {
		t.Fatalf("Add during tx = %d, %v; want the 2 in-flight messages dropped", dropped, err)
	}
	if n := s.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	s.End(tx) // keeps nothing: both were dropped
	wantPayloads(t, "kept", drain(t, s), "2", "3", "4")
	if st := s.Stats(); st.DroppedFull != 2 || st.Delivered != 3 {
		t.Fatalf("stats = %+v, want DroppedFull 2, Delivered 3", st)
	}
}

// testMaxAge: a message expires when the spool has held it longer than
// MaxAge, whatever its Time says and whatever the wall clock does.
func testMaxAge(t *testing.T, open openFunc) {
	for _, start := range testDates {
		t.Run(start.Format("2006"), func(t *testing.T) {
			clk := newFakeClock(start)
			s := open(t, Limits{MaxAge: time.Hour}, WithClock(clk))
			m := func(p string, at time.Time) publish.Message { m := msg("t", p); m.Time = at; return m }
			add(t, s, m("past", start.AddDate(-30, 0, 0)), m("future", start.AddDate(50, 0, 0)), m("zero", time.Time{}))
			clk.advance(40 * time.Minute)
			clk.stepWall(-72 * time.Hour) // NTP steps the clock back...
			add(t, s, m("later", clk.Now()))
			clk.stepWall(30 * 24 * time.Hour) // ... and weeks forward
			clk.advance(20 * time.Minute)     // the first three were held 1h: not over
			tx := s.Begin(10)
			wantPayloads(t, "held 1h", payloads(tx.Messages), "past", "future", "zero", "later")
			if got := tx.Messages[2].Time; !got.Equal(start) {
				t.Fatalf("zero Time stamped %v, want the wall clock at Add, %v", got, start)
			}
			s.End(tx) // keep
			clk.advance(time.Nanosecond)
			tx = s.Begin(10)
			wantPayloads(t, "held 1h+1ns", payloads(tx.Messages), "later")
			if st := s.Stats(); st.DroppedAge != 3 || st.Len != 1 {
				t.Fatalf("stats = %+v, want DroppedAge 3, Len 1", st)
			}
			s.End(tx)
			clk.stepWall(-20 * 365 * 24 * time.Hour)
			clk.advance(40*time.Minute - time.Nanosecond) // "later" held exactly 1h
			wantPayloads(t, "later at 1h", drain(t, s), "later")
		})
	}
}

// testDates are wall-clock starts years apart: results must not depend on
// them.
var testDates = []time.Time{
	time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC),
	time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
	time.Date(2071, 6, 1, 0, 0, 0, 0, time.FixedZone("x", 5*3600)),
}

func TestMemoryOversize(t *testing.T) {
	s := NewMemory(Limits{MaxBytes: 20})
	addN(t, s, 1)
	big := msg("cam/1/detections", "0123456789") // 26 bytes
	dropped, err := s.Add(msg("t", "a"), big, msg("t", "b"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add oversize: err = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), `"cam/1/detections"`) || !strings.Contains(err.Error(), "26 bytes") {
		t.Fatalf("error %q does not name the topic and size", err)
	}
	if dropped != 0 {
		t.Fatalf("dropped = %d, want 0: the spool must not be emptied for a message that cannot fit", dropped)
	}
	wantPayloads(t, "kept", drain(t, s), "0", "a", "b")
}

func testStats(t *testing.T, open openFunc) {
	clk := newFakeClock(testDates[0])
	s := open(t, Limits{MaxMessages: 4, MaxAge: time.Hour}, WithClock(clk))
	addN(t, s, 3)
	clk.advance(time.Hour + time.Second)
	add(t, s, msg("t", "a"), msg("t", "b"), msg("t", "c")) // drops "0", "1"
	// Queue: 2 a b c, and "2" was held over an hour.
	tx := s.Begin(3) // drops "2", takes a b c
	wantPayloads(t, "tx", payloads(tx.Messages), "a", "b", "c")
	tx.Accept(0)
	tx.Reject(1)
	s.End(tx)
	want := Stats{Len: 1, Bytes: 2, Added: 6, Delivered: 1, DroppedFull: 2, DroppedAge: 1, DroppedRejected: 1}
	got := s.Stats()
	got.DiskBytes = 0 // checked by the Disk tests
	if got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

func testClosed(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	addN(t, s, 2)
	tx := s.Begin(1)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Add(msg("t", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: err = %v, want ErrClosed", err)
	}
	if tx := s.Begin(10); len(tx.Messages) != 0 {
		t.Fatalf("Begin after Close took %d messages", len(tx.Messages))
	}
	tx.AcceptAll()
	s.End(tx) // no effect, no panic
	_ = s.Stats()
}

func testConcurrentAdd(t *testing.T, open openFunc) {
	s := open(t, Limits{})
	const writers, perWriter = 6, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.Add(msg("t", fmt.Sprintf("%d-%d", w, i))); err != nil {
					t.Errorf("add: %v", err)
					return
				}
			}
		})
	}
	// A concurrent flusher that accepts odd batches and keeps even ones.
	seen := map[string]int{}
	done := make(chan struct{})
	var flusher sync.WaitGroup
	flushOnce := func(n int) bool {
		tx := s.Begin(7)
		if n%2 == 1 {
			tx.AcceptAll()
			for _, m := range tx.Messages {
				seen[string(m.Payload)]++
			}
		}
		s.End(tx)
		return len(tx.Messages) > 0
	}
	flusher.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			default:
			}
			flushOnce(n)
		}
	})
	wg.Wait()
	close(done)
	flusher.Wait()
	for n := 1; flushOnce(n); n += 2 {
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("delivered %d distinct messages, want %d", len(seen), writers*perWriter)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("message %q delivered %d times", p, n)
		}
	}
	if st := s.Stats(); st.Added != writers*perWriter || st.Delivered != writers*perWriter || st.Len != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// count is the number of logged lines that contain every one of subs.
func (b *syncBuffer) count(subs ...string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		all := line != ""
		for _, sub := range subs {
			all = all && strings.Contains(line, sub)
		}
		if all {
			n++
		}
	}
	return n
}

func TestStatsLost(t *testing.T) {
	s := Stats{DroppedFull: 1, DroppedAge: 2, DroppedCorrupt: 4, DroppedRejected: 8, Delivered: 16}
	if got := s.Lost(); got != 7 {
		t.Errorf("Lost() = %d, want 7 (full + age + corrupt, not rejected or delivered)", got)
	}
}
