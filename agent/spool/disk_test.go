package spool

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
	add(t, s, Message{Topic: "a/b", Payload: []byte("one"), QoS: 2, Retained: true, Time: at})
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
	add(t, s2, Message{Topic: "a/b", Payload: []byte("one"), QoS: 2, Retained: true, Time: at})
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

	crashed := t.TempDir()
	copyDir(t, dir, crashed) // as if the process died now, without Close
	c := openTestDisk(t, crashed, Limits{}, testSegmentSize, nil)
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
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), filepath.Base(files[0])) {
		t.Fatalf("no warning naming the segment; log:\n%s", buf)
	}
	moved := filepath.Join(dir, corruptDir, filepath.Base(files[0]))
	if mfi, err := os.Stat(moved); err != nil || mfi.Size() != fi.Size()-3 {
		t.Fatalf("damaged segment not moved to %s: %v", moved, err)
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
	off := len(segMagic)
	for range 3 {
		off += recHeader + int(uint32(data[off])|uint32(data[off+1])<<8)
	}
	data[off-1] ^= 0xff
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	log, buf := captureLog()
	s = openTestDisk(t, dir, Limits{}, 1<<20, log)
	if !strings.Contains(buf.String(), "checksum mismatch") {
		t.Fatalf("no checksum warning; log:\n%s", buf)
	}
	wantPayloads(t, "kept", drain(t, s), "0", "1")
	if _, err := os.Stat(filepath.Join(dir, corruptDir, filepath.Base(files[0]))); err != nil {
		t.Fatalf("damaged segment not moved aside: %v", err)
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
	if _, err := os.Stat(filepath.Join(dir, corruptDir, garbage)); err != nil {
		t.Fatalf("garbage segment not moved aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, empty)); !os.IsNotExist(err) {
		t.Fatalf("empty segment not removed: %v", err)
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

func TestDiskBoundedByMaxBytes(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 2000
	s := openTestDisk(t, dir, Limits{MaxBytes: maxBytes}, 512, nil)
	payload := strings.Repeat("p", 95)
	for i := range 300 {
		add(t, s, msg("t/x", fmt.Sprintf("%04d%s", i, payload))) // 102 bytes
	}
	if st := s.Stats(); st.Len != maxBytes/102 || st.Bytes > maxBytes {
		t.Fatalf("stats = %+v", st)
	}
	var total int64
	for _, f := range segFiles(t, dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	// Live records plus at most the partly dead oldest and newest segments.
	if limit := int64(2*maxBytes + 2*512); total > limit {
		t.Fatalf("segments use %d bytes, want at most %d", total, limit)
	}
	s.Close()
	s = openTestDisk(t, dir, Limits{MaxBytes: maxBytes}, 512, nil)
	got := drain(t, s)
	if len(got) != maxBytes/102 || !strings.HasPrefix(got[len(got)-1], "0299") {
		t.Fatalf("after reopen: %d messages, last %.4s", len(got), got[len(got)-1])
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
	if len(s.acked) != 0 {
		t.Fatalf("acknowledged set not pruned: %d IDs", len(s.acked))
	}
}
