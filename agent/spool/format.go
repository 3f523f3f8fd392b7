package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

// On-disk formats. All integers are little endian; checksums are CRC-32C.
//
// A segment is segMagic followed by records:
//
//	u32 recSync | u32 body length | u32 CRC of body | u32 CRC of the 12 bytes before
//	body: u64 ID | i64 time (Unix ns) | i64 spool clock at Add (ns) |
//	      u8 QoS | u8 flags (1 = retained) | uvarint topic length | topic | payload
//
// The sync marker and the header checksum let a reader that met a damaged
// record find the next intact one: it scans for a marker whose header
// checksum, length and body checksum all check, and whose ID follows the
// last intact one. (A payload that itself holds a whole record, with valid
// checksums, could be taken for one when the record around it is damaged.)
//
// The checkpoint is
//
//	ckMagic | u64 prefix | u64 last ID assigned | i64 spool clock | i64 clock offset |
//	u8 n | n bytes boot ID | u32 m | m × (u64 first, u64 last) | u32 CRC of all before
//
// where every ID at or below prefix, and every ID in the m ranges, has left
// the spool (delivered, rejected, dropped or lost), and the spool clock is
// Uptime + offset during the boot named by the boot ID.
//
// Version 1 files (segMagicV1, ckMagicV1), written before the spool kept
// ages, are still read; see parseSegmentV1 and parseCheckpoint.
const (
	segMagic   = "EDSPSEG2"
	segMagicV1 = "EDSPSEG1"
	ckMagic    = "EDSPCKP2"
	ckMagicV1  = "EDSPCKP1"
	segHeader  = len(segMagic)

	recSync     uint32 = 0x9ac05ed3
	recHeader          = 16
	recFixed           = 8 + 8 + 8 + 1 + 1 + 1 // smallest body: empty topic and payload
	recHeaderV1        = 8
	recFixedV1         = 8 + 8 + 1 + 1 + 1
	maxRecord          = 1 << 30

	ckFixed   = len(ckMagic) + 8 + 8 + 8 + 8 + 1 + 4 + 4 // without boot ID and ranges
	ckRange   = 16
	maxBootID = 255

	// maxID bounds the IDs read from disk, so that IDs assigned after
	// them never wrap around.
	maxID = 1<<63 - 1

	// maxClock bounds spool-clock values read from disk (146 years):
	// anything outside 0..maxClock is treated as unknown, so clock
	// arithmetic never overflows.
	maxClock = time.Duration(1 << 62)
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	syncBytes  = binary.LittleEndian.AppendUint32(nil, recSync)
)

// recordSize is the number of bytes m takes in a segment.
func recordSize(m *publish.Message) int64 { return recordBytes(len(m.Topic), m.Size()) }

// recordBytes is the number of bytes a message with a topic of topicLen
// bytes and the given Size takes in a segment.
func recordBytes(topicLen int, size int64) int64 {
	return int64(recHeader+recFixed-1+uvarintLen(uint64(topicLen))) + size
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func appendRecord(buf []byte, e *entry) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recHeader)...)
	buf = binary.LittleEndian.AppendUint64(buf, e.ID)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.Time.UnixNano()))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.at))
	var flags byte
	if e.Retained {
		flags = 1
	}
	buf = append(buf, e.QoS, flags)
	buf = binary.AppendUvarint(buf, uint64(len(e.Topic)))
	buf = append(buf, e.Topic...)
	buf = append(buf, e.Payload...)
	h := buf[start : start+recHeader]
	binary.LittleEndian.PutUint32(h, recSync)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(buf)-start-recHeader))
	binary.LittleEndian.PutUint32(h[8:], crc32.Checksum(buf[start+recHeader:], castagnoli))
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return buf
}

// record is an intact record found in a segment.
type record struct {
	entry
	timed    bool // entry.at was read from the record (version 2)
	off, end int  // its bytes in the file
}

// damage is a byte range of a segment that holds no intact record.
type damage struct {
	off, end int
	cause    string // what was wrong where the damage starts
	// framed counts the records inside whose header is intact but whose
	// body is not: a lower bound of the records lost there.
	framed int
	// torn is set for damage at the end of the file that looks like a
	// write cut short: part of one record, or zeros.
	torn bool
}

// segmentScan is what parseSegment found in a segment file.
type segmentScan struct {
	version int      // 1 or 2; 0 when the header is not a segment's
	recs    []record // IDs strictly increasing
	damage  []damage // in file order, not overlapping recs
}

// parseSegment decodes a segment file. It never fails: whatever does not
// decode is reported as damage, and in a version 2 file the records after
// a damaged one are still found.
func parseSegment(data []byte) segmentScan {
	switch {
	case bytes.HasPrefix(data, []byte(segMagicV1)):
		return parseSegmentV1(data)
	case bytes.HasPrefix(data, []byte(segMagic)):
		return scanRecords(data, segHeader, 2, "")
	case len(data) < segHeader && bytes.HasPrefix([]byte(segMagic), data):
		sc := segmentScan{version: 2}
		if len(data) > 0 {
			sc.damage = []damage{{off: 0, end: len(data), cause: "segment header cut short", torn: true}}
		}
		return sc
	}
	// A damaged header: records may still be intact.
	return scanRecords(data, 0, 0, "not a spool segment header")
}

// scanRecords reads version 2 records from data[pos:]. cause, if set, is
// damage that starts at pos.
func scanRecords(data []byte, pos, version int, cause string) segmentScan {
	sc := segmentScan{version: version}
	// A crafted file could hold many intact headers claiming long
	// bodies; bound the checksum work to keep the scan linear.
	budget := 8*len(data) + 1<<16
	var last uint64
	open := -1 // start of the damage being scanned, or -1
	var cur damage
	if cause != "" {
		open, cur = pos, damage{off: pos, cause: cause}
	}
	for pos < len(data) {
		r, n, why, framed := tryRecord(data, pos, last, len(sc.recs) > 0, &budget)
		if why == "" {
			if open >= 0 && pos > cur.off {
				cur.end = pos
				cur.torn = false // intact records follow
				sc.damage = append(sc.damage, cur)
			}
			open = -1
			sc.recs = append(sc.recs, r)
			last = r.ID
			pos += n
			continue
		}
		if open < 0 {
			open, cur = pos, damage{off: pos, cause: why}
			cur.torn = isTorn(data[pos:], why)
		}
		if framed {
			cur.framed++
		}
		next := bytes.Index(data[pos+1:], syncBytes)
		if next < 0 {
			break
		}
		pos += 1 + next
	}
	if open >= 0 {
		cur.end = len(data)
		// Torn only if the cut-short record is the whole damage.
		cur.torn = cur.torn && cur.framed == 0 && !hasSync(data[cur.off+1:])
		if allZero(data[cur.off:]) {
			cur.torn = true
		}
		sc.damage = append(sc.damage, cur)
	}
	return sc
}

func hasSync(b []byte) bool { return bytes.Contains(b, syncBytes) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// isTorn tells whether rest, which failed to decode for reason why, starts
// like a record that was being written when the file ended.
func isTorn(rest []byte, why string) bool {
	switch why {
	case causeCutShort:
		return true
	case causeHeaderShort:
		n := min(len(rest), len(syncBytes))
		return bytes.Equal(rest[:n], syncBytes[:n])
	}
	return false
}

const (
	causeHeaderShort = "record header cut short"
	causeCutShort    = "record cut short"
)

// tryRecord decodes the record at data[pos:], which must have an ID above
// last (if haveLast). On failure it returns why, and framed when the
// record's header was intact (it spans a known length).
func tryRecord(data []byte, pos int, last uint64, haveLast bool, budget *int) (r record, n int, why string, framed bool) {
	rest := data[pos:]
	if len(rest) < recHeader {
		return r, 0, causeHeaderShort, false
	}
	h := rest[:recHeader]
	if binary.LittleEndian.Uint32(h) != recSync {
		return r, 0, "record sync marker missing", false
	}
	if crc32.Checksum(h[:12], castagnoli) != binary.LittleEndian.Uint32(h[12:]) {
		return r, 0, "record header checksum mismatch", false
	}
	size := binary.LittleEndian.Uint32(h[4:])
	if size < recFixed || size > maxRecord {
		return r, 0, fmt.Sprintf("record length %d invalid", size), false
	}
	if int64(size) > int64(len(rest)-recHeader) {
		return r, 0, causeCutShort, false
	}
	body := rest[recHeader : recHeader+int(size)]
	if *budget < len(body) {
		return r, 0, "record not checked: scan budget spent", true
	}
	*budget -= len(body)
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(h[8:]) {
		return r, 0, "record checksum mismatch", true
	}
	e, err := decodeBody(body, true)
	if err != nil {
		return r, 0, err.Error(), true
	}
	if e.ID == 0 || e.ID > maxID {
		return r, 0, fmt.Sprintf("record ID %d out of range", e.ID), true
	}
	if haveLast && e.ID <= last {
		return r, 0, fmt.Sprintf("record ID %d not after %d", e.ID, last), true
	}
	n = recHeader + int(size)
	return record{entry: e, timed: true, off: pos, end: pos + n}, n, "", false
}

// decodeBody decodes a record body; timed is set for version 2 bodies,
// which hold the spool clock at Add. The payload aliases b.
func decodeBody(b []byte, timed bool) (entry, error) {
	var e entry
	e.ID = binary.LittleEndian.Uint64(b)
	e.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[8:])))
	b = b[16:]
	if timed {
		e.at = time.Duration(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	e.QoS = b[0]
	e.Retained = b[1]&1 != 0
	tl, k := binary.Uvarint(b[2:])
	if k <= 0 || tl > uint64(len(b)-2-k) {
		return e, errors.New("record topic length invalid")
	}
	rest := b[2+k:]
	e.Topic = string(rest[:tl])
	if p := rest[tl:]; len(p) > 0 {
		e.Payload = p
	}
	return e, nil
}

// parseSegmentV1 reads a version 1 segment:
//
//	u32 body length | u32 CRC of body | body
//	body: u64 ID | i64 time (Unix ns) | u8 QoS | u8 flags | uvarint topic length | topic | payload
//
// That framing cannot be resynchronised: everything after the first damage
// is damage.
func parseSegmentV1(data []byte) segmentScan {
	sc := segmentScan{version: 1}
	pos := len(segMagicV1)
	fail := func(why string, torn bool) segmentScan {
		sc.damage = []damage{{off: pos, end: len(data), cause: why, torn: torn}}
		return sc
	}
	for pos < len(data) {
		rest := data[pos:]
		if len(rest) < recHeaderV1 {
			return fail(causeHeaderShort, true)
		}
		n := binary.LittleEndian.Uint32(rest)
		if n < recFixedV1 || n > maxRecord {
			return fail(fmt.Sprintf("record length %d invalid", n), false)
		}
		if int64(n) > int64(len(rest)-recHeaderV1) {
			return fail(causeCutShort, true)
		}
		body := rest[recHeaderV1 : recHeaderV1+int(n)]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(rest[4:]) {
			return fail("record checksum mismatch", false)
		}
		e, err := decodeBody(body, false)
		if err != nil {
			return fail(err.Error(), false)
		}
		if e.ID == 0 || e.ID > maxID {
			return fail(fmt.Sprintf("record ID %d out of range", e.ID), false)
		}
		if len(sc.recs) > 0 && e.ID <= sc.recs[len(sc.recs)-1].ID {
			return fail(fmt.Sprintf("record ID %d not after %d", e.ID, sc.recs[len(sc.recs)-1].ID), false)
		}
		end := pos + recHeaderV1 + int(n)
		sc.recs = append(sc.recs, record{entry: e, off: pos, end: end})
		pos = end
	}
	return sc
}

// checkpoint is the decoded checkpoint file.
type checkpoint struct {
	version      int // 1 or 2
	prefix, last uint64
	// Version 2 only: the spool clock when written, the offset from
	// Uptime to the spool clock, and the boot both belong to.
	clock, offset time.Duration
	boot          string
	acked         idSet
}

func appendCheckpoint(buf []byte, c *checkpoint) []byte {
	start := len(buf)
	buf = append(buf, ckMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, c.prefix)
	buf = binary.LittleEndian.AppendUint64(buf, c.last)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(c.clock))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(c.offset))
	boot := c.boot
	if len(boot) > maxBootID {
		boot = "" // not one the kernel gives: unknown
	}
	buf = append(buf, byte(len(boot)))
	buf = append(buf, boot...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(c.acked)))
	for _, r := range c.acked {
		buf = binary.LittleEndian.AppendUint64(buf, r.lo)
		buf = binary.LittleEndian.AppendUint64(buf, r.hi)
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf[start:], castagnoli))
}

// checkpointSize is the size of a checkpoint with boot ID boot and n ranges.
func checkpointSize(boot string, n int) int64 {
	if len(boot) > maxBootID {
		boot = ""
	}
	return int64(ckFixed + len(boot) + ckRange*n)
}

// parseCheckpoint decodes a checkpoint of either version. It allocates
// nothing beyond what b's length allows.
func parseCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) < len(ckMagic)+4 {
		return c, fmt.Errorf("checkpoint too short: %d bytes", len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	switch string(b[:len(ckMagic)]) {
	case ckMagic:
	case ckMagicV1:
		return parseCheckpointV1(body, sum)
	default:
		return c, errors.New("bad checkpoint header")
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return c, errors.New("checkpoint checksum mismatch")
	}
	p := body[len(ckMagic):]
	if len(p) < ckFixed-len(ckMagic)-4 {
		return c, fmt.Errorf("checkpoint too short: %d bytes", len(b))
	}
	c.version = 2
	c.prefix = binary.LittleEndian.Uint64(p)
	c.last = binary.LittleEndian.Uint64(p[8:])
	c.clock = time.Duration(binary.LittleEndian.Uint64(p[16:]))
	c.offset = time.Duration(binary.LittleEndian.Uint64(p[24:]))
	bl := int(p[32])
	p = p[33:]
	if len(p) < bl+4 {
		return c, fmt.Errorf("checkpoint boot ID length %d past the end", bl)
	}
	c.boot = string(p[:bl])
	n := binary.LittleEndian.Uint32(p[bl:])
	p = p[bl+4:]
	if uint64(len(p)) != uint64(n)*ckRange {
		return c, fmt.Errorf("checkpoint lists %d ranges in %d bytes", n, len(p))
	}
	if c.prefix > maxID || c.last > maxID {
		return c, fmt.Errorf("checkpoint IDs out of range: prefix %d, last %d", c.prefix, c.last)
	}
	c.acked = make(idSet, 0, n)
	for i := range int(n) {
		r := idRange{binary.LittleEndian.Uint64(p[ckRange*i:]), binary.LittleEndian.Uint64(p[ckRange*i+8:])}
		if r.lo > r.hi || r.lo <= c.prefix || r.hi > maxID || (i > 0 && r.lo <= c.acked[len(c.acked)-1].hi) {
			return c, fmt.Errorf("checkpoint range %d (%d..%d) out of order", i, r.lo, r.hi)
		}
		c.acked.addRange(r.lo, r.hi)
	}
	return c, nil
}

// parseCheckpointV1 decodes
//
//	ckMagicV1 | u64 prefix | u32 n | n × u64 ID | u32 CRC of all before
//
// It holds no clock: the ages of the messages are unknown.
func parseCheckpointV1(body []byte, sum uint32) (checkpoint, error) {
	const fixed = len(ckMagicV1) + 8 + 4
	c := checkpoint{version: 1}
	if len(body) < fixed {
		return c, errors.New("checkpoint too short")
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return c, errors.New("checkpoint checksum mismatch")
	}
	c.prefix = binary.LittleEndian.Uint64(body[len(ckMagicV1):])
	n := binary.LittleEndian.Uint32(body[len(ckMagicV1)+8:])
	if uint64(len(body)-fixed) != uint64(n)*8 {
		return c, errors.New("checkpoint length mismatch")
	}
	if c.prefix > maxID {
		return c, fmt.Errorf("checkpoint prefix %d out of range", c.prefix)
	}
	for i := range int(n) {
		id := binary.LittleEndian.Uint64(body[fixed+8*i:])
		if id > maxID {
			return c, fmt.Errorf("checkpoint ID %d out of range", id)
		}
		if id > c.prefix {
			c.acked.add(id)
		}
	}
	c.last = max(c.prefix, c.acked.max())
	return c, nil
}
