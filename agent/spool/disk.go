package spool

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/edgedet/edgedet/internal/atomicfile"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Layout of a Disk spool directory (formats in format.go):
//
//	<first ID, 20 digits>.seg  segment: a header, then records
//	checkpoint                 what left the spool, and the spool clock
//	corrupt/<name>             damaged files moved aside on open (newest few)
//	lock                       flock(2)ed while a Disk has the directory open
//
// Each Add appends its messages to the newest segment with one write and
// one fsync; when a write would take the segment past the segment size, a
// new segment takes it. Each acknowledgement rewrites the small checkpoint
// atomically (temp file, fsync, rename, fsync of the directory), then
// deletes the segments that hold no live message any more. Nothing rewrites
// a segment in normal operation.
const (
	segExt             = ".seg"
	ckName             = "checkpoint"
	lockName           = "lock"
	corruptDir         = "corrupt"
	maxCorruptFiles    = 8
	defaultSegmentSize = 4 << 20
	minSegmentSize     = 64 << 10
)

// segmentSizeFor scales the segment size to the byte limit, so dropping the
// oldest segment when full drops about a sixteenth of the spool.
func segmentSizeFor(maxBytes int64) int64 {
	if maxBytes <= 0 {
		return defaultSegmentSize
	}
	return min(max(maxBytes/16, minSegmentSize), defaultSegmentSize)
}

// Disk is a Spool kept as a write-ahead log in a directory, so messages
// survive an agent restart or crash. A message is durable once Add returns.
// Its messages are also held in memory (bounded by the limits), so Begin
// never reads the disk.
//
// MaxBytes bounds the bytes of the spool's files (segments, including
// record framing and acknowledged records not deleted yet, and checkpoint),
// not only the messages' Size: when a write would pass it, the oldest
// segments are deleted whole and their live messages counted in
// DroppedFull. A message that could not fit even in an empty spool is
// refused with ErrTooLarge.
//
// How long a message was held (Limits.MaxAge) carries across restarts:
// records and checkpoint store the spool clock, and the checkpoint the boot
// it belongs to. Reopened in the same boot, the time the spool was closed
// counts (measured by Clock.Uptime); after a reboot it is unknown and counts
// as zero. A wall-clock step never counts.
//
// On open, segments are replayed. A damaged record is skipped and the next
// intact one found (records carry a sync marker and checksums); the records
// lost are counted in Stats.DroppedCorrupt and logged with the file and the
// cause, and the damaged file is moved to corrupt/ with its intact records
// rewritten in its place. A newest segment that ends in a write cut short by
// a crash (that Add never returned) is cut back to its last intact record. A
// damaged checkpoint is moved aside too, and then messages already
// acknowledged may be delivered again (at least once, never lost).
//
// Only one Disk, in this process or another, may have a directory open at a
// time: OpenDisk fails while another holds its lock (on Unix; elsewhere the
// caller must ensure it).
type Disk struct {
	core
	dir     string
	segSize int64

	segs     []*segment // ordered by ID
	active   *os.File   // open for append: the last of segs, or nil
	segBytes int64      // sum of segs' sizes

	ackPrefix uint64 // every ID <= ackPrefix left the spool ...
	acked     idSet  // ... and these, all > ackPrefix
	ckStale   bool   // the last checkpoint write failed
	ckBytes   int64  // size of the checkpoint file
	boot      string // the boot d.offset belongs to
	trimming  bool   // makeRoom is running
	opened    bool   // load completed

	lock *os.File // holds the directory lock while open

	buf     []byte   // scratch for records
	ckBuf   []byte   // scratch for the checkpoint
	dropIDs []uint64 // scratch for makeRoom
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
		segSize = segmentSizeFor(l.MaxBytes)
	}
	d := &Disk{dir: dir, segSize: segSize}
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
	names, err := d.listSegments()
	if err != nil {
		return err
	}
	ck, err := d.readCheckpoint()
	if err != nil {
		return err
	}
	d.ackPrefix, d.acked = ck.prefix, ck.acked
	d.acked.trim(d.ackPrefix)
	last := max(ck.last, ck.prefix, ck.acked.max())
	files := make([]segFile, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(d.path(name))
		if err != nil {
			return d.errorf("%w", err)
		}
		files = append(files, segFile{name: name, size: len(data), scan: parseSegment(data)})
	}
	d.startClock(ck, files)
	now := d.now()
	var recs []record
	for i := range files {
		for j := range files[i].scan.recs {
			if r := &files[i].scan.recs[j]; !r.timed || r.at < 0 || r.at > now {
				// How long a version 1 record was held is
				// unknown: count from this open.
				r.at = now
			}
		}
		var next uint64
		if i+1 < len(files) {
			next = segID(files[i+1].name)
		}
		rs, err := d.loadSegment(&files[i], next)
		if err != nil {
			return err
		}
		if len(rs) > 0 {
			last = max(last, segID(files[i].name), rs[len(rs)-1].ID)
		}
		recs = append(recs, rs...)
	}
	slices.SortFunc(d.segs, func(a, b *segment) int { return cmp.Compare(a.first, b.first) })
	// IDs are unique across segments by construction; sorting guards
	// against a file renamed by hand.
	slices.SortStableFunc(recs, func(a, b record) int { return cmp.Compare(a.ID, b.ID) })
	recs = slices.CompactFunc(recs, func(a, b record) bool { return a.ID == b.ID })
	d.last = max(last, d.acked.max())
	for i := range recs {
		e := recs[i].entry
		if e.ID <= d.ackPrefix || d.acked.has(e.ID) {
			continue
		}
		d.q.pushBack(e)
		d.bytes += e.Size()
	}
	// The limits may have shrunk since the last run: evict and makeRoom
	// persist what they drop. Then persist the state (the clock of this
	// run above all) and drop dead segments either way.
	d.evict()
	if _, err := d.makeRoom(0, false, false); err != nil {
		return err
	}
	if err := d.ack(nil, d.prefix()); err != nil {
		return err
	}
	d.opened = true
	return nil
}

// startClock sets the spool clock so that it continues from the previous
// run: exactly (Uptime is comparable) when the checkpoint was written
// during this boot, from the latest time on disk otherwise.
func (d *Disk) startClock(ck checkpoint, files []segFile) {
	valid := func(t time.Duration) bool { return t >= 0 && t <= maxClock }
	var latest time.Duration
	if ck.version == 2 && valid(ck.clock) {
		latest = ck.clock
	}
	for _, f := range files {
		for _, r := range f.scan.recs {
			if r.timed && valid(r.at) {
				latest = max(latest, r.at)
			}
		}
	}
	up := d.clock.Uptime()
	d.boot = d.clock.BootID()
	d.offset = latest - up // the downtime is unknown: count none
	if ck.version == 2 && d.boot != "" && ck.boot == d.boot &&
		ck.offset > -maxClock && ck.offset < maxClock {
		if s := up + ck.offset; s >= latest && valid(s) {
			d.offset = ck.offset
		}
	}
	d.lastS = 0
}

// listSegments removes leftovers of interrupted writes and returns the
// segment file names in ID order.
func (d *Disk) listSegments() ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, d.errorf("%w", err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == lockName:
		case strings.HasSuffix(name, ".tmp"):
			// An interrupted checkpoint or segment repair; the
			// original is still in place.
			if err := os.Remove(d.path(name)); err != nil {
				return nil, d.errorf("%w", err)
			}
		case e.Type().IsRegular() && segID(name) > 0:
			names = append(names, name)
		}
	}
	slices.Sort(names) // fixed-width names: lexical order is ID order
	return names, nil
}

// segID parses a segment file name, returning 0 if it is not one.
func segID(name string) uint64 {
	base, ok := strings.CutSuffix(name, segExt)
	if !ok || len(base) != 20 {
		return 0
	}
	id, err := strconv.ParseUint(base, 10, 64)
	if err != nil || id > maxID {
		return 0
	}
	return id
}

// segFile is a segment file read on open.
type segFile struct {
	name string
	size int
	scan segmentScan
}

// loadSegment returns the intact records of segment f and registers it.
// next is the first ID of the following segment, 0 if f is the newest.
// Damage is counted, logged and repaired (see Disk); a version 1 segment is
// rewritten in version 2, holding the ages its records now have.
func (d *Disk) loadSegment(f *segFile, next uint64) ([]record, error) {
	name, sc := f.name, f.scan
	path := d.path(name)
	first := segID(name)
	if len(sc.damage) == 0 {
		switch {
		case len(sc.recs) == 0:
			return nil, d.removeEmpty(name, f.size, first, next)
		case sc.version != 2: // version 1, or records without a header
			data := encodeSegment(sc.recs)
			if err := d.replace(name, data); err != nil {
				return nil, err
			}
			d.log.Info("spool segment rewritten in version 2", "file", name, "version", sc.version, "records", len(sc.recs))
			return sc.recs, d.addSegment(name, int64(len(data)), sc.recs)
		}
		return sc.recs, d.addSegment(name, int64(f.size), sc.recs)
	}
	l := d.account(sc, first, next)
	d.st.DroppedCorrupt += l.lost
	switch {
	case l.foreign:
		d.log.Warn("not a spool segment, moved aside", "file", name, "bytes", f.size, "cause", sc.damage[0].cause)
		return nil, d.quarantine(name, nil)
	case l.damaged == 0 && sc.version == 2: // only a write cut short: cut it off
		d.log.Warn("spool segment ends with a write cut short by a crash (that Add never returned); cut back to its last intact record",
			"file", name, "kept", len(sc.recs), "cut_bytes", l.torn)
		if len(sc.recs) == 0 {
			return nil, d.remove(name)
		}
		size := int64(sc.damage[0].off)
		if err := truncateSync(path, size); err != nil {
			return nil, d.errorf("%w", err)
		}
		return sc.recs, d.addSegment(name, size, sc.recs)
	}
	d.log.Warn("damaged spool segment: intact records kept, damaged ones lost",
		"file", name, "kept", len(sc.recs), "lost", l.lost, "lost_exact", l.exact,
		"offset", sc.damage[0].off, "damaged_bytes", l.damaged, "cut_bytes", l.torn,
		"cause", sc.damage[0].cause, "moved_to", filepath.Join(corruptDir, name))
	var keep []byte
	if len(sc.recs) > 0 {
		keep = encodeSegment(sc.recs)
	}
	if err := d.quarantine(name, keep); err != nil {
		return nil, err
	}
	if keep == nil {
		return nil, nil
	}
	return sc.recs, d.addSegment(name, int64(len(keep)), sc.recs)
}

// encodeSegment returns a version 2 segment holding recs.
func encodeSegment(recs []record) []byte {
	var n int64
	for i := range recs {
		n += recordSize(&recs[i].Message)
	}
	buf := make([]byte, 0, int64(segHeader)+n)
	buf = append(buf, segMagic...)
	for i := range recs {
		buf = appendRecord(buf, &recs[i].entry)
	}
	return buf
}

// replace atomically replaces the file name with data.
func (d *Disk) replace(name string, data []byte) error {
	path := d.path(name)
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// loss is what the damage of one segment cost.
type loss struct {
	lost    uint64 // messages lost
	exact   bool   // lost is exact (from the IDs), not a lower bound
	damaged int    // bytes of damage, writes cut short excluded
	torn    int    // bytes of a write cut short at the end
	foreign bool   // no sign that the file is a spool segment
}

// account counts the messages lost to sc's damage and marks their IDs as
// gone. IDs inside a segment are consecutive from its name's (first); the
// next segment's first ID (next, 0 if none) bounds the last. For damage at
// the end of the newest segment the IDs are unknown: a write cut short
// loses nothing that was confirmed; other damage loses at least the records
// whose header survived, and at least one.
func (d *Disk) account(sc segmentScan, first, next uint64) loss {
	l := loss{exact: true}
	if sc.version == 0 && len(sc.recs) == 0 {
		return loss{foreign: true, damaged: sc.damage[0].end}
	}
	for _, dm := range sc.damage {
		i, _ := slices.BinarySearchFunc(sc.recs, dm.end, func(r record, off int) int { return cmp.Compare(r.off, off) })
		prev := first - 1
		if i > 0 {
			prev = sc.recs[i-1].ID
		}
		switch {
		case i < len(sc.recs):
			l.damaged += dm.end - dm.off
			l.lost += d.forget(prev, sc.recs[i].ID)
		case next > 0:
			// A write cut short leaves a torn tail only in the
			// newest segment; here it also lost confirmed records
			// unless the IDs say otherwise.
			n := d.forget(prev, next)
			l.lost += n
			if dm.torn && n == 0 {
				l.torn += dm.end - dm.off
			} else {
				l.damaged += dm.end - dm.off
			}
		case dm.torn:
			l.torn += dm.end - dm.off
		default:
			l.damaged += dm.end - dm.off
			l.lost += uint64(max(1, dm.framed))
			l.exact = false
		}
	}
	return l
}

// forget counts the IDs strictly between a and b that had not left the
// spool, and records them as gone.
func (d *Disk) forget(a, b uint64) uint64 {
	if b <= a || b-a < 2 || d.ackPrefix == ^uint64(0) {
		return 0
	}
	lo, hi := max(a+1, d.ackPrefix+1), b-1
	if lo > hi {
		return 0
	}
	n := hi - lo + 1 - d.acked.count(lo, hi)
	d.acked.addRange(lo, hi)
	return n
}

// removeEmpty removes a segment without records (created, or cut back to
// its header, just before a crash; or damaged). When a segment follows,
// the IDs between tell what it held.
func (d *Disk) removeEmpty(name string, size int, first, next uint64) error {
	var lost uint64
	if next > 0 {
		lost = d.forget(first-1, next)
	}
	d.st.DroppedCorrupt += lost
	d.log.Warn("empty spool segment removed", "file", name, "bytes", size, "lost", lost)
	return d.remove(name)
}

func (d *Disk) remove(name string) error {
	if err := os.Remove(d.path(name)); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// addSegment registers a segment file holding recs.
func (d *Disk) addSegment(name string, size int64, recs []record) error {
	s := &segment{name: name, first: recs[0].ID, last: recs[len(recs)-1].ID, size: size}
	for _, r := range recs {
		if r.ID > d.ackPrefix && !d.acked.has(r.ID) {
			s.live++
		}
	}
	d.segs = append(d.segs, s)
	d.segBytes += size
	return nil
}

// quarantine moves the file name to corrupt/, first writing keep (if any)
// to a new file that takes its place. corrupt/ keeps the newest
// maxCorruptFiles files.
func (d *Disk) quarantine(name string, keep []byte) error {
	path := d.path(name)
	tmp := path + ".tmp"
	if keep != nil {
		if err := atomicfile.WriteSynced(tmp, keep, 0o600); err != nil {
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
	d.pruneCorrupt(cdir)
	if err := atomicfile.SyncDir(cdir); err != nil {
		return d.errorf("%w", err)
	}
	if err := atomicfile.SyncDir(d.dir); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// pruneCorrupt deletes all but the newest maxCorruptFiles files of cdir, so
// repeated damage cannot fill the disk.
func (d *Disk) pruneCorrupt(cdir string) {
	entries, err := os.ReadDir(cdir)
	if err != nil || len(entries) <= maxCorruptFiles {
		return
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			files = append(files, file{e.Name(), fi.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return a.mod.Compare(b.mod) })
	for _, f := range files[:max(0, len(files)-maxCorruptFiles)] {
		if err := os.Remove(filepath.Join(cdir, f.name)); err != nil {
			d.log.Warn("cannot prune damaged files", "file", f.name, "err", err)
		}
	}
}

// tooLarge implements backend: a message fits if it fits an empty spool.
func (d *Disk) tooLarge(topic string, size int64) error {
	max := d.limits.MaxBytes
	if max <= 0 {
		return nil
	}
	if need := recordBytes(len(topic), size) + int64(segHeader) + 2*checkpointSize(d.boot, 1); need > max {
		return fmt.Errorf("spool: message on topic %q (%d bytes) needs %d bytes on disk, over the %d-byte limit: %w",
			topic, size, need, max, ErrTooLarge)
	}
	return nil
}

// persist implements backend: one write and one fsync per Add, after
// making room for it. A batch larger than the spool loses its oldest
// messages at once (as Memory would evict them): they are not written, and
// skip says how many.
func (d *Disk) persist(batch []entry) (skip, dropped int, err error) {
	if limit := d.limits.MaxBytes; limit > 0 {
		room := limit - int64(segHeader) - 2*checkpointSize(d.boot, 1)
		skip = len(batch)
		for skip > 0 && recordSize(&batch[skip-1].Message) <= room {
			skip--
			room -= recordSize(&batch[skip].Message)
		}
		for _, e := range batch[:skip] {
			d.acked.add(e.ID)
		}
		d.st.DroppedFull += uint64(skip)
		batch = batch[skip:]
	}
	buf := append(d.buf[:0], segMagic...)
	for i := range batch {
		buf = appendRecord(buf, &batch[i])
	}
	d.buf = buf
	recs := int64(len(buf) - segHeader)
	// Older messages go before the batch's own (skip > 0: all of them).
	dropped, err = d.makeRoom(recs, true, skip > 0)
	dropped += skip
	if err != nil {
		return skip, dropped, err
	}
	if d.active != nil && d.rollover(recs) {
		if err := d.closeActive(); err != nil {
			return skip, dropped, err
		}
	}
	if d.active == nil {
		if err := d.newSegment(batch[0].ID); err != nil {
			return skip, dropped, err
		}
	}
	s := d.segs[len(d.segs)-1]
	if s.size > 0 {
		buf = buf[segHeader:]
	}
	_, err = d.active.Write(buf)
	if err == nil {
		err = d.active.Sync()
	}
	if err != nil {
		d.abandonActive(s)
		return skip, dropped, d.errorf("write %s: %w", s.name, err)
	}
	if s.size == 0 {
		s.first = batch[0].ID
	}
	s.size += int64(len(buf))
	d.segBytes += int64(len(buf))
	s.last = batch[len(batch)-1].ID
	s.live += len(batch)
	return skip, dropped, nil
}

// rollover tells whether n more record bytes go to a new segment: the
// active one has records and would pass the segment size.
func (d *Disk) rollover(n int64) bool {
	s := d.segs[len(d.segs)-1]
	return s.size > int64(segHeader) && s.size+n > d.segSize
}

// ckReserve is the room kept for the checkpoint: its next version (with one
// more range of acknowledged IDs) and the temporary copy written next to it.
func (d *Disk) ckReserve() int64 { return 2 * checkpointSize(d.boot, len(d.acked)+1) }

// makeRoom deletes the oldest segments whole, dropping their live messages
// (counted in DroppedFull), until the files plus n more record bytes (and,
// for a write, the header of a new segment if one is needed) fit in
// MaxBytes; with all, it deletes every segment. It returns how many
// messages it dropped.
func (d *Disk) makeRoom(n int64, write, all bool) (int, error) {
	limit := d.limits.MaxBytes
	if limit <= 0 || d.trimming {
		return 0, nil
	}
	total := d.segBytes + d.ckReserve() + n
	k := 0
	if all {
		k, total = len(d.segs), d.ckReserve()+n
	}
	for {
		hdr := int64(0)
		if write && (d.active == nil || k == len(d.segs) || d.rollover(n)) {
			hdr = int64(segHeader)
		}
		if total+hdr <= limit {
			break
		}
		if k == len(d.segs) {
			if !write {
				break // MaxBytes is smaller than an empty spool: drop all
			}
			return 0, d.errorf("%d bytes do not fit in %d: %w", n+hdr, limit, ErrTooLarge)
		}
		total -= d.segs[k].size
		k++
	}
	if k == 0 {
		return 0, nil
	}
	d.trimming = true
	defer func() { d.trimming = false }()
	through := d.segs[k-1].last
	ids := d.dropIDs[:0]
	for e := d.oldest(); e != nil && e.ID <= through; e = d.oldest() {
		id, _ := d.dropOldest()
		ids = append(ids, id)
	}
	d.dropIDs = ids[:0]
	d.st.DroppedFull += uint64(len(ids))
	for _, s := range d.segs[:k] {
		s.live = 0 // all gone now, whatever the IDs say
	}
	if k == len(d.segs) && d.active != nil {
		d.active.Close()
		d.active = nil
	}
	if err := d.ack(ids, d.prefix()); err != nil {
		return len(ids), err
	}
	if len(d.segs) > 0 && d.segs[0].last <= through {
		return len(ids), d.errorf("cannot delete segment %s to make room", d.segs[0].name)
	}
	return len(ids), nil
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
	if err := atomicfile.SyncDir(d.dir); err != nil {
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
		if s := d.segFor(id); s != nil && s.live > 0 {
			s.live--
		}
		if id > prefix {
			d.acked.add(id)
		}
	}
	if prefix > d.ackPrefix {
		d.ackPrefix = prefix
		d.acked.trim(prefix)
	}
	if err := d.writeCheckpoint(); err != nil {
		// Keep the segments: until a checkpoint lands, they are what
		// makes IDs continue after a restart.
		d.ckStale = true
		return err
	}
	d.ckStale = false
	err := d.dropDeadSegments()
	// A checkpoint that grew may need room.
	if _, rerr := d.makeRoom(0, false, false); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
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
// one being appended to.
func (d *Disk) dropDeadSegments() error {
	if d.ckStale {
		return nil
	}
	var errs []error
	keep := d.segs[:0]
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
		d.segBytes -= s.size
	}
	clear(d.segs[len(keep):])
	d.segs = keep
	return errors.Join(errs...)
}

func (d *Disk) writeCheckpoint() error {
	ck := checkpoint{
		prefix: d.ackPrefix, last: d.last, acked: d.acked,
		clock: d.now(), offset: d.offset, boot: d.boot,
	}
	buf := appendCheckpoint(d.ckBuf[:0], &ck)
	d.ckBuf = buf
	path := d.path(ckName)
	if err := atomicfile.Replace(path, buf, 0o600); err != nil {
		return d.errorf("%w", err)
	}
	d.ckBytes = int64(len(buf))
	if err := atomicfile.SyncDir(d.dir); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// readCheckpoint returns the checkpoint, or a zero one if there is none or
// it is damaged (then it is moved aside).
func (d *Disk) readCheckpoint() (checkpoint, error) {
	data, err := os.ReadFile(d.path(ckName))
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, nil
	}
	if err != nil {
		return checkpoint{}, d.errorf("%w", err)
	}
	ck, perr := parseCheckpoint(data)
	if perr != nil {
		d.log.Warn("damaged spool checkpoint moved aside; acknowledged messages may be delivered again",
			"file", ckName, "err", perr)
		return checkpoint{}, d.quarantine(ckName, nil)
	}
	d.ckBytes = int64(len(data))
	return ck, nil
}

// diskBytes implements backend.
func (d *Disk) diskBytes() int64 { return d.segBytes + d.ckBytes }

// closeStore implements backend.
func (d *Disk) closeStore() error {
	var errs []error
	if d.opened { // record the acknowledgements and the clock
		errs = append(errs, d.ack(nil, d.prefix()))
		d.opened = false
	}
	errs = append(errs, d.closeActive())
	if d.lock != nil {
		errs = append(errs, d.lock.Close()) // releases the lock
		d.lock = nil
	}
	return errors.Join(errs...)
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
