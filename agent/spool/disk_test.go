package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// openCrashed opens a copy of dir, as if the process had died now without
// Close.
func openCrashed(t testing.TB, dir string) *Disk {
	t.Helper()
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	return openTestDisk(t, crashed, Limits{}, testSegmentSize, nil)
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func captureLog() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func TestDiskReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	add(t, s, publish.Message{Topic: "a/b", Payload: []byte("one"), QoS: 2, Retained: true, Time: at})
	addN(t, s, 20)
	tx := s.Begin(3)
	tx.AcceptAll()
	s.End(tx)
	lastID := tx.Messages[0].ID + 20
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	if n := s.Len(); n != 18 {
		t.Fatalf("Len after reopen = %d, want 18", n)
	}
	add(t, s, msg("t", "after"))
	tx = s.Begin(100)
	var want []string
	for i := 2; i < 20; i++ {
		want = append(want, fmt.Sprint(i))
	}
	want = append(want, "after")
	wantPayloads(t, "replayed", payloads(tx.Messages), want...)
	if id := tx.Messages[len(tx.Messages)-1].ID; id != lastID+1 {
		t.Fatalf("ID after reopen = %d, want %d", id, lastID+1)
	}
	s.End(tx)

	// Field round trip.
	dir2 := t.TempDir()
	s2 := openTestDisk(t, dir2, Limits{}, testSegmentSize, nil)
	add(t, s2, publish.Message{Topic: "a/b", Payload: []byte("one"), QoS: 2, Retained: true, Time: at})
	s2.Close()
	s2 = openTestDisk(t, dir2, Limits{}, testSegmentSize, nil)
	tx = s2.Begin(1)
	got := tx.Messages[0]
	if got.ID != 1 || got.Topic != "a/b" || string(got.Payload) != "one" || got.QoS != 2 || !got.Retained || !got.Time.Equal(at) {
		t.Fatalf("replayed %+v", got)
	}
}

func TestDiskIDsContinueWhenEmpty(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 3)
	drain(t, s)
	s.Close()
	if f := segFiles(t, dir); len(f) != 0 {
		t.Fatalf("segments left after full acknowledgement and close: %v", f)
	}
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	add(t, s, msg("t", "x"))
	if tx := s.Begin(1); tx.Messages[0].ID != 4 {
		t.Fatalf("ID = %d, want 4", tx.Messages[0].ID)
	}
}

func TestDiskCrashCopy(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 30)
	tx := s.Begin(4)
	tx.Accept(0, 1, 3) // "2" kept
	s.End(tx)
	tx = s.Begin(2) // open transaction at the "crash": not acknowledged
	tx.AcceptAll()

	c := openCrashed(t, dir)
	var want []string
	want = append(want, "2")
	for i := 4; i < 30; i++ {
		want = append(want, fmt.Sprint(i))
	}
	add(t, c, msg("t", "new"))
	got := drain(t, c)
	wantPayloads(t, "after crash", got, append(want, "new")...)
	s.End(tx)
}

func TestDiskAcknowledgedStayGone(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 6)
	tx := s.Begin(6)
	tx.Accept(0, 2, 4)
	tx.Reject(5)
	s.End(tx)
	s.Close()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	tx = s.Begin(10)
	wantPayloads(t, "after reopen", payloads(tx.Messages), "1", "3")
	tx.Accept(1)
	s.End(tx)
	s.Close()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	wantPayloads(t, "after second reopen", drain(t, s), "1")
}

// A newest segment cut short by a crash in the middle of a write is cut
// back to its last intact record: nothing confirmed was lost, so nothing is
// counted, but it is logged.
func TestDiskTruncatedTail(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 5)
	s.Close()
	files := segFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("segments = %v, want 1", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(files[0], fi.Size()-3); err != nil {
		t.Fatal(err)
	}

	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "cut short") ||
		!strings.Contains(buf.String(), filepath.Base(files[0])) {
		t.Fatalf("no warning naming the segment and a write cut short; log:\n%s", buf)
	}
	if st := s.Stats(); st.DroppedCorrupt != 0 {
		t.Fatalf("DroppedCorrupt = %d, want 0: the cut write was never confirmed", st.DroppedCorrupt)
	}
	if _, err := os.Stat(filepath.Join(dir, corruptDir)); !os.IsNotExist(err) {
		t.Fatalf("a write cut short was moved aside (%v); it holds nothing worth keeping", err)
	}
	add(t, s, msg("t", "5"))
	s.Close()

	log, buf = captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if strings.Contains(buf.String(), "WARN") {
		t.Fatalf("repaired spool still warns:\n%s", buf)
	}
	wantPayloads(t, "kept", drain(t, s), "0", "1", "2", "3", "5")
}

// recordOffsets returns the offset of each record of a version 2 segment.
func recordOffsets(t testing.TB, data []byte) []int {
	t.Helper()
	var offs []int
	for off := segHeader; off < len(data); {
		offs = append(offs, off)
		off += recHeader + int(binary.LittleEndian.Uint32(data[off+4:]))
	}
	return offs
}

func TestDiskCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 4)
	s.Close()
	files := segFiles(t, dir)
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Flip the last payload byte of the third record.
	data[recordOffsets(t, data)[3]-1] ^= 0xff
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if !strings.Contains(buf.String(), "checksum mismatch") || !strings.Contains(buf.String(), "lost=1 lost_exact=true") {
		t.Fatalf("no warning of 1 record lost to a checksum mismatch; log:\n%s", buf)
	}
	if st := s.Stats(); st.DroppedCorrupt != 1 {
		t.Fatalf("DroppedCorrupt = %d, want 1", st.DroppedCorrupt)
	}
	wantPayloads(t, "kept", drain(t, s), "0", "1", "3")
	if _, err := os.Stat(filepath.Join(dir, corruptDir, filepath.Base(files[0]))); err != nil {
		t.Fatalf("damaged segment not moved aside: %v", err)
	}
}

// One flipped byte used to lose every record after it (204 of 205 when it
// hit the second record): the reader now finds the next intact record.
func TestDiskFlippedByteLosesOneRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 205)
	s.Close()
	files := segFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("segments = %v, want 1", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The damaged record is the one holding byte 100: the log gives its
	// offset and size (the bytes moved aside with it), nothing cut.
	offs := recordOffsets(t, data)
	i := 0
	for i+1 < len(offs) && offs[i+1] <= 100 {
		i++
	}
	data[100] ^= 0x01
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if st := s.Stats(); st.Len != 204 || st.DroppedCorrupt != 1 {
		t.Fatalf("after a flipped byte: Len %d, DroppedCorrupt %d; want 204 kept, 1 lost; log:\n%s", st.Len, st.DroppedCorrupt, buf)
	}
	want := fmt.Sprintf("lost=1 lost_exact=true offset=%d damaged_bytes=%d cut_bytes=0 ", offs[i], offs[i+1]-offs[i])
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("log does not say %q:\n%s", want, buf)
	}
	s.Close()
	// Repaired: the next open finds nothing wrong and the same messages.
	log, buf = captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if strings.Contains(buf.String(), "WARN") || s.Stats().DroppedCorrupt != 0 {
		t.Fatalf("repaired spool still reports damage:\n%s", buf)
	}
	got := drain(t, s)
	if len(got) != 204 || got[0] != "0" || got[203] != "204" {
		t.Fatalf("kept %d messages, %q..%q", len(got), got[0], got[len(got)-1])
	}
}

func TestDiskGarbageSegment(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 3)
	s.Close()
	garbage := fmt.Sprintf("%020d%s", 1000, segExt)
	if err := os.WriteFile(filepath.Join(dir, garbage), bytes.Repeat([]byte("garbage!"), 50), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := fmt.Sprintf("%020d%s", 2000, segExt) // created just before a crash
	if err := os.WriteFile(filepath.Join(dir, empty), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}

	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, log)
	if !strings.Contains(buf.String(), garbage) {
		t.Fatalf("no warning naming %s; log:\n%s", garbage, buf)
	}
	// A file that is not a spool segment at all held no messages: it is
	// moved aside as foreign, and nothing counts as lost.
	if n := buf.count("not a spool segment, moved aside", garbage); n != 1 || s.Stats().DroppedCorrupt != 0 || strings.Contains(buf.String(), "damaged spool segment") {
		t.Fatalf("garbage: %d foreign warnings, DroppedCorrupt %d; want it moved aside as foreign, nothing lost; log:\n%s", n, s.Stats().DroppedCorrupt, buf)
	}
	if _, err := os.Stat(filepath.Join(dir, corruptDir, garbage)); err != nil {
		t.Fatalf("garbage segment not moved aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, empty)); !os.IsNotExist(err) {
		t.Fatalf("empty segment not removed: %v", err)
	}
	if !strings.Contains(buf.String(), "empty spool segment removed") || !strings.Contains(buf.String(), empty) {
		t.Fatalf("empty segment removed without a warning; log:\n%s", buf)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatalf("unrelated file touched: %v", err)
	}
	wantPayloads(t, "kept", drain(t, s), "0", "1", "2")

	// A directory holding only garbage still opens.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, fmt.Sprintf("%020d%s", 1, segExt)), []byte{1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, ckName), []byte("bad checkpoint"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openTestDisk(t, dir2, Limits{}, testSegmentSize, nil)
	if n := s2.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
	add(t, s2, msg("t", "x"))
	wantPayloads(t, "after garbage", drain(t, s2), "x")
}

func TestDiskCorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, 1<<20, nil)
	addN(t, s, 3)
	tx := s.Begin(1)
	tx.AcceptAll()
	s.End(tx)
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, ckName), []byte("EDSPCKP1 torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if !strings.Contains(buf.String(), "checkpoint") {
		t.Fatalf("no checkpoint warning; log:\n%s", buf)
	}
	// At least once: the acknowledged message comes back, nothing is lost.
	wantPayloads(t, "after bad checkpoint", drain(t, s), "0", "1", "2")
}

func TestDiskSegmentsDeleted(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	for i := range 40 {
		add(t, s, msg("topic/x", fmt.Sprintf("payload %02d", i)))
	}
	if n := len(segFiles(t, dir)); n < 5 {
		t.Fatalf("%d segments, want several", n)
	}
	// Accept every other message first: segments stay (they hold live ones).
	tx := s.Begin(40)
	for i := 0; i < 40; i += 2 {
		tx.Accept(i)
	}
	s.End(tx)
	before := len(segFiles(t, dir))
	drain(t, s)
	if n := len(segFiles(t, dir)); n > 1 {
		t.Fatalf("%d segments after full acknowledgement (had %d), want at most the active one", n, before)
	}
	s.Close()
	if f := segFiles(t, dir); len(f) != 0 {
		t.Fatalf("segments after close: %v", f)
	}
}

// dirBytes is the size of the regular files directly in dir.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// A long run with mixed message sizes, partial acknowledgements and a
// broker that is often away: the directory never holds more than MaxBytes
// (segments, framing, acknowledged records not deleted yet, checkpoint),
// the oldest messages are the ones dropped, and the newest are kept.
func TestDiskMaxBytesBoundsFiles(t *testing.T) {
	const maxBytes = 1 << 20
	dir := t.TempDir()
	l := Limits{MaxBytes: maxBytes}
	d, err := OpenDisk(dir, l, nil, WithClock(newFakeClock(testDates[1])))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if d.segSize != 64<<10 {
		t.Fatalf("segment size = %d, want 64 KiB for a 1 MiB spool", d.segSize)
	}
	rng := rand.New(rand.NewPCG(7, 13))
	var model []string // live payloads, oldest first
	var added, total int
	check := func(what string) {
		t.Helper()
		got := dirBytes(t, dir)
		if got > maxBytes {
			t.Fatalf("after %s (%d added): %d bytes in the directory, over %d", what, added, got, maxBytes)
		}
		if st := d.Stats(); st.DiskBytes != got || st.Len != len(model) {
			t.Fatalf("after %s: Stats DiskBytes %d, Len %d; directory %d bytes, model %d messages", what, st.DiskBytes, st.Len, got, len(model))
		}
	}
	for added < 1500 {
		n := 1 + rng.IntN(3)
		msgs := make([]publish.Message, n)
		for i := range msgs {
			size := 50 + rng.IntN(400)
			if rng.IntN(8) == 0 {
				size = 20000 + rng.IntN(40000) // a snapshot
			}
			p := fmt.Sprintf("%06d-", added)
			p += strings.Repeat("x", size-len(p))
			msgs[i] = msg("edgedet/dev/cam0/events", p)
			model = append(model, p)
			added++
			total += size
		}
		dropped, err := d.Add(msgs...)
		if err != nil {
			t.Fatalf("add: %v", err)
		}
		model = model[dropped:] // drops are the oldest
		check("add")
		if rng.IntN(10) == 0 { // the broker is back for a moment
			tx := d.Begin(1 + rng.IntN(30))
			wantPayloads(t, "transaction", payloads(tx.Messages), model[:len(tx.Messages)]...)
			k := rng.IntN(len(tx.Messages) + 1)
			for i := range k {
				tx.Accept(i)
			}
			d.End(tx)
			model = model[k:]
			check("end")
		}
	}
	st := d.Stats()
	if st.DroppedFull == 0 || total < 4*maxBytes {
		t.Fatalf("the run never filled the spool: %+v, %d bytes added", st, total)
	}
	if st.Added != uint64(added) || st.Delivered+st.DroppedFull+uint64(st.Len) != st.Added {
		t.Fatalf("counts do not add up: %+v", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dirBytes(t, dir); got > maxBytes {
		t.Fatalf("after close: %d bytes, over %d", got, maxBytes)
	}
	d, err = OpenDisk(dir, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantPayloads(t, "after reopen", drain(t, d), model...)
}

func TestDiskOversize(t *testing.T) {
	const maxBytes = 1 << 20
	// A fake clock: the checkpoint's size depends on the boot ID.
	open := func() *Disk {
		return openTestDisk(t, t.TempDir(), Limits{MaxBytes: maxBytes}, 0, nil, WithClock(newFakeClock(testDates[1])))
	}
	big := func(n int) publish.Message { return msg("cam/1/snapshot", strings.Repeat("j", n)) }
	s := open()
	addN(t, s, 3)
	dropped, err := s.Add(msg("t", "a"), big(maxBytes-20), big(maxBytes-300), msg("t", "b"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add oversize: err = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), `"cam/1/snapshot"`) || !strings.Contains(err.Error(), "bytes on disk") {
		t.Fatalf("error %q does not name the topic and its size on disk", err)
	}
	// The one that fits took the room of the older segment.
	if dropped != 3 {
		t.Fatalf("dropped = %d, want 3 (0, 1, 2)", dropped)
	}
	if got := drain(t, s); len(got) != 3 || got[0] != "a" || len(got[1]) != maxBytes-300 || got[2] != "b" {
		t.Fatalf("kept %d messages, want a, the large one and b", len(got))
	}

	// A batch that does not fit as a whole loses its oldest messages, and
	// all older ones before them, as Memory would.
	s = open()
	addN(t, s, 3)
	dropped, err = s.Add(msg("t", "a"), big(maxBytes-250), msg("t", "b"))
	if err != nil || dropped != 5 {
		t.Fatalf("Add = %d, %v; want 5 dropped (0, 1, 2, a, the large one)", dropped, err)
	}
	if st := s.Stats(); st.DroppedFull != 5 || st.Added != 6 {
		t.Fatalf("stats = %+v", st)
	}
	wantPayloads(t, "kept", drain(t, s), "b")
}

func TestSegmentSizeFor(t *testing.T) {
	for _, tt := range []struct{ max, want int64 }{
		{0, 4 << 20}, {-1, 4 << 20}, {1, 64 << 10}, {1000, 64 << 10}, {1 << 20, 64 << 10},
		{8 << 20, 512 << 10}, {64 << 20, 4 << 20}, {1 << 40, 4 << 20},
	} {
		if got := segmentSizeFor(tt.max); got != tt.want {
			t.Errorf("segmentSizeFor(%d) = %d, want %d", tt.max, got, tt.want)
		}
	}
}

func TestDiskShrunkLimitsOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 10)
	s.Close()
	s = openTestDisk(t, dir, Limits{MaxMessages: 3}, testSegmentSize, nil)
	s.Close()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	wantPayloads(t, "kept", drain(t, s), "7", "8", "9")
}

func TestDiskOpenError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenDisk(file, Limits{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("OpenDisk on a file: err = %v, want an error naming %s", err, file)
	}
}

func TestDiskLocked(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 1)
	if d, err := OpenDisk(dir, Limits{}, nil); err == nil {
		d.Close()
		t.Fatal("second OpenDisk on an open directory succeeded")
	} else if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the directory", err)
	}
	s.Close()
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	wantPayloads(t, "after reopen", drain(t, s), "0")
}

// A message kept again and again at the front must not pin every segment
// written after it.
func TestDiskStuckHeadDoesNotPinSegments(t *testing.T) {
	dir := t.TempDir()
	s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	addN(t, s, 1)
	for round := range 5 {
		for i := range 10 {
			add(t, s, msg("topic/x", fmt.Sprintf("r%d payload %02d", round, i)))
		}
		tx := s.Begin(100)
		for i := 1; i < len(tx.Messages); i++ {
			tx.Accept(i) // all but the stuck "0"
		}
		s.End(tx)
	}
	if n := len(segFiles(t, dir)); n > 2 {
		t.Fatalf("%d segments, want the stuck one and the active one", n)
	}
	s.Close()
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after close, want 1", n)
	}
	s = openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
	wantPayloads(t, "after reopen", drain(t, s), "0")
	if len(s.acked) > 1 {
		t.Fatalf("acknowledged IDs kept as %d ranges, want at most 1: %v", len(s.acked), s.acked)
	}
}

// A lock file that cannot be opened fails OpenDisk with an error naming
// it, not as a directory in use.
func TestDiskLockFileUnopenable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, lockName), 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDisk(dir, Limits{}, nil)
	if err == nil {
		d.Close()
		t.Fatal("OpenDisk succeeded with a directory in place of the lock file")
	}
	if msg := err.Error(); !strings.Contains(msg, filepath.Join(dir, lockName)) || strings.Contains(msg, "in use") {
		t.Fatalf("error %q, want one naming the lock file %s", msg, filepath.Join(dir, lockName))
	}
}
