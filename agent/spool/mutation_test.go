package spool

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A version 1 record whose checksum is right but whose body does not decode
// (its topic length runs past the body) is damage from there on, not a
// message with an empty topic.
func TestParseSegmentV1UndecodableBodyIsDamage(t *testing.T) {
	seg := segmentV1(1, time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC), "a")
	badAt := len(seg)
	body := binary.LittleEndian.AppendUint64(nil, 2)
	body = binary.LittleEndian.AppendUint64(body, 0)
	body = append(body, 1, 0)              // QoS, flags
	body = binary.AppendUvarint(body, 100) // topic length: more than is left
	body = append(body, "ab"...)
	seg = binary.LittleEndian.AppendUint32(seg, uint32(len(body)))
	seg = binary.LittleEndian.AppendUint32(seg, crc32.Checksum(body, castagnoli))
	seg = append(seg, body...)

	sc := parseSegmentV1(seg)
	if len(sc.recs) != 1 || sc.recs[0].ID != 1 {
		t.Fatalf("records %+v, want only ID 1", sc.recs)
	}
	if len(sc.damage) != 1 {
		t.Fatalf("damage %+v, want one range", sc.damage)
	}
	if d := sc.damage[0]; d.off != badAt || d.end != len(seg) || !strings.Contains(d.cause, "topic length") {
		t.Errorf("damage %+v, want [%d, %d) for the topic length", d, badAt, len(seg))
	}
}
