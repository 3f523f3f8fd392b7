package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// damaged builds a closed spool in a new directory holding "0".."n-1"
// (about five records per segment), lets damage edit its segment files, and
// reopens it. It returns the spool and its log.
func damaged(t *testing.T, n int, damage func(segs []string)) (*Disk, string, string) {
	t.Helper()
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, n)
	s.Close()
	damage(segFiles(t, dir))
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, log)
	return s, dir, buf.String()
}

func editFile(t testing.TB, path string, edit func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, edit(data))
}

// segPayloads returns the payloads of the records of a segment file.
func segPayloads(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range parseSegment(data).recs {
		out = append(out, string(r.Payload))
	}
	return out
}

// seq returns the payloads addN gives messages from..to-1.
func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func without(all []string, drop ...string) []string {
	var out []string
	for _, p := range all {
		if !strings.Contains(" "+strings.Join(drop, " ")+" ", " "+p+" ") {
			out = append(out, p)
		}
	}
	return out
}

func wantLost(t *testing.T, s *Disk, log string, lost uint64, exact bool) {
	t.Helper()
	if got := s.Stats().DroppedCorrupt; got != lost {
		t.Fatalf("DroppedCorrupt = %d, want %d; log:\n%s", got, lost, log)
	}
	if want := fmt.Sprintf("lost=%d lost_exact=%v", lost, exact); lost > 0 && !strings.Contains(log, want) {
		t.Fatalf("log does not say %q:\n%s", want, log)
	}
}

// The first record of a segment is damaged: the segment's name (its first
// ID) tells how many came before the first intact one.
func TestDiskDamageAtSegmentStart(t *testing.T) {
	var lostPayloads []string
	s, _, log := damaged(t, 20, func(segs []string) {
		lostPayloads = segPayloads(t, segs[1])[:2]
		editFile(t, segs[1], func(b []byte) []byte {
			offs := recordOffsets(t, b)
			b[offs[0]+recHeader+3] ^= 0x40 // first record's body
			b[offs[1]] ^= 0x01             // second record's sync marker
			return b
		})
	})
	wantLost(t, s, log, 2, true)
	wantPayloads(t, "kept", drain(t, s), without(seq(0, 20), lostPayloads...)...)
}

// The damage runs to the end of a segment that is not the newest: the next
// segment's first ID tells how many records were lost.
func TestDiskDamageAtSegmentEnd(t *testing.T) {
	var lostPayloads []string
	s, _, log := damaged(t, 20, func(segs []string) {
		p := segPayloads(t, segs[1])
		lostPayloads = p[len(p)-2:]
		editFile(t, segs[1], func(b []byte) []byte {
			offs := recordOffsets(t, b)
			return b[:offs[len(offs)-2]+5] // cut inside the second last record
		})
	})
	wantLost(t, s, log, 2, true)
	// Not the newest segment: the 5 bytes left of the cut record are
	// damage (the records after it were confirmed), not a torn write.
	if !strings.Contains(log, "damaged_bytes=5 cut_bytes=0 ") {
		t.Errorf("log does not count the 5 bytes left of the cut record as damaged:\n%s", log)
	}
	wantPayloads(t, "kept", drain(t, s), without(seq(0, 20), lostPayloads...)...)
}

// Damaged records already acknowledged are not lost messages.
func TestDiskDamageOverAcknowledged(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 10)
	tx := s.Begin(10)
	tx.Accept(2, 3, 4) // 0 and 1 are kept: the segment stays
	s.End(tx)
	s.Close()
	editFile(t, segFiles(t, dir)[0], func(b []byte) []byte {
		offs := recordOffsets(t, b)
		for _, i := range []int{2, 3, 4, 5} { // 2..4 acknowledged, 5 live
			b[offs[i]+recHeader+1] ^= 0x10
		}
		return b
	})
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	wantLost(t, s, buf.String(), 1, true)
	wantPayloads(t, "kept", drain(t, s), "0", "1", "6", "7", "8", "9")
}

// An empty segment between others lost what its IDs say; an empty newest
// one (created just before a crash) lost nothing. Both are logged.
func TestDiskEmptySegments(t *testing.T) {
	var lostPayloads []string
	s, dir, log := damaged(t, 20, func(segs []string) {
		lostPayloads = segPayloads(t, segs[2])
		writeFile(t, segs[2], nil)
		writeFile(t, filepath.Join(filepath.Dir(segs[0]), fmt.Sprintf("%020d%s", 21, segExt)), []byte(segMagic))
	})
	if s.Stats().DroppedCorrupt != uint64(len(lostPayloads)) || strings.Count(log, "empty spool segment removed") != 2 ||
		!strings.Contains(log, fmt.Sprintf("lost=%d", len(lostPayloads))) || !strings.Contains(log, "lost=0") {
		t.Fatalf("DroppedCorrupt = %d, want %d, and two warnings; log:\n%s", s.Stats().DroppedCorrupt, len(lostPayloads), log)
	}
	wantPayloads(t, "kept", drain(t, s), without(seq(0, 20), lostPayloads...)...)
	if n := len(segFiles(t, dir)); n > 1 {
		t.Fatalf("%d segments left", n)
	}
}

// Damage at the end of the newest segment that is not a write cut short:
// the IDs cannot tell how many were lost, the log says so.
func TestDiskDamageAtNewestEnd(t *testing.T) {
	var size int
	s, _, log := damaged(t, 20, func(segs []string) {
		editFile(t, segs[len(segs)-1], func(b []byte) []byte {
			offs := recordOffsets(t, b)
			size = len(b) - offs[len(offs)-1]
			b[len(b)-1] ^= 0xff // the last record's last byte
			return b
		})
	})
	wantLost(t, s, log, 1, false)
	if want := fmt.Sprintf("damaged_bytes=%d cut_bytes=0 ", size); !strings.Contains(log, want) {
		t.Errorf("log does not say %q (the last record's size):\n%s", want, log)
	}
	wantPayloads(t, "kept", drain(t, s), seq(0, 19)...)
}

// A crash during the write of a batch: the records written whole are
// kept, the one cut short is cut off.
func TestDiskCrashMidBatch(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 2)
	add(t, s, msg("t", "b1"), msg("t", "b2"), msg("t", "b3"))
	s.Close()
	seg := segFiles(t, dir)[0]
	var cut, offs3 int
	editFile(t, seg, func(b []byte) []byte {
		offs3 = recordOffsets(t, b)[3]
		cut = offs3 + recHeader + 4 // inside b2
		return b[:cut]
	})
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	wantLost(t, s, buf.String(), 0, true)
	if !strings.Contains(buf.String(), "cut short") {
		t.Fatalf("no warning of a write cut short:\n%s", buf)
	}
	// b1 is kept; the torn b2 (cut - its offset bytes) is cut off.
	if want := fmt.Sprintf("kept=3 cut_bytes=%d", cut-offs3); !strings.Contains(buf.String(), want) {
		t.Errorf("log does not say %q:\n%s", want, buf)
	}
	add(t, s, msg("t", "next"))
	wantPayloads(t, "kept", drain(t, s), "0", "1", "b1", "next")
}

// A damaged version 1 segment keeps its records before the damage (that
// framing cannot resynchronise); the next segment's ID counts the loss.
func TestDiskDamagedVersion1Segment(t *testing.T) {
	dir := t.TempDir()
	seg1 := segmentV1(1, testDates[1], "a", "b", "c", "d")
	seg1 = seg1[:len(seg1)-1] // d cut short, but a segment follows
	const rec = recHeaderV1 + recFixedV1 + len("old/t") + 1
	seg1[len(segMagicV1)+2*rec+recHeaderV1+4] ^= 0x08 // c's time
	writeFile(t, filepath.Join(dir, fmt.Sprintf("%020d.seg", 1)), seg1)
	writeFile(t, filepath.Join(dir, fmt.Sprintf("%020d.seg", 5)), segmentV1(5, testDates[1], "e"))
	log, buf := captureLog()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, log)
	wantLost(t, s, buf.String(), 2, true)
	wantPayloads(t, "kept", drain(t, s), "a", "b", "e")
}

// pruneCorrupt keeps the newest maxCorruptFiles regular files of the
// corrupt directory and deletes the older ones; directories and a
// directory at or under the limit are left alone.
func TestPruneCorruptKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	cdir := filepath.Join(dir, corruptDir)
	if err := os.MkdirAll(filepath.Join(cdir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // file times only: the order is what counts
	write := func(i int) {
		p := filepath.Join(cdir, fmt.Sprintf("seg%02d", i))
		writeFile(t, p, []byte("x"))
		if err := os.Chtimes(p, base, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	names := func() []string {
		entries, err := os.ReadDir(cdir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	// Written newest first, so that name order is not age order.
	for i := maxCorruptFiles - 1; i >= 0; i-- {
		write(i)
	}
	s.pruneCorrupt(cdir) // 8 files and a directory: 9 entries, 8 files
	if got := names(); len(got) != maxCorruptFiles+1 {
		t.Fatalf("at the limit: %v left, want all %d files and the directory", got, maxCorruptFiles)
	}
	for i := maxCorruptFiles; i < maxCorruptFiles+3; i++ {
		write(i)
	}
	s.pruneCorrupt(cdir)
	want := []string{"seg03", "seg04", "seg05", "seg06", "seg07", "seg08", "seg09", "seg10", "sub"}
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("after pruning %v, want the newest %d files and the directory %v", got, maxCorruptFiles, want)
	}
}

// An older segment whose records are all damaged, its header intact, is
// a damaged spool segment, not a foreign file: every message it held
// counts as lost (the next segment's name bounds them).
func TestDiskOlderSegmentAllRecordsDamaged(t *testing.T) {
	var lostPayloads []string
	s, _, log := damaged(t, 20, func(segs []string) {
		lostPayloads = segPayloads(t, segs[1])
		editFile(t, segs[1], func(b []byte) []byte {
			for i := segHeader; i < len(b); i++ {
				b[i] = 0xa5
			}
			return b
		})
	})
	if strings.Contains(log, "not a spool segment") {
		t.Errorf("a damaged segment with an intact header was called foreign:\n%s", log)
	}
	wantLost(t, s, log, uint64(len(lostPayloads)), true)
	wantPayloads(t, "kept", drain(t, s), without(seq(0, 20), lostPayloads...)...)
}

// A write cut short at the end of an older segment, where the next
// segment starts with the following ID, lost nothing: its bytes are
// reported as cut, and every message is kept.
func TestDiskTornTailInOlderSegment(t *testing.T) {
	var extra int
	s, _, log := damaged(t, 20, func(segs []string) {
		editFile(t, segs[1], func(b []byte) []byte {
			first := recordOffsets(t, b)[0]
			tail := b[first : first+recHeader+2] // the start of a record, cut short
			extra = len(tail)
			return append(b, tail...)
		})
	})
	wantLost(t, s, log, 0, true)
	if want := fmt.Sprintf("cut_bytes=%d", extra); !strings.Contains(log, want) {
		t.Errorf("log does not say %q:\n%s", want, log)
	}
	wantPayloads(t, "kept", drain(t, s), seq(0, 20)...)
}

// Whichever record of an older segment is damaged, exactly that one is
// lost: the intact records around it tell its ID.
func TestDiskDamageEachRecord(t *testing.T) {
	for k := range 5 {
		t.Run(fmt.Sprint("record ", k), func(t *testing.T) {
			var lost string
			s, _, log := damaged(t, 12, func(segs []string) {
				if p := segPayloads(t, segs[0]); len(p) != 5 {
					t.Fatalf("first segment holds %q, want 5 records", p)
				} else {
					lost = p[k]
				}
				editFile(t, segs[0], func(b []byte) []byte {
					offs := append(recordOffsets(t, b), len(b))
					b[offs[k+1]-1] ^= 0xff // its payload's last byte
					return b
				})
			})
			wantLost(t, s, log, 1, true)
			wantPayloads(t, "kept", drain(t, s), without(seq(0, 12), lost)...)
		})
	}
}

// Damaged records at or below the checkpoint's prefix are not lost
// messages; the first one above it is.
func TestDiskDamageAroundPrefix(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 10)
	tx := s.Begin(6)
	tx.AcceptAll() // IDs 1..6 ("0".."5") delivered: the prefix is 6
	s.End(tx)
	s.Close()
	editFile(t, segFiles(t, dir)[0], func(b []byte) []byte {
		offs := recordOffsets(t, b)
		for _, i := range []int{1, 6} { // ID 2, below the prefix, and ID 7, just above
			b[offs[i]+recHeader+1] ^= 0x10
		}
		return b
	})
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	wantLost(t, s, buf.String(), 1, true)
	wantPayloads(t, "kept", drain(t, s), "7", "8", "9")
}

// A file moved aside again under a name corrupt/ already holds gets the
// next free suffix: nothing there is overwritten.
func TestDiskQuarantineNames(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		writeFile(t, filepath.Join(dir, segName(1)), []byte(fmt.Sprint("not a segment ", i)))
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		s.Close()
	}
	for i, name := range []string{segName(1), segName(1) + ".1", segName(1) + ".2"} {
		data, err := os.ReadFile(filepath.Join(dir, corruptDir, name))
		if want := fmt.Sprint("not a segment ", i); err != nil || string(data) != want {
			t.Errorf("corrupt/%s holds %q (%v), want %q", name, data, err, want)
		}
	}
}

// A newest segment cut short inside its header (a crash as it was
// created) is deleted; a short file that is not a segment is moved aside.
func TestDiskShortSegmentFiles(t *testing.T) {
	for _, tc := range []struct {
		data  string
		moved bool
	}{{"EDSP", false}, {"abc", true}} {
		dir := t.TempDir()
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		addN(t, s, 2)
		s.Close()
		writeFile(t, filepath.Join(dir, segName(3)), []byte(tc.data))
		s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		if st := s.Stats(); st.DroppedCorrupt != 0 {
			t.Errorf("%q: DroppedCorrupt = %d, want 0", tc.data, st.DroppedCorrupt)
		}
		wantPayloads(t, "kept", drain(t, s), "0", "1")
		if _, err := os.Stat(filepath.Join(dir, segName(3))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%q: still in place (%v)", tc.data, err)
		}
		_, err := os.Stat(filepath.Join(dir, corruptDir, segName(3)))
		if moved := err == nil; moved != tc.moved {
			t.Errorf("%q: moved to corrupt/ %v, want %v", tc.data, moved, tc.moved)
		}
	}
}

// Damage at the end of the newest segment over several records whose
// headers are intact loses at least that many.
func TestDiskDamageOverLastRecordsOfNewest(t *testing.T) {
	s, _, log := damaged(t, 20, func(segs []string) {
		editFile(t, segs[len(segs)-1], func(b []byte) []byte {
			offs := recordOffsets(t, b)
			for _, off := range offs[len(offs)-2:] {
				b[off+recHeader+1] ^= 0x10 // the last two records' bodies
			}
			return b
		})
	})
	wantLost(t, s, log, 2, false)
	wantPayloads(t, "kept", drain(t, s), seq(0, 18)...)
}

// A newest segment ending in zeros (a crash after the file grew but
// before its data landed) ends in a write cut short: cut back, nothing
// lost. Other bytes there are damage.
func TestDiskZeroTail(t *testing.T) {
	for _, tc := range []struct {
		fill byte
		lost uint64
	}{{0, 0}, {1, 1}} {
		s, _, log := damaged(t, 8, func(segs []string) {
			editFile(t, segs[len(segs)-1], func(b []byte) []byte {
				return append(b, bytes.Repeat([]byte{tc.fill}, 100)...)
			})
		})
		wantLost(t, s, log, tc.lost, false)
		if tc.lost == 0 && !strings.Contains(log, "cut_bytes=100") {
			t.Errorf("zero tail: log does not say 100 bytes were cut:\n%s", log)
		}
		wantPayloads(t, "kept", drain(t, s), seq(0, 8)...)
	}
}
