package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

// TestSegmentFormatGolden writes one record and compares it with the
// bytes the version-2 format prescribes, built here field by field from
// the format's description (so a change of the sync marker, the header
// size or a field's width or order is caught, not only a change that
// breaks reading back what was written), then reads it back.
func TestSegmentFormatGolden(t *testing.T) {
	e := entry{Message: publish.Message{ID: 0x0102030405060708, Topic: "cam/front", Payload: []byte(`{"n":1}`), QoS: 1, Retained: true,
		Time: time.Unix(1, 500).UTC()}, at: 3 * time.Second}
	var body []byte
	body = binary.LittleEndian.AppendUint64(body, 0x0102030405060708)    // ID
	body = binary.LittleEndian.AppendUint64(body, uint64(1_000_000_500)) // wall time, Unix ns
	body = binary.LittleEndian.AppendUint64(body, uint64(3*time.Second)) // spool clock, ns
	body = append(body, 1, 1)                                            // QoS, flags (1 = retained)
	body = append(body, 9)                                               // topic length, uvarint
	body = append(body, "cam/front"...)
	body = append(body, `{"n":1}`...)
	table := crc32.MakeTable(crc32.Castagnoli)
	var head []byte
	head = binary.LittleEndian.AppendUint32(head, 0x9ac05ed3) // sync marker
	head = binary.LittleEndian.AppendUint32(head, uint32(len(body)))
	head = binary.LittleEndian.AppendUint32(head, crc32.Checksum(body, table))
	head = binary.LittleEndian.AppendUint32(head, crc32.Checksum(head, table)) // of the 12 bytes before it
	want := append([]byte("EDSPSEG2"), append(head, body...)...)

	got := append([]byte(segMagic), appendRecord(nil, &e)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("segment bytes:\n got % x\nwant % x", got, want)
	}
	if n := recordSize(&e.Message); n != int64(len(want)-len("EDSPSEG2")) {
		t.Errorf("recordSize = %d, the record takes %d bytes", n, len(want)-8)
	}
	sc := parseSegment(want)
	if sc.version != 2 || len(sc.recs) != 1 || len(sc.damage) != 0 {
		t.Fatalf("parse: version %d, %d records, damage %+v", sc.version, len(sc.recs), sc.damage)
	}
	r := sc.recs[0]
	if r.ID != e.ID || r.Topic != e.Topic || string(r.Payload) != string(e.Payload) || r.QoS != 1 || !r.Retained ||
		!r.Time.Equal(e.Time) || r.at != e.at || !r.timed || r.off != 8 || r.end != len(want) {
		t.Errorf("parsed %+v, want %+v at 8..%d", r, e, len(want))
	}
}

// recordSize is exactly what appendRecord writes, across the uvarint
// boundaries of the topic length (1, 2 and 3 bytes).
func TestRecordSizeMatchesEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384} {
		e := entry{Message: publish.Message{ID: 1, Topic: strings.Repeat("t", n), Payload: []byte("p")}}
		if got, want := recordSize(&e.Message), int64(len(appendRecord(nil, &e))); got != want {
			t.Errorf("topic of %d bytes: recordSize %d, encoded %d", n, got, want)
		}
	}
	for x, want := range map[uint64]int{0: 1, 127: 1, 128: 2, 16383: 2, 16384: 3, 1<<63 - 1: 9, 1<<64 - 1: 10} {
		if got := uvarintLen(x); got != want || got != len(binary.AppendUvarint(nil, x)) {
			t.Errorf("uvarintLen(%d) = %d, want %d", x, got, want)
		}
	}
}

// TestCheckpointFormatGolden: a version-2 checkpoint's bytes, built field
// by field, its size, and its decoding; a boot ID longer than the kernel
// gives (255 bytes) is stored as unknown.
func TestCheckpointFormatGolden(t *testing.T) {
	c := checkpoint{prefix: 10, last: 42, clock: 5 * time.Second, offset: -2 * time.Second, boot: "b00t",
		acked: idSet{{lo: 12, hi: 14}, {lo: 20, hi: 20}}}
	var want []byte
	want = append(want, "EDSPCKP2"...)
	offset := -2 * time.Second
	for _, v := range []uint64{10, 42, uint64(5 * time.Second), uint64(offset)} {
		want = binary.LittleEndian.AppendUint64(want, v)
	}
	want = append(want, 4)
	want = append(want, "b00t"...)
	want = binary.LittleEndian.AppendUint32(want, 2)
	for _, v := range []uint64{12, 14, 20, 20} {
		want = binary.LittleEndian.AppendUint64(want, v)
	}
	want = binary.LittleEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))
	got := appendCheckpoint(nil, &c)
	if !bytes.Equal(got, want) {
		t.Fatalf("checkpoint bytes:\n got % x\nwant % x", got, want)
	}
	if n := checkpointSize(c.boot, len(c.acked)); n != int64(len(want)) {
		t.Errorf("checkpointSize = %d, the checkpoint takes %d bytes", n, len(want))
	}
	back, err := parseCheckpoint(want)
	if err != nil || back.version != 2 || back.prefix != 10 || back.last != 42 || back.clock != c.clock || back.offset != c.offset || back.boot != "b00t" || len(back.acked) != 2 || back.acked[1] != c.acked[1] {
		t.Errorf("parsed %+v, %v; want %+v", back, err, c)
	}
	long := checkpoint{boot: strings.Repeat("x", 256)}
	if b := appendCheckpoint(nil, &long); len(b) != int(checkpointSize(long.boot, 0)) || b[8+32] != 0 {
		t.Errorf("a 256-byte boot ID: %d bytes (size says %d), length byte %d; want it stored as unknown (0)", len(b), checkpointSize(long.boot, 0), b[8+32])
	}
	ok := checkpoint{boot: strings.Repeat("x", 255)}
	if back, err := parseCheckpoint(appendCheckpoint(nil, &ok)); err != nil || back.boot != ok.boot {
		t.Errorf("a 255-byte boot ID: %v, %d bytes back", err, len(back.boot))
	}
}

// v1Checkpoint encodes a version-1 checkpoint: magic, u64 prefix, u32 n,
// n × u64 ID, CRC-32C of all before (sum adds to the CRC, n overrides the
// count when ≥ 0).
func v1Checkpoint(prefix uint64, ids []uint64, n int, sum uint32) []byte {
	b := append([]byte(nil), "EDSPCKP1"...)
	b = binary.LittleEndian.AppendUint64(b, prefix)
	if n < 0 {
		n = len(ids)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))+sum)
}

func TestParseCheckpointVersion1(t *testing.T) {
	c, err := parseCheckpoint(v1Checkpoint(5, []uint64{3, 5, 7, 9}, -1, 0))
	if err != nil || c.version != 1 || c.prefix != 5 || c.last != 9 || c.acked.count(0, maxID) != 2 || !c.acked.has(7) || !c.acked.has(9) {
		t.Errorf("prefix 5, IDs 3 5 7 9: %+v, %v; want version 1, acked 7 and 9 (not those up to the prefix), last 9", c, err)
	}
	if c, err := parseCheckpoint(v1Checkpoint(maxID, nil, -1, 0)); err != nil || c.prefix != maxID || c.last != maxID {
		t.Errorf("prefix maxID, no IDs: %+v, %v", c, err)
	}
	if c, err := parseCheckpoint(v1Checkpoint(0, []uint64{maxID}, -1, 0)); err != nil || !c.acked.has(maxID) {
		t.Errorf("ID maxID: %+v, %v", c, err)
	}
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"checksum":       {v1Checkpoint(5, []uint64{7}, -1, 1), "checksum mismatch"},
		"count too big":  {v1Checkpoint(5, []uint64{7}, 2, 0), "length mismatch"},
		"prefix too big": {v1Checkpoint(maxID+1, nil, -1, 0), "prefix"},
		"ID too big":     {v1Checkpoint(5, []uint64{maxID + 1}, -1, 0), "out of range"},
		"too short":      {append([]byte("EDSPCKP1"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "too short"},
	} {
		if _, err := parseCheckpoint(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}
