package spool

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
		data, err := d.fs.ReadFile(d.path(name))
		if err != nil {
			return d.errorf("%w", err)
		}
		files = append(files, segFile{name: name, data: data, scan: parseSegment(data)})
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
	entries, err := d.fs.ReadDir(d.dir)
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
			if err := d.fs.Remove(d.path(name)); err != nil {
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
	data []byte
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
			return nil, d.removeEmpty(name, len(f.data), first, next)
		case sc.version != 2: // version 1, or records without a header
			data := encodeSegment(sc.recs)
			if err := d.replace(name, data); err != nil {
				return nil, err
			}
			d.log.Info("spool segment rewritten in version 2", "file", name, "version", sc.version, "records", len(sc.recs))
			return sc.recs, d.addSegment(name, int64(len(data)), sc.recs)
		}
		return sc.recs, d.addSegment(name, int64(len(f.data)), sc.recs)
	}
	l := d.account(sc, first, next)
	d.st.DroppedCorrupt += l.lost
	switch {
	case l.foreign:
		d.log.Warn("not a spool segment, moved aside", "file", name, "bytes", len(f.data), "cause", sc.damage[0].cause)
		return nil, d.quarantine(name, nil, nil)
	case l.damaged == 0 && sc.version == 2: // only a write cut short: cut it off
		d.log.Warn("spool segment ends with a write cut short by a crash (that Add never returned); cut back to its last intact record",
			"file", name, "kept", len(sc.recs), "cut_bytes", l.torn)
		if len(sc.recs) == 0 {
			return nil, d.remove(name)
		}
		size := int64(sc.damage[0].off)
		if err := truncateSync(d.fs, path, size); err != nil {
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
	if err := d.quarantine(name, f.data, keep); err != nil {
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
	if err := d.fs.Replace(path, data, 0o600); err != nil {
		return d.errorf("%w", err)
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
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

func truncateSync(fsys fileSystem, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
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
