package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A version 1 record whose checksum is right but whose body does not decode
// (its topic length runs past the body) is damage from there on, not a
// message with an empty topic.
func TestParseSegmentV1UndecodableBodyIsDamage(t *testing.T) {
	seg := segmentV1(1, time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC), "a")
	badAt := len(seg)
	body := binary.LittleEndian.AppendUint64(nil, 2)
	body = binary.LittleEndian.AppendUint64(body, 0)
	body = append(body, 1, 0)              // QoS, flags
	body = binary.AppendUvarint(body, 100) // topic length: more than is left
	body = append(body, "ab"...)
	seg = binary.LittleEndian.AppendUint32(seg, uint32(len(body)))
	seg = binary.LittleEndian.AppendUint32(seg, crc32.Checksum(body, castagnoli))
	seg = append(seg, body...)

	sc := parseSegmentV1(seg)
	if len(sc.recs) != 1 || sc.recs[0].ID != 1 {
		t.Fatalf("records %+v, want only ID 1", sc.recs)
	}
	if len(sc.damage) != 1 {
		t.Fatalf("damage %+v, want one range", sc.damage)
	}
	if d := sc.damage[0]; d.off != badAt || d.end != len(seg) || !strings.Contains(d.cause, "topic length") {
		t.Errorf("damage %+v, want [%d, %d) for the topic length", d, badAt, len(seg))
	}
}

// An index equal to the number of messages is out of range like any other:
// Accept and Reject ignore it, and the messages stay.
func TestTxIndexAtLength(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{})
			addN(t, s, 2)
			tx := s.Begin(10)
			tx.Accept(2)
			tx.Reject(2)
			s.End(tx)
			if st := s.Stats(); st.Delivered != 0 || st.DroppedRejected != 0 {
				t.Errorf("stats %+v after marking index 2 of 2 messages, want nothing delivered or rejected", st)
			}
			wantPayloads(t, "kept", drain(t, s), "0", "1")
		})
	}
}

// Add after Close drops nothing (it adds nothing either).
func TestAddAfterCloseDropsNothing(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{MaxMessages: 1})
			addN(t, s, 1)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if dropped, err := s.Add(msg("t", "x"), msg("t", "y")); dropped != 0 || !errors.Is(err, ErrClosed) {
				t.Errorf("Add after Close = %d, %v; want 0, ErrClosed", dropped, err)
			}
		})
	}
}

// An Add whose every message is too large, on a spool that never held
// anything, refuses them all and changes nothing; the next message that
// fits is added as usual.
func TestAddOnlyTooLarge(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{MaxBytes: 4096})
			big := msg("t", strings.Repeat("x", 8192))
			dropped, err := s.Add(big, big)
			if dropped != 0 || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Add of two oversize messages = %d, %v; want 0, ErrTooLarge", dropped, err)
			}
			if st := s.Stats(); st.Len != 0 || st.Added != 0 || st.Lost() != 0 {
				t.Fatalf("stats %+v after refusing everything, want an empty spool", st)
			}
			add(t, s, msg("t", "fits"))
			wantPayloads(t, "kept", drain(t, s), "fits")
		})
	}
}

// A message that passes the size check for an empty spool but cannot be
// written, because the checkpoint has grown (acknowledgements out of order
// keep one range each) and even deleting every segment would not make
// room, is refused with ErrTooLarge and is not held: the spool keeps
// exactly what it had.
func TestDiskAddThatCannotBeWrittenIsNotHeld(t *testing.T) {
	const limit = 64 << 10
	clk := newFakeClock(testDates[1])
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, 0, nil, WithClock(clk))
	addN(t, s, 41)
	tx := s.Begin(41)
	for i := 1; i < 41; i += 2 { // every other message from the second: 20 ranges
		tx.Accept(i)
	}
	s.End(tx)
	before := s.Stats()

	// Fits an empty spool with a one-range checkpoint, 8 bytes to spare;
	// the 20 ranges take 2*20*16 bytes more than that.
	fixed := recordBytes(1, 1) + int64(segHeader) + 2*checkpointSize(clk.BootID(), 1)
	big := msg("t", strings.Repeat("b", int(limit-8-fixed)))
	if err := s.tooLarge(big.Topic, big.Size()); err != nil {
		t.Fatalf("test setup: the message should pass the size check: %v", err)
	}
	dropped, err := s.Add(big)
	if !errors.Is(err, ErrTooLarge) || dropped != 0 {
		t.Fatalf("Add = %d, %v; want 0 dropped and ErrTooLarge", dropped, err)
	}
	if st := s.Stats(); st.Len != before.Len || st.Added != before.Added || st.Bytes != before.Bytes {
		t.Fatalf("stats %+v after the refused Add, want Len, Added and Bytes as before: %+v", st, before)
	}
	// With an older message in the same Add, that one is first dropped
	// for room (added, and counted in DroppedFull), as in any batch over
	// the limit; the counters still balance.
	if _, err := s.Add(msg("t", "older"), big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add of a small and the large message: %v, want ErrTooLarge", err)
	}
	st := s.Stats()
	if st.Len != before.Len || st.Added != before.Added+1 || st.DroppedFull != before.DroppedFull+1 {
		t.Fatalf("stats %+v, want Len as before, one more added and dropped full than %+v", st, before)
	}
	if held := st.Added - st.Delivered - st.DroppedRejected - st.Lost(); held != uint64(st.Len) {
		t.Fatalf("stats %+v: added minus gone is %d, but %d are held", st, held, st.Len)
	}
	// Refused Adds, however many, leave the held messages on disk.
	for range 25 {
		if _, err := s.Add(big); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Add of the large message again: %v, want ErrTooLarge", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestDisk(t, dir, Limits{MaxBytes: limit}, 0, nil, WithClock(clk))
	got := drain(t, s)
	if len(got) != before.Len || got[len(got)-1] != "40" {
		t.Fatalf("kept %q after reopening, want the %d messages held before", got, before.Len)
	}
}

// Acknowledgements in ID order fold into the checkpoint's prefix, so the
// checkpoint stays its minimum size whatever the history: after
// everything was delivered it holds no ranges.
func TestDiskCheckpointFoldsIntoPrefix(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 0, nil)
	for range 3 {
		addN(t, s, 2)
		drain(t, s)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ckName))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := parseCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if ck.prefix != 6 || ck.last != 6 || len(ck.acked) != 0 {
		t.Errorf("checkpoint prefix %d, last %d, ranges %v; want 6, 6 and none", ck.prefix, ck.last, ck.acked)
	}
}

// MaxBytes 1 is a limit like any other: a Memory spool then refuses a
// two-byte message, holds one one-byte message and drops the older one
// for the next.
func TestMemoryMaxBytesOne(t *testing.T) {
	s := NewMemory(Limits{MaxBytes: 1})
	if _, err := s.Add(msg("t", "x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("two-byte message: %v, want ErrTooLarge", err)
	}
	add(t, s, msg("a", ""))
	if dropped, err := s.Add(msg("b", "")); dropped != 1 || err != nil {
		t.Fatalf("second one-byte Add = %d, %v; want 1 dropped", dropped, err)
	}
	if st := s.Stats(); st.Len != 1 || st.Bytes != 1 || st.DroppedFull != 1 {
		t.Fatalf("stats %+v, want one message of one byte held and one dropped", st)
	}
}

// MaxMessages 1 holds one message: each Add drops the previous one.
func TestMaxMessagesOne(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{MaxMessages: 1})
			add(t, s, msg("t", "0"))
			if dropped, err := s.Add(msg("t", "1")); dropped != 1 || err != nil {
				t.Fatalf("second Add = %d, %v; want 1 dropped", dropped, err)
			}
			wantPayloads(t, "kept", drain(t, s), "1")
		})
	}
}

// An Add that must drop more than the open transaction holds drops the
// whole transaction, then the oldest queued messages; the byte count
// follows, and End of that transaction changes nothing.
func TestEvictWholeTransactionAndMore(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{MaxMessages: 2})
			addN(t, s, 2)
			tx := s.Begin(2)
			dropped, err := s.Add(msg("t", "a"), msg("t", "b"), msg("t", "c"))
			if err != nil || dropped != 3 {
				t.Fatalf("Add during tx = %d, %v; want 3 dropped (0, 1 in flight, then a)", dropped, err)
			}
			if st := s.Stats(); st.Len != 2 || st.Bytes != 4 || st.DroppedFull != 3 {
				t.Fatalf("stats %+v, want b and c held (4 bytes), 3 dropped", st)
			}
			tx.AcceptAll()
			s.End(tx)
			if st := s.Stats(); st.Delivered != 0 || st.Len != 2 {
				t.Fatalf("stats %+v after End of the evicted transaction, want nothing delivered", st)
			}
			wantPayloads(t, "kept", drain(t, s), "b", "c")
		})
	}
}

// When making room for a message deletes every older segment, the
// checkpoint written then must not cover the message being written: it is
// replayed after a restart (at least once, never lost).
func TestDiskMakeRoomKeepsMessageBeingWritten(t *testing.T) {
	dir := t.TempDir()
	const limit = 64 << 10
	l := Limits{MaxBytes: limit}
	s := openTestDisk(t, dir, l, 0, nil)
	payload := strings.Repeat("p", limit/2)
	add(t, s, msg("t", "a"+payload))
	if dropped, err := s.Add(msg("t", "b"+payload)); dropped != 1 || err != nil {
		t.Fatalf("second Add = %d, %v; want a dropped to make room", dropped, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestDisk(t, dir, l, 0, nil)
	got := drain(t, s)
	if len(got) != 1 || got[0][0] != 'b' {
		t.Fatalf("after reopen %d messages, want b alone", len(got))
	}
}

// Acknowledgements that reach the disk log nothing.
func TestDiskAcknowledgementsLogNothing(t *testing.T) {
	log, buf := captureLog()
	s := openTestDisk(t, t.TempDir(), Limits{MaxMessages: 2}, testSegmentSize, log)
	addN(t, s, 3) // drops 0
	tx := s.Begin(1)
	tx.Accept(0)
	s.End(tx)
	drain(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); out != "" {
		t.Errorf("log:\n%s\nwant nothing", out)
	}
}

// MaxAge of 1ns is a limit like any other: a message held 2ns expires.
func TestMaxAgeOneNanosecond(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock(testDates[0])
			s := c.open(t, Limits{MaxAge: time.Nanosecond}, WithClock(clk))
			addN(t, s, 1)
			clk.advance(2 * time.Nanosecond)
			if tx := s.Begin(10); len(tx.Messages) != 0 {
				t.Fatalf("Begin took %q, want it expired", payloads(tx.Messages))
			}
			if st := s.Stats(); st.DroppedAge != 1 || st.Len != 0 {
				t.Fatalf("stats %+v, want one message dropped for age", st)
			}
		})
	}
}

// A Begin that finds nothing opens no transaction: the next Begin takes
// what was added since, without an End in between.
func TestEmptyBeginOpensNoTransaction(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{})
			if tx := s.Begin(10); len(tx.Messages) != 0 {
				t.Fatalf("Begin on an empty spool took %d messages", len(tx.Messages))
			}
			addN(t, s, 1)
			tx := s.Begin(10)
			wantPayloads(t, "second Begin", payloads(tx.Messages), "0")
			tx.AcceptAll()
			s.End(tx)
		})
	}
}

// Close with a transaction open keeps its messages for the next OpenDisk
// (Spool.Close): the last checkpoint must not count them as gone. Found by
// mutation testing; the checkpoint used to be written after the
// transaction was dropped, and the next open lost its messages.
func TestDiskCloseKeepsOpenTransaction(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 4)
	tx := s.Begin(2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tx.AcceptAll()
	s.End(tx) // after Close: no effect
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	wantPayloads(t, "after reopen", drain(t, s), "0", "1", "2", "3")
}

// A flush that delivers nothing (the broker is down: every message kept)
// writes nothing to disk: no checkpoint per Begin and End, which would
// wear an SD card at every flush interval for as long as the outage lasts.
// The checkpoint records the spool clock, so a rewrite would change it.
func TestDiskKeptTransactionWritesNothing(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock(testDates[0])
	s := openTestDisk(t, dir, Limits{MaxAge: time.Hour}, testSegmentSize, nil, WithClock(clk))
	addN(t, s, 3)
	ck := filepath.Join(dir, ckName)
	before, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		clk.advance(time.Minute)
		s.End(s.Begin(10))
	}
	after, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the checkpoint was rewritten by transactions that removed nothing")
	}
	wantPayloads(t, "kept", drain(t, s), "0", "1", "2")
}

// The lock file, like every spool file, is readable by its owner only.
func TestDiskLockFileMode(t *testing.T) {
	dir := t.TempDir()
	openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	fi, err := os.Stat(filepath.Join(dir, lockName))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("lock file mode %v, want -rw-------", m)
	}
}
