package spool

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
)

// body builds a version-2 record body: ID, wall time, spool clock, QoS,
// flags, topic length (uvarint, tl) and the bytes of rest.
func body(id uint64, tl uint64, rest string) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, id)
	b = binary.LittleEndian.AppendUint64(b, 1000)
	b = binary.LittleEndian.AppendUint64(b, 2000)
	b = append(b, 1, 0)
	b = binary.AppendUvarint(b, tl)
	return append(b, rest...)
}

// seal frames body as a record: sync marker, length, the body's CRC-32C
// and the header's.
func seal(body []byte) []byte {
	table := crc32.MakeTable(crc32.Castagnoli)
	var h []byte
	h = binary.LittleEndian.AppendUint32(h, 0x9ac05ed3)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(body)))
	h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(body, table))
	h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, table))
	return append(h, body...)
}

// resize rewrites a sealed record's length field (and its header CRC).
func resize(rec []byte, size uint32) []byte {
	rec = append([]byte(nil), rec...)
	binary.LittleEndian.PutUint32(rec[4:], size)
	binary.LittleEndian.PutUint32(rec[12:], crc32.Checksum(rec[:12], crc32.MakeTable(crc32.Castagnoli)))
	return rec
}

// Each check of tryRecord reports its own cause, whether the record was
// framed (its header intact), and consumes nothing on failure.
func TestTryRecordCauses(t *testing.T) {
	good := seal(body(7, 3, "a/b{}"))
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		return b
	}
	fixed := len(body(1, 0, ""))
	for _, tc := range []struct {
		name     string
		rec      []byte
		last     uint64
		haveLast bool
		budget   int
		why      string
		framed   bool
	}{
		{"header cut short", good[:recHeader-1], 0, false, 1 << 20, causeHeaderShort, false},
		{"sync marker", flip(0), 0, false, 1 << 20, "record sync marker missing", false},
		{"header checksum", flip(13), 0, false, 1 << 20, "record header checksum mismatch", false},
		{"length below the fixed part", resize(good, uint32(fixed-1)), 0, false, 1 << 20, "record length", false},
		// The format's limit, 1 GiB, written out: a changed maxRecord
		// would misread files written before.
		{"length above the limit", resize(good, 1<<30+1), 0, false, 1 << 20, "record length", false},
		{"length at the limit, body cut short", resize(good, 1<<30), 0, false, 1 << 20, causeCutShort, false},
		{"body cut short", good[:len(good)-1], 0, false, 1 << 20, causeCutShort, false},
		{"header only", good[:recHeader], 0, false, 1 << 20, causeCutShort, false},
		{"scan budget spent", good, 0, false, len(good) - recHeader - 1, "scan budget spent", true},
		{"body checksum", flip(recHeader + 3), 0, false, 1 << 20, "record checksum mismatch", true},
		{"topic longer than the body", seal(body(7, 6, "a/b{}")), 0, false, 1 << 20, "topic length invalid", true},
		{"ID 0", seal(body(0, 3, "a/b")), 0, false, 1 << 20, "record ID 0 out of range", true},
		{"ID above maxID", seal(body(maxID+1, 3, "a/b")), 0, false, 1 << 20, "out of range", true},
		{"ID not after the last", good, 7, true, 1 << 20, "record ID 7 not after 7", true},
	} {
		budget := tc.budget
		_, n, why, framed := tryRecord(tc.rec, 0, tc.last, tc.haveLast, &budget)
		if !strings.Contains(why, tc.why) || framed != tc.framed || n != 0 {
			t.Errorf("%s: why %q, framed %v, n %d; want %q, framed %v, n 0", tc.name, why, framed, n, tc.why, tc.framed)
		}
	}
	// Intact, at the budget's edge, after a lower last ID, with the topic
	// exactly filling the body and the highest ID allowed.
	for _, rec := range [][]byte{good, seal(body(maxID, 3, "a/b"))} {
		budget := len(rec) - recHeader
		r, n, why, _ := tryRecord(append([]byte("xx"), rec...), 2, 6, true, &budget)
		if why != "" || n != len(rec) || r.off != 2 || r.end != 2+len(rec) || budget != 0 || !r.timed || r.QoS != 1 || r.at != 2000 {
			t.Errorf("intact record: why %q, n %d of %d, off %d end %d, budget left %d, %+v", why, n, len(rec), r.off, r.end, budget, r)
		}
	}
	r, _, _, _ := tryRecord(good, 0, 0, false, new(int(1<<20)))
	if r.Topic != "a/b" || string(r.Payload) != "{}" || r.ID != 7 {
		t.Errorf("decoded topic %q payload %q ID %d", r.Topic, r.Payload, r.ID)
	}
	e, err := decodeBody(body(7, 3, "a/b"), true)
	if err != nil || e.Topic != "a/b" || e.Payload != nil {
		t.Errorf("topic filling the body: %+v, %v; want topic a/b, no payload", e, err)
	}
}

// The flags byte's bit 0, and only it, is Retained; a topic length whose
// varint runs past the body is invalid.
func TestDecodeBodyFlagsAndTopicLength(t *testing.T) {
	for flags, want := range map[byte]bool{0: false, 1: true, 2: false, 3: true, 0xfe: false} {
		b := body(7, 1, "tp")
		b[25] = flags
		e, err := decodeBody(b, true)
		if err != nil || e.Retained != want {
			t.Errorf("flags %#x: Retained %v, %v; want %v", flags, e.Retained, err, want)
		}
	}
	b := body(7, 0, "")
	b = append(b[:len(b)-1], 0x80, 0x80) // an unterminated varint
	if _, err := decodeBody(b, true); err == nil || !strings.Contains(err.Error(), "topic length invalid") {
		t.Errorf("unterminated topic length: %v, want topic length invalid", err)
	}
	// A retained message keeps the flag on disk.
	m := msg("t", "p")
	m.Retained = true
	e := entry{Message: m}
	e.ID = 1
	r, _, why, _ := tryRecord(appendRecord(nil, &e), 0, 0, false, new(int(1<<20)))
	if why != "" || !r.Retained {
		t.Errorf("retained record read back: %+v, %q", r, why)
	}
}
