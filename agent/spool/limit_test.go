package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exactSpool leaves in a new directory a closed spool of six messages,
// two per segment, and returns the directory and the MaxBytes its files
// take exactly: the segments and room for the checkpoint (kept twice,
// with one range more).
func exactSpool(t *testing.T, clk Clock) (string, int64) {
	t.Helper()
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil, WithClock(clk))
	for i := range 6 {
		add(t, s, msg("t", fmt.Sprint(i, strings.Repeat("p", 50))))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir)
	if len(segs) != 3 {
		t.Fatalf("segments %v, want three of two messages", segs)
	}
	var n int64
	for _, f := range segs {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return dir, n + 2*checkpointSize(clk.BootID(), 1)
}

// MaxBytes is inclusive: a spool whose files take exactly MaxBytes keeps
// every message when reopened; one byte less drops the oldest segment.
func TestDiskExactlyAtMaxBytes(t *testing.T) {
	clk := newFakeClock(testDates[1])
	dir, limit := exactSpool(t, clk)
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, testSegmentSize, nil, WithClock(clk))
	if st := s.Stats(); st.Len != 6 || st.DroppedFull != 0 {
		t.Fatalf("at exactly MaxBytes: %+v, want all 6 messages kept", st)
	}
	s.Close()
	s = openTestDisk(t, dir, Limits{MaxBytes: limit - 1}, testSegmentSize, nil, WithClock(clk))
	if st := s.Stats(); st.Len != 4 || st.DroppedFull != 2 {
		t.Fatalf("one byte under: %+v, want the oldest segment's 2 messages dropped", st)
	}
	wantPayloads(t, "kept", payloads(s.Begin(1).Messages), "2"+strings.Repeat("p", 50))
}

// A checkpoint that grows (an acknowledgement out of order adds a range)
// can push the files over MaxBytes: the oldest segment then goes, and a
// failure to delete it is reported.
func TestDiskCheckpointGrowthMakesRoom(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("remove fails=", fail), func(t *testing.T) {
			clk := newFakeClock(testDates[1])
			dir, limit := exactSpool(t, clk)
			fsys := newFaultFS()
			log, buf := captureLog()
			s, err := openFaulty(dir, Limits{MaxBytes: limit}, fsys, log, WithClock(clk))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if fail {
				fsys.failOn("remove", segName(1))
			}
			tx := s.Begin(6)
			tx.Accept(3) // the fourth, ID 4: the second segment still holds ID 3
			s.End(tx)
			if st := s.Stats(); st.Len != 3 || st.DroppedFull != 2 || st.Delivered != 1 {
				t.Fatalf("after the acknowledgement: %+v, want the oldest 2 dropped, 1 delivered, 3 held", st)
			}
			warned := buf.count("level=WARN", segName(1), "injected fault") == 1
			if warned != fail {
				t.Fatalf("warned about the segment: %v, want %v; log:\n%s", warned, fail, buf)
			}
			if !fail {
				if got := dirBytes(t, dir); got > limit {
					t.Fatalf("%d bytes in the directory, over %d", got, limit)
				}
				wantDiskBytes(t, s, dir)
			}
		})
	}
}

// A segment size below one record puts each message in a segment of its
// own.
func TestDiskTinySegments(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1, nil)
	addN(t, s, 3)
	if got := segFiles(t, dir); len(got) != 3 {
		t.Fatalf("segments %v, want one per message", got)
	}
}

// The directories a spool creates, like its files, are its owner's only.
func TestDiskDirectoryModes(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "spool")
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 3)
	s.Close()
	editFile(t, filepath.Join(dir, segName(1)), func(b []byte) []byte {
		b[len(b)-1] ^= 0xff
		return b
	})
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	for _, p := range []string{filepath.Join(parent, "a"), dir, filepath.Join(dir, corruptDir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("%s: mode %v, want drwx------", p, m)
		}
	}
	add(t, s, msg("t", "new")) // in a new segment, ID 4
	for _, p := range []string{filepath.Join(dir, segName(1)), filepath.Join(dir, segName(4)), filepath.Join(dir, ckName), filepath.Join(dir, corruptDir, segName(1))} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", p, m)
		}
	}
}

// Reopened under a smaller MaxBytes, a spool drops its oldest segment; if
// the checkpoint recording that cannot be written, OpenDisk fails, and
// the next open drops the same messages, no more.
func TestDiskOpenTrimFault(t *testing.T) {
	clk := newFakeClock(testDates[1])
	dir, limit := exactSpool(t, clk)
	l := Limits{MaxBytes: limit - 1} // the files, not the messages, are over
	fsys := newFaultFS()
	fsys.failAfter("replace", ckName, 0, 1)
	if s, err := openFaulty(dir, l, fsys, nil, WithClock(clk)); err == nil {
		s.Close()
		t.Fatal("OpenDisk succeeded with the checkpoint failing")
	} else {
		wantFault(t, err, dir, ckName)
	}
	s, err := openFaulty(dir, l, fsys, nil, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Len != 4 || st.DroppedFull != 2 {
		t.Fatalf("reopened: %+v, want the oldest segment's 2 messages dropped", st)
	}
}

// A segment takes records up to exactly the segment size.
func TestDiskSegmentFilledExactly(t *testing.T) {
	m := msg("t", "payload")
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, int64(segHeader)+2*recordSize(&m), nil)
	add(t, s, m)
	add(t, s, m)
	if got := segFiles(t, dir); len(got) != 1 {
		t.Fatalf("segments %v, want one holding both records", got)
	}
	add(t, s, m)
	if got := segFiles(t, dir); len(got) != 2 {
		t.Fatalf("segments %v, want a second one for the third record", got)
	}
}

// A Disk spool whose MaxBytes cannot hold even an empty spool refuses
// every message as too large.
func TestDiskMaxBytesOne(t *testing.T) {
	s := openTestDisk(t, t.TempDir(), Limits{MaxBytes: 1}, testSegmentSize, nil)
	if _, err := s.Add(msg("", "")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add = %v, want ErrTooLarge", err)
	}
	if st := s.Stats(); st.Added != 0 || st.Len != 0 {
		t.Fatalf("stats %+v, want nothing added", st)
	}
}

// A message that exactly fills an empty spool (its record, the segment
// header and room for the checkpoint twice) is taken, dropping the older
// ones; a byte more and it is refused as too large, naming its topic, and
// the spool keeps what it had.
func TestDiskTooLargeBoundary(t *testing.T) {
	const limit = 4096
	clk := newFakeClock(testDates[1])
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, 0, nil, WithClock(clk))
	add(t, s, msg("t", "old"))
	const topic = "cam/1/snapshot"
	n := limit - recordBytes(len(topic), int64(len(topic))) - int64(segHeader) - 2*checkpointSize(clk.BootID(), 1)
	exact := msg(topic, strings.Repeat("x", int(n)))
	if got := recordSize(&exact) + int64(segHeader) + 2*checkpointSize(clk.BootID(), 1); got != limit {
		t.Fatalf("test setup: the message takes %d bytes, want %d", got, limit)
	}
	over := msg(topic, strings.Repeat("x", int(n)+1))
	if _, err := s.Add(over); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), topic) {
		t.Fatalf("Add of a message a byte too large: %v, want ErrTooLarge naming %s", err, topic)
	}
	if st := s.Stats(); st.Len != 1 || st.Added != 1 {
		t.Fatalf("after the refused Add: %+v, want the old message alone", st)
	}
	if dropped, err := s.Add(exact); err != nil || dropped != 1 {
		t.Fatalf("Add of a message filling the spool = %d, %v; want the old one dropped", dropped, err)
	}
	if got := dirBytes(t, dir); got > limit {
		t.Fatalf("%d bytes in the directory, over %d", got, limit)
	}
	tx := s.Begin(2)
	if len(tx.Messages) != 1 || tx.Messages[0].ID != 2 {
		t.Fatalf("held %+v, want the exact message with ID 2", tx.Messages)
	}
}

// An Add whose batch does not fit even an empty spool drops its own
// oldest message and every older one, even one small enough to stay
// beside the rest of the batch: the spool never keeps a message while
// dropping a newer one.
func TestDiskBatchOverLimitDropsAllOlder(t *testing.T) {
	const limit = 4096
	clk := newFakeClock(testDates[1])
	s := openTestDisk(t, t.TempDir(), Limits{MaxBytes: limit}, 0, nil, WithClock(clk))
	old := msg("t", "old")
	add(t, s, old)
	room := limit - int64(segHeader) - 2*checkpointSize(clk.BootID(), 1)
	a := msg("t", strings.Repeat("a", 60))
	// big fits beside old even with the checkpoint grown by a range, but
	// not beside a.
	big := msg("t", "")
	big.Payload = []byte(strings.Repeat("b", int(room-recordSize(&old)-2*ckRange-recordSize(&big)-10)))
	if recordSize(&a)+recordSize(&big) <= room {
		t.Fatalf("test setup: a and big fit together")
	}
	dropped, err := s.Add(a, big)
	if err != nil || dropped != 2 {
		t.Fatalf("Add = %d, %v; want old and a dropped", dropped, err)
	}
	tx := s.Begin(3)
	if len(tx.Messages) != 1 || len(tx.Messages[0].Payload) != len(big.Payload) {
		t.Fatalf("held %d messages, want big alone", len(tx.Messages))
	}
}

// An Add that brings the files to exactly MaxBytes (into the open segment:
// no new header) drops nothing; a new segment's header counts.
func TestDiskAddExactlyToMaxBytes(t *testing.T) {
	clk := newFakeClock(testDates[1])
	m1, m2 := msg("t", "first"), msg("t", strings.Repeat("2", 40))
	limit := int64(segHeader) + recordSize(&m1) + recordSize(&m2) + 2*checkpointSize(clk.BootID(), 1)
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, 1<<20, nil, WithClock(clk))
	add(t, s, m1)
	if dropped, err := s.Add(m2); err != nil || dropped != 0 {
		t.Fatalf("Add to exactly MaxBytes = %d, %v; want nothing dropped", dropped, err)
	}
	wantDiskBytes(t, s, dir)
	s.Close()

	// The same two messages in two segments need a header more.
	s = openTestDisk(t, t.TempDir(), Limits{MaxBytes: limit}, int64(segHeader)+recordSize(&m1), nil, WithClock(clk))
	add(t, s, m1)
	if dropped, err := s.Add(m2); err != nil || dropped != 1 {
		t.Fatalf("Add needing a new segment = %d, %v; want the first dropped", dropped, err)
	}
}

// Reopened with a MaxBytes below the size of an empty spool, a spool
// drops every message, even ones whose Size fits.
func TestDiskReopenBelowEmptySize(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	add(t, s, msg("", "x")) // Size 1
	s.Close()
	s = openTestDisk(t, dir, Limits{MaxBytes: 1}, testSegmentSize, nil)
	if st := s.Stats(); st.Len != 0 || st.DroppedFull != 1 {
		t.Fatalf("reopened with MaxBytes 1: %+v, want the message dropped", st)
	}
	if got := segFiles(t, dir); len(got) != 0 {
		t.Fatalf("segments %v left", got)
	}
}

// Making room deletes the open segment when all its messages are gone,
// dropping none.
func TestDiskMakeRoomDeletesDeadOpenSegment(t *testing.T) {
	clk := newFakeClock(testDates[1])
	big := msg("t", strings.Repeat("b", 3000))
	limit := 2*recordSize(&big) + int64(segHeader) + 2*checkpointSize(clk.BootID(), 1) - 1 // one big fits, not two
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, 1<<20, nil, WithClock(clk))
	add(t, s, big)
	drain(t, s) // the open segment is dead now
	if dropped, err := s.Add(big); err != nil || dropped != 0 {
		t.Fatalf("Add = %d, %v; want room made without dropping anything", dropped, err)
	}
	if st := s.Stats(); st.DroppedFull != 0 || st.Len != 1 {
		t.Fatalf("stats %+v, want the new message alone and nothing dropped", st)
	}
	if got := segFiles(t, dir); len(got) != 1 || filepath.Base(got[0]) != segName(2) {
		t.Fatalf("segments %v, want the new one alone", got)
	}
	wantDiskBytes(t, s, dir)
}

// When making room deletes older segments only, the message goes on into
// the open segment: no new segment (and header) for it.
func TestDiskMakeRoomKeepsOpenSegment(t *testing.T) {
	clk := newFakeClock(testDates[1])
	m1 := msg("t", strings.Repeat("1", 100))
	m2 := msg("t", strings.Repeat("2", 20))
	m3 := msg("t", strings.Repeat("3", 50))
	r1, r2, r3 := recordSize(&m1), recordSize(&m2), recordSize(&m3)
	h, c := int64(segHeader), 2*checkpointSize(clk.BootID(), 1)
	segSize := h + r2 + r3          // m2 and m3 share a segment, m1 and m2 do not
	limit := 2*h + r1 + r2 + c + 10 // m1 and m2 fit, m3 only without m1
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, segSize, nil, WithClock(clk))
	add(t, s, m1)
	add(t, s, m2)
	if got := segFiles(t, dir); len(got) != 2 {
		t.Fatalf("test setup: segments %v, want two", got)
	}
	if dropped, err := s.Add(m3); err != nil || dropped != 1 {
		t.Fatalf("Add = %d, %v; want m1 dropped", dropped, err)
	}
	if got := segFiles(t, dir); len(got) != 1 || filepath.Base(got[0]) != segName(2) {
		t.Fatalf("segments %v, want m2's alone, now holding m3 too", got)
	}
	wantPayloads(t, "held", payloads(s.Begin(2).Messages), string(m2.Payload), string(m3.Payload))
}

// After a reopen no segment is open for appending: the first Add needs a
// new segment, and its header counts against MaxBytes.
func TestDiskFirstAddAfterReopenCountsHeader(t *testing.T) {
	clk := newFakeClock(testDates[1])
	m1, m2 := msg("t", "first"), msg("t", "second")
	h, c := int64(segHeader), 2*checkpointSize(clk.BootID(), 1)
	limit := h + recordSize(&m1) + c + h + recordSize(&m2) - 1 // a header short
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{MaxBytes: limit}, 1<<20, nil, WithClock(clk))
	add(t, s, m1)
	s.Close()
	s = openTestDisk(t, dir, Limits{MaxBytes: limit}, 1<<20, nil, WithClock(clk))
	if dropped, err := s.Add(m2); err != nil || dropped != 1 {
		t.Fatalf("Add = %d, %v; want the first message dropped for the new segment's header", dropped, err)
	}
}
