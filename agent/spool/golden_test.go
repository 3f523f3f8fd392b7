package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
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

// A version-2 checkpoint is refused when its IDs or ranges are out of
// range or out of order; the bounds themselves are accepted.
func TestParseCheckpointValidation(t *testing.T) {
	ck := func(prefix, last uint64, ranges ...idRange) []byte {
		return appendCheckpoint(nil, &checkpoint{prefix: prefix, last: last, acked: idSet(ranges)})
	}
	for name, b := range map[string][]byte{
		"prefix and last at maxID":         ck(maxID, maxID),
		"ranges right after the prefix":    ck(5, 20, idRange{6, 6}, idRange{8, 9}),
		"adjacent ranges, one apart":       ck(5, 20, idRange{6, 7}, idRange{8, 8}),
		"a range ending at maxID":          ck(5, maxID, idRange{maxID, maxID}),
		"a single range of one ID":         ck(0, 1, idRange{1, 1}),
		"no ranges, last above the prefix": ck(3, 9),
	} {
		if _, err := parseCheckpoint(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"prefix above maxID":          {ck(maxID+1, maxID+1), "out of range"},
		"last above maxID":            {ck(5, maxID+1), "out of range"},
		"range upside down":           {ck(5, 20, idRange{9, 8}), "out of order"},
		"range at the prefix":         {ck(5, 20, idRange{5, 6}), "out of order"},
		"range above maxID":           {ck(5, 20, idRange{6, maxID + 1}), "out of order"},
		"ranges overlapping":          {ck(5, 20, idRange{6, 8}, idRange{8, 9}), "out of order"},
		"ranges in reverse order":     {ck(5, 20, idRange{10, 11}, idRange{6, 7}), "out of order"},
		"second range at the prefix":  {ck(5, 20, idRange{6, 6}, idRange{5, 5}), "out of order"},
		"a bit flipped in the prefix": {flipped(ck(5, 20), len(ckMagic)), "checksum mismatch"},
		"shorter than the fixed part": {withCRC([]byte(ckMagic + "0123456789")), "too short"},
		"a few bytes":                 {[]byte("EDSPC"), "too short"},
		"boot ID past the end":        {bootLen(ck(5, 20), 200), "boot ID length 200 past the end"},
		"boot ID into the count": {bootLen(appendCheckpoint(nil, &checkpoint{prefix: 5, last: 20, boot: "bbbb"}), 8),
			"boot ID length 8 past the end"},
	} {
		if _, err := parseCheckpoint(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}

// bootLen returns a copy of checkpoint b claiming a boot ID of n bytes,
// its checksum fixed.
func bootLen(b []byte, n byte) []byte {
	b = slices.Clone(b)
	b[len(ckMagic)+32] = n
	return withCRC(b)
}

// flipped returns a copy of b with bit 0 of byte i flipped.
func flipped(b []byte, i int) []byte {
	b = slices.Clone(b)
	b[i] ^= 1
	return b
}

// v1Record frames a version-1 record: u32 body length, u32 CRC-32C, body
// (ID, wall time, QoS, flags, uvarint topic length, topic, payload).
func v1Record(id uint64, topic, payload string) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint64(body, id)
	body = binary.LittleEndian.AppendUint64(body, 1000)
	body = append(body, 0, 0)
	body = binary.AppendUvarint(body, uint64(len(topic)))
	body = append(body, topic+payload...)
	return v1Frame(body, uint32(len(body)))
}

// v1Frame frames body with the length field n.
func v1Frame(body []byte, n uint32) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, n)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, body...)
}

func TestParseSegmentVersion1(t *testing.T) {
	seg := func(recs ...[]byte) []byte {
		b := []byte("EDSPSEG1")
		for _, r := range recs {
			b = append(b, r...)
		}
		return b
	}
	// The smallest body (empty topic and payload) and the highest ID.
	sc := parseSegment(seg(v1Record(3, "", ""), v1Record(4, "t", "p"), v1Record(maxID, "t", "")))
	if sc.version != 1 || len(sc.recs) != 3 || len(sc.damage) != 0 || sc.recs[0].end != 8+8+19 || sc.recs[1].Topic != "t" || string(sc.recs[1].Payload) != "p" || sc.recs[2].ID != maxID || sc.recs[2].timed {
		t.Fatalf("intact version-1 segment: version %d, %d records %+v, damage %+v", sc.version, len(sc.recs), sc.recs, sc.damage)
	}
	small := v1Record(3, "", "")
	for name, tc := range map[string]struct {
		b    []byte
		want string
		kept int
	}{
		"length below the fixed part": {seg(v1Record(2, "", ""), v1Frame(small[8:len(small)-1], 18)), "record length 18 invalid", 1},
		"length above the limit":      {seg(v1Frame([]byte("x"), 1<<30+1)), "invalid", 0},
		"length at the limit, cut":    {seg(v1Frame([]byte("x"), 1<<30)), causeCutShort, 0},
		"header cut short":            {seg(v1Record(2, "", ""), v1Record(3, "t", "")[:5]), causeHeaderShort, 1},
		"header alone":                {seg(v1Record(2, "", ""), v1Record(3, "t", "")[:8]), causeCutShort, 1},
		"ID 0":                        {seg(v1Record(0, "t", "")), "record ID 0 out of range", 0},
		"ID above maxID":              {seg(v1Record(maxID+1, "t", "")), "out of range", 0},
		"ID repeated":                 {seg(v1Record(5, "t", ""), v1Record(5, "t", "")), "record ID 5 not after 5", 1},
		"ID going back":               {seg(v1Record(5, "t", ""), v1Record(6, "t", ""), v1Record(4, "t", "")), "record ID 4 not after 6", 2},
	} {
		sc := parseSegment(tc.b)
		if len(sc.recs) != tc.kept || len(sc.damage) != 1 || !strings.Contains(sc.damage[0].cause, tc.want) || sc.damage[0].end != len(tc.b) {
			t.Errorf("%s: %d records, damage %+v; want %d kept and %q to the end", name, len(sc.recs), sc.damage, tc.kept, tc.want)
		}
	}
}

// A boot ID is at most 255 bytes (its length is one byte); a longer one,
// which no kernel gives, is written as unknown, and the sizes agree.
func TestCheckpointBootIDLimit(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want int // boot ID bytes kept
	}{{255, 255}, {256, 0}} {
		boot := strings.Repeat("b", tc.n)
		b := appendCheckpoint(nil, &checkpoint{prefix: 1, last: 2, boot: boot})
		c, err := parseCheckpoint(b)
		if err != nil || len(c.boot) != tc.want {
			t.Errorf("boot ID of %d bytes: read back %d bytes, %v; want %d", tc.n, len(c.boot), err, tc.want)
		}
		if got := checkpointSize(boot, 0); got != int64(len(b)) {
			t.Errorf("boot ID of %d bytes: checkpointSize %d, written %d", tc.n, got, len(b))
		}
	}
}

// Files shorter than a segment header: a prefix of it is a version 2
// segment whose header write was cut short; anything else is not a
// segment.
func TestParseSegmentShort(t *testing.T) {
	for _, tc := range []struct {
		data    string
		version int
		cause   string // of the one damage; "" for none
		torn    bool
	}{
		{"", 2, "", false},
		{"E", 2, "segment header cut short", true},
		{"EDSP", 2, "segment header cut short", true},
		{"EDSPSEG", 2, "segment header cut short", true},
		{segMagic, 2, "", false},
		{"abc", 0, "not a spool segment header", false},
		{"EDSPSEGX", 0, "not a spool segment header", false},
	} {
		sc := parseSegment([]byte(tc.data))
		var cause string
		var torn bool
		if len(sc.damage) > 1 {
			t.Errorf("%q: %d damages, want at most 1", tc.data, len(sc.damage))
			continue
		} else if len(sc.damage) == 1 {
			cause, torn = sc.damage[0].cause, sc.damage[0].torn
			if d := sc.damage[0]; d.off != 0 || d.end != len(tc.data) {
				t.Errorf("%q: damage %d..%d, want the whole file", tc.data, d.off, d.end)
			}
		}
		if sc.version != tc.version || cause != tc.cause || torn != tc.torn || len(sc.recs) != 0 {
			t.Errorf("%q: version %d, cause %q, torn %v, %d records; want version %d, cause %q, torn %v, none",
				tc.data, sc.version, cause, torn, len(sc.recs), tc.version, tc.cause, tc.torn)
		}
	}
}

// In a version 2 segment IDs increase: a record whose ID is not above the
// last intact one is damage, even with intact checksums.
func TestScanRecordsIDOrder(t *testing.T) {
	data := []byte(segMagic)
	for _, id := range []uint64{5, 3, 6} {
		e := entry{Message: msg("t", "p")}
		e.ID = id
		data = appendRecord(data, &e)
	}
	sc := parseSegment(data)
	if len(sc.recs) != 2 || sc.recs[0].ID != 5 || sc.recs[1].ID != 6 || len(sc.damage) != 1 ||
		sc.damage[0].cause != "record ID 3 not after 5" {
		t.Fatalf("records %+v, damage %+v; want IDs 5 and 6 and ID 3 as damage", sc.recs, sc.damage)
	}
}

// A segment far larger than the scan's fixed budget (as a production
// segment of 4 MiB is) is read whole: the budget grows with the file.
func TestParseSegmentLarge(t *testing.T) {
	data := []byte(segMagic)
	payload := strings.Repeat("x", 1000)
	const n = 300 // about 300 kB
	for i := range n {
		e := entry{Message: msg("t", payload)}
		e.ID = uint64(i + 1)
		data = appendRecord(data, &e)
	}
	if sc := parseSegment(data); len(sc.recs) != n || len(sc.damage) != 0 {
		t.Fatalf("%d records and %d damages in %d bytes, want %d records", len(sc.recs), len(sc.damage), len(data), n)
	}
}

// The scan after damage: a record right after one stray byte is found;
// damage that starts at a foreign header runs, with that cause, to the
// first intact record, even over a sync marker that starts no record.
func TestScanRecordsResync(t *testing.T) {
	rec := func(id uint64) []byte {
		e := entry{Message: msg("t", "p")}
		e.ID = id
		return appendRecord(nil, &e)
	}
	data := append([]byte(segMagic+"Z"), rec(4)...)
	sc := parseSegment(data)
	if len(sc.recs) != 1 || sc.recs[0].ID != 4 || len(sc.damage) != 1 || sc.damage[0].off != segHeader || sc.damage[0].end != segHeader+1 {
		t.Errorf("a stray byte: records %+v, damage %+v; want ID 4 and damage 8..9", sc.recs, sc.damage)
	}

	junk := append([]byte("XXXXXXXX"), syncBytes...)
	junk = append(junk, "not a record header"...)
	data = append(slices.Clone(junk), rec(4)...)
	sc = parseSegment(data)
	want := damage{off: 0, end: len(junk), cause: "not a spool segment header"}
	if len(sc.recs) != 1 || len(sc.damage) != 1 || sc.damage[0] != want {
		t.Errorf("a foreign header: records %d, damage %+v; want 1 record and %+v", len(sc.recs), sc.damage, want)
	}
}

// A record cut short at the end of a file is a torn write only if nothing
// after its start looks like a record: here a framed record follows
// inside the length it claims, so the damage is not a torn write.
func TestScanRecordsCutShortOverAFramedRecord(t *testing.T) {
	e := entry{Message: msg("t", "p")}
	e.ID = 1
	r1 := appendRecord(nil, &e)
	cut := resize(seal(body(2, 1, "t")), 10000)[:recHeader] // claims 10000 bytes
	bad := seal(body(3, 1, "tp"))
	bad[len(bad)-1] ^= 0xff // header intact, body checksum wrong
	data := slices.Concat([]byte(segMagic), r1, cut, bad)
	sc := parseSegment(data)
	want := damage{off: segHeader + len(r1), end: len(data), cause: causeCutShort, framed: 1}
	if len(sc.recs) != 1 || len(sc.damage) != 1 || sc.damage[0] != want {
		t.Fatalf("records %d, damage %+v; want 1 record and %+v", len(sc.recs), sc.damage, want)
	}
}
