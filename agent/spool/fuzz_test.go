package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

// Fuzz targets for everything the spool reads from disk. `go test` runs
// their seeds; `go test -run '^$' -fuzz '^FuzzX$' ./agent/spool` explores.

// seedRecords are records of every shape: empty topic and payload, binary
// payload, retained, QoS 2, a payload holding the sync marker.
func seedRecords() []record {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	msgs := []publish.Message{
		{ID: 7, Topic: "edgedet/pi/cam0/events", Payload: []byte(`{"type":"new","label":"dog"}`), QoS: 1, Time: at},
		{ID: 8, Topic: "", Payload: nil, QoS: 0, Time: at.AddDate(-30, 0, 0)},
		{ID: 9, Topic: "s", Payload: append(append([]byte{0xff, 0xd8}, syncBytes...), 0, 1, 2), QoS: 2, Retained: true, Time: at.AddDate(40, 0, 0)},
		{ID: 10, Topic: strings.Repeat("t", 200), Payload: bytes.Repeat([]byte{0}, 300), QoS: 1, Time: at},
	}
	recs := make([]record, len(msgs))
	for i, m := range msgs {
		recs[i] = record{entry: entry{Message: m, at: time.Duration(i) * time.Hour}, timed: true}
	}
	return recs
}

func seedSegments() [][]byte {
	good := encodeSegment(seedRecords())
	flipped := bytes.Clone(good)
	flipped[60] ^= 0x20
	marker := bytes.Clone(good)
	marker[segHeader] ^= 0x01
	var v1 []byte
	for _, r := range seedRecords() {
		if v1 == nil {
			v1 = []byte(segMagicV1)
		}
		v1 = appendRecordV1(v1, &r.Message)
	}
	return [][]byte{
		good, flipped, marker,
		good[:len(good)-7], // a write cut short
		good[:segHeader], good[:3], nil,
		append(bytes.Clone(good), make([]byte, 40)...), // zero-filled tail
		v1, v1[:len(v1)-2],
		[]byte("garbage!garbage!garbage!"),
		append([]byte("EDSPSEGX"), good[segHeader:]...), // damaged header
	}
}

func seedCheckpoints() [][]byte {
	ck := checkpoint{prefix: 6, last: 12, clock: 5 * time.Hour, offset: -time.Minute, boot: "boot-1", acked: idSet{{8, 8}, {10, 11}}}
	good := appendCheckpoint(nil, &ck)
	bad := bytes.Clone(good)
	bad[20] ^= 1
	return [][]byte{good, bad, good[:len(good)-1], checkpointV1(6, 8, 10, 11), checkpointV1(0), []byte("EDSPCKP1 torn"), nil}
}

// allocBound fails if fn allocated more than a small multiple of n bytes:
// no length read from the input may drive an allocation.
func allocBound(t *testing.T, n int, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(16*n+1<<20); got > limit {
		t.Fatalf("allocated %d bytes for %d bytes of input (limit %d)", got, n, limit)
	}
}

func sameRecord(a, b record) bool {
	return a.ID == b.ID && a.Topic == b.Topic && bytes.Equal(a.Payload, b.Payload) && a.QoS == b.QoS &&
		a.Retained == b.Retained && a.Time.UnixNano() == b.Time.UnixNano() && (!a.timed || !b.timed || a.at == b.at)
}

// framed returns a segment holding one record whose body is body, with
// valid framing and checksums, so that the fuzzer reaches the body decoder
// past the checksums.
func framed(body []byte) []byte {
	buf := append([]byte(segMagic), make([]byte, recHeader)...)
	buf = append(buf, body...)
	h := buf[segHeader : segHeader+recHeader]
	binary.LittleEndian.PutUint32(h, recSync)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[8:], crc32.Checksum(body, castagnoli))
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return buf
}

func FuzzParseSegment(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSegment(t, data)
		// The same bytes as the body of a record with valid checksums.
		if len(data) >= recFixed {
			sc := checkSegment(t, framed(data))
			e, err := decodeBody(data, true)
			if err == nil && e.ID != 0 && e.ID <= maxID &&
				(len(sc.recs) != 1 || len(sc.damage) != 0 || !sameRecord(sc.recs[0], record{entry: e, timed: true})) {
				t.Fatalf("a framed record that decodes read as %d records and %d damage", len(sc.recs), len(sc.damage))
			}
		}
	})
}

// checkSegment parses data and checks what it returns.
func checkSegment(t *testing.T, data []byte) segmentScan {
	t.Helper()
	{
		var sc segmentScan
		allocBound(t, len(data), func() { sc = parseSegment(data) })
		// Records and damage tile the file after the header, in order.
		pos := 0
		if sc.version != 0 && len(data) >= segHeader {
			pos = segHeader
		}
		ri, di := 0, 0
		for ri < len(sc.recs) || di < len(sc.damage) {
			if ri < len(sc.recs) && sc.recs[ri].off == pos {
				r := sc.recs[ri]
				if r.end <= r.off || r.end > len(data) || int64(r.end-r.off) < r.Size() {
					t.Fatalf("record %d spans %d..%d of %d bytes with %d bytes of message", ri, r.off, r.end, len(data), r.Size())
				}
				if ri > 0 && r.ID <= sc.recs[ri-1].ID {
					t.Fatalf("record IDs not increasing: %d after %d", r.ID, sc.recs[ri-1].ID)
				}
				pos, ri = r.end, ri+1
				continue
			}
			if di < len(sc.damage) && sc.damage[di].off == pos && sc.damage[di].end > pos {
				pos, di = sc.damage[di].end, di+1
				continue
			}
			t.Fatalf("nothing starts at %d: records %d/%d, damage %d/%d %+v", pos, ri, len(sc.recs), di, len(sc.damage), sc.damage)
		}
		if pos != len(data) {
			t.Fatalf("records and damage end at %d of %d bytes", pos, len(data))
		}
		// What was read writes back the same, without damage.
		if len(sc.recs) == 0 {
			return sc
		}
		again := parseSegment(encodeSegment(sc.recs))
		if again.version != 2 || len(again.damage) != 0 || len(again.recs) != len(sc.recs) {
			t.Fatalf("re-encoded: version %d, %d damage, %d of %d records", again.version, len(again.damage), len(again.recs), len(sc.recs))
		}
		for i := range sc.recs {
			if !sameRecord(sc.recs[i], again.recs[i]) {
				t.Fatalf("record %d changed when re-encoded: %+v, then %+v", i, sc.recs[i], again.recs[i])
			}
		}
		return sc
	}
}

// withCRC replaces the last 4 bytes of b by the checksum of the others.
func withCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

func FuzzParseCheckpoint(f *testing.F) {
	for _, s := range seedCheckpoints() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCheckpoint(t, data)
		checkCheckpoint(t, withCRC(data)) // past the checksum
	})
}

// checkCheckpoint parses data and checks what it returns.
func checkCheckpoint(t *testing.T, data []byte) {
	t.Helper()
	{
		var ck checkpoint
		var err error
		allocBound(t, len(data), func() { ck, err = parseCheckpoint(data) })
		if err != nil {
			return
		}
		if len(ck.acked) > len(data)/8 {
			t.Fatalf("%d ranges from %d bytes", len(ck.acked), len(data))
		}
		for i, r := range ck.acked {
			if r.lo > r.hi || r.lo <= ck.prefix || (i > 0 && ck.acked[i-1].hi+1 >= r.lo) {
				t.Fatalf("ranges not ascending, apart and above prefix %d: %v", ck.prefix, ck.acked)
			}
		}
		again, err := parseCheckpoint(appendCheckpoint(nil, &ck))
		if err != nil {
			t.Fatalf("re-encoded checkpoint does not parse: %v", err)
		}
		if again.prefix != ck.prefix || again.last != ck.last || fmt.Sprint(again.acked) != fmt.Sprint(ck.acked) ||
			(ck.version == 2 && (again.clock != ck.clock || again.offset != ck.offset || again.boot != ck.boot)) {
			t.Fatalf("checkpoint changed when re-encoded: %+v, then %+v", ck, again)
		}
	}
}

// snapshot is what a spool holds, in order.
func snapshot(t *testing.T, s *Disk) []publish.Message {
	t.Helper()
	tx := s.Begin(1 << 30)
	msgs := tx.Messages
	s.End(tx) // keep them all
	for i := 1; i < len(msgs); i++ {
		if msgs[i].ID <= msgs[i-1].ID {
			t.Fatalf("messages not in ID order: %d after %d", msgs[i].ID, msgs[i-1].ID)
		}
	}
	if n := s.Len(); n != len(msgs) {
		t.Fatalf("Len = %d, Begin returned %d", n, len(msgs))
	}
	return msgs
}

func sameMessages(a, b []publish.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameRecord(record{entry: entry{Message: a[i]}}, record{entry: entry{Message: b[i]}}) {
			return false
		}
	}
	return true
}

// FuzzOpenDir opens a directory holding two segments and a checkpoint
// made of the input: it must open, hold messages in ID order, and after a
// reopen (the damage repaired) hold the same ones with nothing to report.
func FuzzOpenDir(f *testing.F) {
	segs, cks := seedSegments(), seedCheckpoints()
	for i := range segs {
		f.Add(segs[i], segs[(i+3)%len(segs)], cks[i%len(cks)], i%3 == 0)
	}
	f.Fuzz(func(t *testing.T, seg1, seg2, ck []byte, fixCRC bool) {
		if fixCRC {
			ck = withCRC(ck) // explore past the checkpoint's checksum
		}
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%020d%s", 1, segExt)), seg1)
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%020d%s", 9, segExt)), seg2)
		if ck != nil {
			writeFile(t, filepath.Join(dir, ckName), ck)
		}
		clk := newFakeClock(testDates[1])
		l := Limits{MaxMessages: 1000, MaxAge: 24 * time.Hour}
		open := func() (*Disk, string) {
			log, buf := captureLog()
			s, err := OpenDisk(dir, l, log, WithClock(clk), withSegmentSize(testSegmentSize))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return s, buf.String()
		}
		s, _ := open()
		first := snapshot(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		s, log := open()
		second := snapshot(t, s)
		if !sameMessages(first, second) {
			t.Fatalf("reopen changed the messages: %d, then %d", len(first), len(second))
		}
		if strings.Contains(log, "WARN") || s.Stats().DroppedCorrupt != 0 {
			t.Fatalf("reopen still finds damage:\n%s", log)
		}
		var top uint64
		if len(second) > 0 {
			top = second[len(second)-1].ID
		}
		add(t, s, msg("t", "new"))
		msgs := snapshot(t, s)
		if m := msgs[len(msgs)-1]; m.ID <= top || string(m.Payload) != "new" {
			t.Fatalf("new message got ID %d, not after %d", m.ID, top)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, ckName)); err != nil {
			t.Fatalf("no checkpoint after close: %v", err)
		}
	})
}
