package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// On-disk layout of a Disk spool directory:
//
//	<first ID, 20 digits>.seg  segment: segMagic, then records
//	checkpoint                 what was acknowledged (ckMagic ...)
//	corrupt/<name>             damaged files moved aside on open
//	lock                       flock(2)ed while a Disk has the directory open
//
// A record is
//
//	u32 body length | u32 CRC-32C of body | body
//	body: u64 ID | i64 time (Unix ns) | u8 QoS | u8 flags (1 = retained) |
//	      uvarint topic length | topic | payload
//
// and the checkpoint is
//
//	ckMagic | u64 prefix | u32 n | n × u64 ID | u32 CRC-32C of all before
//
// where every ID at or below prefix, and every listed ID, has been
// acknowledged (delivered, rejected or dropped). All integers are little
// endian. Each Add appends its messages to the newest segment with one write
// and one fsync; a segment that reaches the segment size is closed and the
// next Add starts a new one. Each acknowledgement rewrites the small
// checkpoint atomically (temp file, fsync, rename, fsync of the directory),
// then deletes the segments that hold no live message any more. Nothing
// rewrites the segments in normal operation.
const (
	segMagic           = "EDSPSEG1"
	ckMagic            = "EDSPCKP1"
	segExt             = ".seg"
	ckName             = "checkpoint"
	lockName           = "lock"
	corruptDir         = "corrupt"
	recHeader          = 8
	recFixed           = 8 + 8 + 1 + 1 + 1 // smallest body: empty topic and payload
	maxRecord          = 1 << 30
	defaultSegmentSize = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Disk is a Spool kept as a write-ahead log in a directory, so messages
// survive an agent restart or crash. A message is durable once Add returns.
// Its messages are also held in memory (bounded by the limits), so Begin
// never reads the disk.
//
// On open, segments are replayed. A damaged record (checksum mismatch, or a
// record cut short by a crash) is logged; the damaged segment is moved to
// corrupt/ and the good records before the damage are kept. A damaged
// checkpoint is moved aside too, and then messages already acknowledged may be
// delivered again (at least once, never lost).
//
// Only one Disk, in this process or another, may have a directory open at a
// time: OpenDisk fails while another holds its lock (on Unix; elsewhere the
// caller must ensure it).
type Disk struct {
	core
	dir     string
	segSize int64

	segs   []*segment // ordered by ID
	active *os.File   // open for append: the last of segs, or nil

	ackPrefix uint64              // acknowledged: every ID <= ackPrefix ...
	acked     map[uint64]struct{} // ... and these, all > ackPrefix
	ckStale   bool                // the last checkpoint write failed

	lock *os.File // holds the directory lock while open

	buf []byte // scratch for records and the checkpoint
}

type segment struct {
	name        string
	first, last uint64
	size        int64
	live        int // records not acknowledged
}

// OpenDisk opens (creating it if needed) the spool directory dir, replaying
// the messages it holds. log receives warnings about damaged files; nil
// discards them.
func OpenDisk(dir string, l Limits, log *slog.Logger, opts ...Option) (*Disk, error) {
	o := buildOptions(opts)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "spool", "dir", dir)
	segSize := o.segSize
	if segSize <= 0 {
		segSize = defaultSegmentSize
	}
	d := &Disk{dir: dir, segSize: segSize, acked: map[uint64]struct{}{}}
	d.init(l, o.clock, d, log)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	d.lock = lock
	if err := d.load(); err != nil {
		d.closeStore()
		return nil, err
	}
	return d, nil
}

func (d *Disk) path(name string) string { return filepath.Join(d.dir, name) }

func (d *Disk) errorf(format string, args ...any) error {
	return fmt.Errorf("spool %s: "+format, append([]any{d.dir}, args...)...)
}

// load replays the directory into the in-memory queue.
func (d *Disk) load() error {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return d.errorf("%w", err)
	}
	var segNames []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == lockName:
		case strings.HasSuffix(name, ".tmp"):
			// An interrupted checkpoint or segment repair; the
			// original is still in place.
			if err := os.Remove(d.path(name)); err != nil {
				return d.errorf("%w", err)
			}
		case e.Type().IsRegular() && segID(name) > 0:
			segNames = append(segNames, name)
		}
	}
	slices.Sort(segNames) // fixed-width names: lexical order is ID order
	if err := d.readCheckpoint(); err != nil {
		return err
	}
	maxID := d.ackPrefix
	for id := range d.acked {
		maxID = max(maxID, id)
	}
	var msgs []Message
	for _, name := range segNames {
		recs, err := d.loadSegment(name)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		s := &segment{name: name, first: recs[0].ID}
		for _, m := range recs {
			s.first = min(s.first, m.ID)
			s.last = max(s.last, m.ID)
			maxID = max(maxID, m.ID)
			if _, ok := d.acked[m.ID]; m.ID <= d.ackPrefix || ok {
				continue
			}
			s.live++
			msgs = append(msgs, m)
		}
		d.segs = append(d.segs, s)
	}
	// IDs are unique across segments by construction; sorting guards
	// against a file renamed by hand.
	slices.SortStableFunc(msgs, func(a, b Message) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	msgs = slices.CompactFunc(msgs, func(a, b Message) bool { return a.ID == b.ID })
	d.last = maxID
	// This format does not record how long a message was held: count it
	// from now.
	at := d.now()
	for i := range msgs {
		d.q.pushBack(entry{Message: msgs[i], at: at})
		d.bytes += msgs[i].Size()
	}
	// The limits may have shrunk since the last run; evict persists what it
	// drops. Then persist the state and drop dead segments either way.
	if d.evict() == 0 {
		if err := d.ack(nil, d.prefix()); err != nil {
			return err
		}
	}
	return nil
}

// segID parses a segment file name, returning 0 if it is not one.
func segID(name string) uint64 {
	base, ok := strings.CutSuffix(name, segExt)
	if !ok || len(base) != 20 {
		return 0
	}
	id, err := strconv.ParseUint(base, 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// loadSegment returns the good records of a segment. A damaged segment is
// logged and moved to corrupt/, its good records rewritten in its place.
func (d *Disk) loadSegment(name string) ([]Message, error) {
	path := d.path(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, d.errorf("%w", err)
	}
	if len(data) == 0 {
		// Created, but the process died before the first write.
		if err := os.Remove(path); err != nil {
			return nil, d.errorf("%w", err)
		}
		return nil, nil
	}
	recs, good, perr := parseSegment(data)
	if perr == nil {
		if len(recs) == 0 { // header only
			if err := os.Remove(path); err != nil {
				return nil, d.errorf("%w", err)
			}
		}
		return recs, nil
	}
	d.log.Warn("damaged spool segment moved aside; records after the damage are lost",
		"file", name, "offset", good, "kept", len(recs), "lost_bytes", len(data)-good, "err", perr)
	var keep []byte
	if len(recs) > 0 {
		keep = data[:good]
	}
	if err := d.quarantine(name, keep); err != nil {
		return nil, err
	}
	return recs, nil
}

// quarantine moves the file name to corrupt/, first writing keep (if any)
// to a new file that takes its place.
func (d *Disk) quarantine(name string, keep []byte) error {
	path := d.path(name)
	tmp := path + ".tmp"
	if keep != nil {
		if err := writeFileSync(tmp, keep); err != nil {
			return d.errorf("%w", err)
		}
	}
	cdir := d.path(corruptDir)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return d.errorf("%w", err)
	}
	dst := filepath.Join(cdir, name)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = filepath.Join(cdir, name+"."+strconv.Itoa(i))
	}
	if err := os.Rename(path, dst); err != nil {
		return d.errorf("%w", err)
	}
	if keep != nil {
		if err := os.Rename(tmp, path); err != nil {
			return d.errorf("%w", err)
		}
	}
	if err := syncDir(cdir); err != nil {
		return d.errorf("%w", err)
	}
	if err := syncDir(d.dir); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// parseSegment decodes data, returning the records before the first damage,
// the length of data they span, and what the damage is.
func parseSegment(data []byte) ([]Message, int, error) {
	if len(data) < len(segMagic) || string(data[:len(segMagic)]) != segMagic {
		return nil, 0, errors.New("not a spool segment: bad header")
	}
	off := len(segMagic)
	var recs []Message
	for off < len(data) {
		rest := data[off:]
		if len(rest) < recHeader {
			return recs, off, fmt.Errorf("record header truncated at %d bytes", len(rest))
		}
		n := binary.LittleEndian.Uint32(rest)
		sum := binary.LittleEndian.Uint32(rest[4:])
		if n < recFixed || n > maxRecord {
			return recs, off, fmt.Errorf("record length %d invalid", n)
		}
		if int64(n) > int64(len(rest)-recHeader) {
			return recs, off, fmt.Errorf("record truncated: %d of %d bytes", len(rest)-recHeader, n)
		}
		body := rest[recHeader : recHeader+int(n)]
		if crc32.Checksum(body, castagnoli) != sum {
			return recs, off, errors.New("record checksum mismatch")
		}
		m, err := decodeRecord(body)
		if err != nil {
			return recs, off, err
		}
		recs = append(recs, m)
		off += recHeader + int(n)
	}
	return recs, off, nil
}

func appendRecord(buf []byte, m *Message) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recHeader)...)
	buf = binary.LittleEndian.AppendUint64(buf, m.ID)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.Time.UnixNano()))
	var flags byte
	if m.Retained {
		flags = 1
	}
	buf = append(buf, m.QoS, flags)
	buf = binary.AppendUvarint(buf, uint64(len(m.Topic)))
	buf = append(buf, m.Topic...)
	buf = append(buf, m.Payload...)
	body := buf[start+recHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, castagnoli))
	return buf
}

func decodeRecord(b []byte) (Message, error) {
	var m Message
	m.ID = binary.LittleEndian.Uint64(b)
	m.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[8:])))
	m.QoS = b[16]
	m.Retained = b[17]&1 != 0
	tl, k := binary.Uvarint(b[18:])
	if k <= 0 || tl > uint64(len(b)-18-k) {
		return m, errors.New("record topic length invalid")
	}
	rest := b[18+k:]
	m.Topic = string(rest[:tl])
	if p := rest[tl:]; len(p) > 0 {
		m.Payload = p // aliases the file buffer read on open
	}
	return m, nil
}

// persist implements backend: one write and one fsync per Add.
func (d *Disk) persist(batch []entry) error {
	if d.active != nil && d.segs[len(d.segs)-1].size >= d.segSize {
		if err := d.closeActive(); err != nil {
			return err
		}
	}
	if d.active == nil {
		if err := d.newSegment(batch[0].ID); err != nil {
			return err
		}
	}
	s := d.segs[len(d.segs)-1]
	buf := d.buf[:0]
	if s.size == 0 {
		buf = append(buf, segMagic...)
	}
	for i := range batch {
		buf = appendRecord(buf, &batch[i].Message)
	}
	d.buf = buf
	_, err := d.active.Write(buf)
	if err == nil {
		err = d.active.Sync()
	}
	if err != nil {
		d.abandonActive(s)
		return d.errorf("write %s: %w", s.name, err)
	}
	if s.live == 0 && s.size == 0 {
		s.first = batch[0].ID
	}
	s.size += int64(len(buf))
	s.last = batch[len(batch)-1].ID
	s.live += len(batch)
	return nil
}

// abandonActive stops appending to s after a failed write, cutting off what
// may have reached the file so no partial record sits between good ones.
func (d *Disk) abandonActive(s *segment) {
	if err := d.active.Truncate(s.size); err != nil {
		d.log.Warn("cannot cut off failed write; segment will be repaired on next open", "file", s.name, "err", err)
	}
	d.active.Close()
	d.active = nil
	if s.size == 0 {
		os.Remove(d.path(s.name))
		d.segs = d.segs[:len(d.segs)-1]
	}
}

func (d *Disk) newSegment(first uint64) error {
	name := fmt.Sprintf("%020d%s", first, segExt)
	f, err := os.OpenFile(d.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return d.errorf("%w", err)
	}
	if err := syncDir(d.dir); err != nil {
		f.Close()
		os.Remove(d.path(name))
		return d.errorf("%w", err)
	}
	d.active = f
	d.segs = append(d.segs, &segment{name: name, first: first, last: first})
	return nil
}

// closeActive stops appending to the newest segment, deleting it if nothing
// in it is live.
func (d *Disk) closeActive() error {
	if d.active == nil {
		return nil
	}
	err := d.active.Close()
	d.active = nil
	if err != nil {
		return d.errorf("%w", err)
	}
	return d.dropDeadSegments()
}

// ack implements backend: persist the checkpoint, then delete the segments
// left without live messages.
func (d *Disk) ack(ids []uint64, prefix uint64) error {
	for _, id := range ids {
		if s := d.segFor(id); s != nil {
			s.live--
		}
		if id > prefix {
			d.acked[id] = struct{}{}
		}
	}
	if prefix > d.ackPrefix {
		d.ackPrefix = prefix
		for id := range d.acked {
			if id <= prefix {
				delete(d.acked, id)
			}
		}
	}
	if err := d.writeCheckpoint(); err != nil {
		// Keep the segments: until a checkpoint lands, they are what
		// makes IDs continue after a restart.
		d.ckStale = true
		return err
	}
	d.ckStale = false
	return d.dropDeadSegments()
}

// segFor returns the segment holding id, or nil.
func (d *Disk) segFor(id uint64) *segment {
	i, _ := slices.BinarySearchFunc(d.segs, id, func(s *segment, id uint64) int {
		switch {
		case s.first > id:
			return 1
		case s.last < id:
			return -1
		}
		return 0
	})
	if i < len(d.segs) && d.segs[i].first <= id && id <= d.segs[i].last {
		return d.segs[i]
	}
	return nil
}

// dropDeadSegments deletes every segment without live messages except the
// one being appended to, and forgets their acknowledged IDs.
func (d *Disk) dropDeadSegments() error {
	if d.ckStale {
		return nil
	}
	var errs []error
	keep := d.segs[:0]
	var gone []*segment
	for i, s := range d.segs {
		if s.live > 0 || (d.active != nil && i == len(d.segs)-1) {
			keep = append(keep, s)
			continue
		}
		if err := os.Remove(d.path(s.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, d.errorf("%w", err))
			keep = append(keep, s)
			continue
		}
		gone = append(gone, s)
	}
	clear(d.segs[len(keep):])
	d.segs = keep
	if len(gone) > 0 && len(d.acked) > 0 {
		for id := range d.acked {
			for _, s := range gone {
				if s.first <= id && id <= s.last {
					delete(d.acked, id)
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (d *Disk) writeCheckpoint() error {
	ids := make([]uint64, 0, len(d.acked))
	for id := range d.acked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	buf := append(d.buf[:0], ckMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, d.ackPrefix)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ids)))
	for _, id := range ids {
		buf = binary.LittleEndian.AppendUint64(buf, id)
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	d.buf = buf
	path := d.path(ckName)
	if err := writeFileSync(path+".tmp", buf); err != nil {
		return d.errorf("%w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return d.errorf("%w", err)
	}
	if err := syncDir(d.dir); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

func (d *Disk) readCheckpoint() error {
	data, err := os.ReadFile(d.path(ckName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return d.errorf("%w", err)
	}
	prefix, ids, perr := parseCheckpoint(data)
	if perr != nil {
		d.log.Warn("damaged spool checkpoint moved aside; acknowledged messages may be delivered again",
			"file", ckName, "err", perr)
		return d.quarantine(ckName, nil)
	}
	d.ackPrefix = prefix
	for _, id := range ids {
		if id > prefix {
			d.acked[id] = struct{}{}
		}
	}
	return nil
}

func parseCheckpoint(b []byte) (uint64, []uint64, error) {
	const fixed = len(ckMagic) + 8 + 4
	if len(b) < fixed+4 || string(b[:len(ckMagic)]) != ckMagic {
		return 0, nil, errors.New("bad checkpoint header")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, errors.New("checkpoint checksum mismatch")
	}
	prefix := binary.LittleEndian.Uint64(body[len(ckMagic):])
	n := binary.LittleEndian.Uint32(body[len(ckMagic)+8:])
	if uint64(len(body)-fixed) != uint64(n)*8 {
		return 0, nil, errors.New("checkpoint length mismatch")
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(body[fixed+8*i:])
	}
	return prefix, ids, nil
}

// closeStore implements backend.
func (d *Disk) closeStore() error {
	var errs []error
	if d.ckStale {
		errs = append(errs, d.ack(nil, d.prefix()))
	}
	errs = append(errs, d.closeActive())
	if d.lock != nil {
		errs = append(errs, d.lock.Close()) // releases the lock
		d.lock = nil
	}
	return errors.Join(errs...)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
