package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A spool that crashed after its first Add since the last checkpoint
// (one record in a new segment, the checkpoint not updated) continues its
// IDs after that record: a new message never takes an ID already on disk.
func TestDiskIDsContinueAfterCrashWithOneRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	big := strings.Repeat("x", 150) // one record per segment
	add(t, s, msg("t", "a"+big))
	drain(t, s) // the checkpoint says ID 1 left
	add(t, s, msg("t", "b"+big))
	if segs := segFiles(t, dir); len(segs) != 1 || filepath.Base(segs[0]) != segName(2) {
		t.Fatalf("segments %v, want only the one holding b", segs)
	}
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	c := openTestDisk(t, crashed, Limits{}, testSegmentSize, nil)
	add(t, c, msg("t", "c"+big))
	tx := c.Begin(2)
	if len(tx.Messages) != 2 || tx.Messages[0].ID != 2 || tx.Messages[1].ID != 3 {
		t.Fatalf("after the crash: %+v, want b (ID 2) and c (ID 3)", tx.Messages)
	}
	c.End(tx)
	c.Close()
	c = openTestDisk(t, crashed, Limits{}, testSegmentSize, nil)
	wantPayloads(t, "reopened", drain(t, c), "b"+big, "c"+big)
}

// Stats.Bytes of a reopened spool is the Size of the messages it holds,
// DiskBytes the size of its files.
func TestDiskBytesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	m1, m2 := msg("t/1", "first"), msg("topic/2", strings.Repeat("x", 70))
	add(t, s, m1, m2)
	s.Close()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	if st := s.Stats(); st.Len != 2 || st.Bytes != m1.Size()+m2.Size() {
		t.Fatalf("reopened: %+v, want 2 messages of %d bytes", st, m1.Size()+m2.Size())
	}
	wantDiskBytes(t, s, dir)
}

// How long a version 1 record was held is unknown: it counts from the open,
// even when a version 2 checkpoint says the spool clock is far on.
func TestDiskVersion1RecordsAgeFromOpen(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, segName(1)), segmentV1(1, testDates[0], "a", "b"))
	ck := checkpoint{clock: 5 * time.Hour, boot: "another boot"}
	writeFile(t, filepath.Join(dir, ckName), appendCheckpoint(nil, &ck))
	clk := newFakeClock(testDates[1])
	s := openTestDisk(t, dir, Limits{MaxAge: time.Hour}, testSegmentSize, nil, WithClock(clk))
	wantExpiry(t, s, clk, []string{"a", "b"}, []string{"a", "b"}) // 1 ns on
	clk.advance(time.Hour - time.Nanosecond)
	wantExpiry(t, s, clk, []string{"a", "b"}, nil)
}

// A record whose spool clock is out of range (past maxClock) counts from
// the open, like one without a clock: it neither lives forever nor
// moves the clock.
func TestDiskRecordClockOutOfRange(t *testing.T) {
	dir := t.TempDir()
	e := entry{Message: msg("t", "a"), at: maxClock + 1}
	e.ID = 1
	writeFile(t, filepath.Join(dir, segName(1)), appendRecord([]byte(segMagic), &e))
	clk := newFakeClock(testDates[1])
	s := openTestDisk(t, dir, Limits{MaxAge: time.Hour}, testSegmentSize, nil, WithClock(clk))
	clk.advance(time.Hour)
	wantExpiry(t, s, clk, []string{"a"}, nil)
}

// Reopened in the boot its checkpoint names, the spool clock continues as
// Uptime plus the stored offset (the time closed counts), but never starts
// below the latest time on disk.
func TestDiskClockSameBoot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		recAt, want time.Duration
	}{
		{"offset", 10 * time.Minute, 30 * time.Minute},
		{"record later", time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := entry{Message: msg("t", "a"), at: tc.recAt}
			e.ID = 1
			writeFile(t, filepath.Join(dir, segName(1)), appendRecord([]byte(segMagic), &e))
			clk := newFakeClock(testDates[1]) // Uptime 1h
			ck := checkpoint{clock: 5 * time.Minute, offset: -30 * time.Minute, boot: clk.BootID()}
			writeFile(t, filepath.Join(dir, ckName), appendCheckpoint(nil, &ck))
			s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil, WithClock(clk))
			s.mu.Lock()
			got := s.now()
			s.mu.Unlock()
			if got != tc.want {
				t.Fatalf("spool clock %v after the open, want %v", got, tc.want)
			}
		})
	}
}

// Spool-clock values on disk outside 0..maxClock are unknown: the clock
// of a spool reopened after a reboot continues from the latest value in
// range, or from 0.
func TestDiskClockRangeOnOpen(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ckClock, recAt time.Duration
		want           time.Duration
	}{
		{"in range", time.Hour, 2 * time.Hour, 2 * time.Hour},
		{"checkpoint at the limit", maxClock, 0, maxClock},
		{"checkpoint past the limit", maxClock + 1, time.Hour, time.Hour},
		{"record at the limit", time.Hour, maxClock, maxClock},
		{"record past the limit", time.Hour, maxClock + 1, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := entry{Message: msg("t", "a"), at: tc.recAt}
			e.ID = 1
			writeFile(t, filepath.Join(dir, segName(1)), appendRecord([]byte(segMagic), &e))
			ck := checkpoint{clock: tc.ckClock, boot: "an earlier boot"}
			writeFile(t, filepath.Join(dir, ckName), appendCheckpoint(nil, &ck))
			s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil, WithClock(newFakeClock(testDates[1])))
			s.mu.Lock()
			got := s.now()
			s.mu.Unlock()
			if got != tc.want {
				t.Fatalf("spool clock %v after the open, want %v", got, tc.want)
			}
		})
	}
}

// Only regular files named by a 20-digit ID in 1..maxID are segments;
// anything else in the directory is left alone, whatever it holds.
func TestDiskNotSegmentNames(t *testing.T) {
	e := entry{Message: msg("t", "a")}
	e.ID = 1
	seg := appendRecord([]byte(segMagic), &e)
	for _, name := range []string{
		"00000000000000000000.seg",  // ID 0
		"09223372036854775808.seg",  // maxID + 1
		"18446744073709551616.seg",  // past uint64
		"0000000000000000001x.seg",  // not a number
		"0000000000000000001.seg",   // 19 digits
		"000000000000000000001.seg", // 21 digits
		"00000000000000000001.sef",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, name), seg)
			s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
			if n := s.Len(); n != 0 {
				t.Fatalf("%d messages loaded from %s", n, name)
			}
			s.Close()
			if data, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(data, seg) {
				t.Fatalf("%s changed or gone (%v)", name, err)
			}
		})
	}
}

// The highest ID a segment name or record may carry is 1<<63 - 1 (written
// out: a lower maxID would refuse files written before).
func TestDiskSegmentNamedMaxID(t *testing.T) {
	const top = 1<<63 - 1
	dir := t.TempDir()
	e := entry{Message: msg("t", "a")}
	e.ID = top
	writeFile(t, filepath.Join(dir, "09223372036854775807.seg"), appendRecord([]byte(segMagic), &e))
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	tx := s.Begin(1)
	if len(tx.Messages) != 1 || tx.Messages[0].ID != top {
		t.Fatalf("loaded %+v, want the message with ID maxID", tx.Messages)
	}
}

// Reopening an intact version 2 spool reads it and rewrites no segment.
func TestDiskReopenRewritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 3)
	s.Close()
	s, fsys, buf := openFaultyDisk(t, dir)
	if !fsys.called("readfile", segName(1)) {
		t.Fatal("the segment was not read through the file system seam")
	}
	if fsys.called("replace", segName(1)) || buf.count("rewritten") > 0 {
		t.Fatalf("an intact segment was rewritten; log:\n%s", buf)
	}
	wantPayloads(t, "reopened", drain(t, s), seq(0, 3)...)
}

// A damaged segment with a single intact record keeps it.
func TestDiskDamageKeepsSingleIntactRecord(t *testing.T) {
	var lost []string
	s, _, log := damaged(t, 12, func(segs []string) {
		lost = segPayloads(t, segs[0])[1:]
		editFile(t, segs[0], func(b []byte) []byte {
			for _, off := range recordOffsets(t, b)[1:] {
				b[off+recHeader+1] ^= 0x10 // every record but the first
			}
			return b
		})
	})
	wantLost(t, s, log, uint64(len(lost)), true)
	wantPayloads(t, "kept", drain(t, s), without(seq(0, 12), lost...)...)
}

// A version 1 segment rewritten in version 2 is its owner's only, whatever
// its mode was.
func TestDiskVersion1RewriteMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, segName(1))
	if err := os.WriteFile(p, segmentV1(1, testDates[0], "a"), 0o644); err != nil {
		t.Fatal(err)
	}
	openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); !bytes.HasPrefix(data, []byte(segMagic)) {
		t.Fatalf("segment not rewritten in version 2: %q", data)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("rewritten segment mode %v, want -rw-------", m)
	}
}
