package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

const day = 24 * time.Hour

// reopenDisk closes s (unless crash) and opens dir again with clk.
func reopenDisk(t *testing.T, s *Disk, dir string, l Limits, clk Clock, crash bool) *Disk {
	t.Helper()
	if crash {
		// As if the process died now: a copy of the files, no Close.
		crashed := t.TempDir()
		copyDir(t, dir, crashed)
		dir = crashed
	} else if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
}

// wantHeld checks which messages survive when the spool is asked for them
// now and 1 ns later: those held exactly MaxAge stay, then go.
func wantExpiry(t *testing.T, s *Disk, clk *fakeClock, atLimit []string, after []string) {
	t.Helper()
	tx := s.Begin(100)
	wantPayloads(t, "at the age limit", payloads(tx.Messages), atLimit...)
	s.End(tx)
	clk.advance(time.Nanosecond)
	tx = s.Begin(100)
	wantPayloads(t, "past the age limit", payloads(tx.Messages), after...)
	s.End(tx)
}

// Restarted in the same boot, the time the spool was closed counts: the
// boot clock measured it. Wall-clock steps never count.
func TestDiskAgeAcrossRestartSameBoot(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			for _, start := range testDates {
				clk := newFakeClock(start)
				dir := t.TempDir()
				l := Limits{MaxAge: 10 * time.Hour}
				s := openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
				add(t, s, msg("t", "a"))
				clk.advance(3 * time.Hour)
				clk.stepWall(-40 * day)
				add(t, s, msg("t", "b"))
				clk.advance(5 * time.Hour) // closed for 5 h (or crashed)
				clk.stepWall(400 * day)
				s = reopenDisk(t, s, dir, l, clk, crash)
				clk.advance(2 * time.Hour) // a held 10 h, b 7 h
				wantExpiry(t, s, clk, []string{"a", "b"}, []string{"b"})
			}
		})
	}
}

// After a reboot the time the spool was closed is unknown and counts as
// zero; the time held before is kept (up to Close, or after a crash up to
// the last write). This is a Raspberry Pi without a real-time clock: it
// boots in 1970 and NTP steps the clock 56 years on.
func TestDiskAgeAcrossReboot(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			heldBefore := 4 * time.Hour // "0".."9" when closed
			if crash {
				heldBefore = 3 * time.Hour // when "late" was written
			}
			clk := newFakeClock(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
			dir := t.TempDir()
			l := Limits{MaxAge: 10 * time.Hour}
			s := openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
			addN(t, s, 10)
			clk.advance(3 * time.Hour)
			add(t, s, msg("t", "late"))
			clk.advance(time.Hour)
			if crash {
				crashed := t.TempDir()
				copyDir(t, dir, crashed)
				dir = crashed
			} else if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			clk.reboot("boot-2", 20*time.Second, time.Unix(0, 0).UTC())
			s = openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
			clk.stepWall(56 * 365 * day) // NTP sync
			if n := s.Len(); n != 11 {
				t.Fatalf("Len after reboot = %d, want all 11", n)
			}
			clk.advance(10*time.Hour - heldBefore)
			want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "late"}
			wantExpiry(t, s, clk, want, []string{"late"})
			if st := s.Stats(); st.DroppedAge != 10 {
				t.Fatalf("DroppedAge = %d, want 10", st.DroppedAge)
			}
		})
	}
}

// Without a boot ID (not Linux, or /proc unreadable) a restart cannot tell
// how long it was closed: that time counts as zero, even in the same boot.
func TestDiskAgeUnknownBoot(t *testing.T) {
	clk := newFakeClock(testDates[1])
	clk.boot = ""
	dir := t.TempDir()
	l := Limits{MaxAge: time.Hour}
	s := openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
	add(t, s, msg("t", "a"))
	clk.advance(20 * time.Minute)
	s.Close()
	clk.advance(5 * time.Hour)
	s = openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
	clk.advance(40 * time.Minute)
	wantExpiry(t, s, clk, []string{"a"}, nil)
}

// Several restarts in a row keep adding up held time; a reboot in between
// only loses its own downtime.
func TestDiskAgeManyRestarts(t *testing.T) {
	clk := newFakeClock(testDates[2])
	dir := t.TempDir()
	l := Limits{MaxAge: 10 * time.Hour}
	s := openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
	add(t, s, msg("t", "a"))
	for i := range 4 { // 4 × (1 h open + 1 h closed) in the same boot
		clk.advance(time.Hour)
		s.Close()
		clk.advance(time.Hour)
		clk.stepWall(time.Duration(i-2) * 300 * day)
		s = openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
	}
	clk.reboot("boot-9", time.Minute, testDates[0]) // downtime unknown
	s.Close()
	s = openTestDisk(t, dir, l, testSegmentSize, nil, WithClock(clk))
	clk.advance(2 * time.Hour) // 8 h + 2 h
	wantExpiry(t, s, clk, []string{"a"}, nil)
}

// appendRecordV1 writes a record the way version 1 did.
func appendRecordV1(buf []byte, m *publish.Message) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint64(body, m.ID)
	body = binary.LittleEndian.AppendUint64(body, uint64(m.Time.UnixNano()))
	var flags byte
	if m.Retained {
		flags = 1
	}
	body = append(body, m.QoS, flags)
	body = binary.AppendUvarint(body, uint64(len(m.Topic)))
	body = append(body, m.Topic...)
	body = append(body, m.Payload...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(body)))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(body, castagnoli))
	return append(buf, body...)
}

// segmentV1 returns a version 1 segment holding payloads as IDs first...
func segmentV1(first uint64, stamp time.Time, payloads ...string) []byte {
	buf := []byte(segMagicV1)
	for i, p := range payloads {
		m := publish.Message{ID: first + uint64(i), Topic: "old/t", Payload: []byte(p), QoS: 1, Retained: i == 0, Time: stamp}
		buf = appendRecordV1(buf, &m)
	}
	return buf
}

func checkpointV1(prefix uint64, ids ...uint64) []byte {
	buf := []byte(ckMagicV1)
	buf = binary.LittleEndian.AppendUint64(buf, prefix)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ids)))
	for _, id := range ids {
		buf = binary.LittleEndian.AppendUint64(buf, id)
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Files written by version 1 still load. They do not say how long their
// messages were held: that counts from the open. Their wall-clock stamps
// (years ago here) are kept as data and do not age them.
func TestDiskOpensVersion1Files(t *testing.T) {
	dir := t.TempDir()
	stamp := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	writeFile(t, filepath.Join(dir, fmt.Sprintf("%020d.seg", 1)), segmentV1(1, stamp, "a", "b", "c", "d"))
	writeFile(t, filepath.Join(dir, fmt.Sprintf("%020d.seg", 5)), segmentV1(5, stamp, "e", "f"))
	writeFile(t, filepath.Join(dir, ckName), checkpointV1(1, 3)) // a and c acknowledged
	clk := newFakeClock(testDates[1])
	l := Limits{MaxAge: time.Hour}
	log, buf := captureLog()
	s := openTestDisk(t, dir, l, testSegmentSize, log, WithClock(clk))
	if st := s.Stats(); st.Len != 4 || st.DroppedCorrupt != 0 {
		t.Fatalf("stats = %+v, want 4 messages and no damage; log:\n%s", st, buf)
	}
	tx := s.Begin(1)
	if m := tx.Messages[0]; m.ID != 2 || m.Topic != "old/t" || string(m.Payload) != "b" || m.QoS != 1 || !m.Time.Equal(stamp) {
		t.Fatalf("first message = %+v", m)
	}
	s.End(tx)
	add(t, s, msg("t", "new"))
	clk.advance(time.Hour)
	s = reopenDisk(t, s, dir, l, clk, false)
	wantExpiry(t, s, clk, []string{"b", "d", "e", "f", "new"}, nil)
	if m := s.Stats(); m.DroppedAge != 5 {
		t.Fatalf("DroppedAge = %d, want 5", m.DroppedAge)
	}
	add(t, s, msg("t", "x"))
	if tx := s.Begin(1); tx.Messages[0].ID != 8 {
		t.Fatalf("ID after version 1 files = %d, want 8", tx.Messages[0].ID)
	}
}
