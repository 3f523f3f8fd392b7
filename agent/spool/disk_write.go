package spool

import (
	"fmt"
	"os"
)

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
		d.fs.Remove(d.path(s.name))
		d.segs = d.segs[:len(d.segs)-1]
	}
}

func (d *Disk) newSegment(first uint64) error {
	name := fmt.Sprintf("%020d%s", first, segExt)
	f, err := d.fs.OpenFile(d.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return d.errorf("%w", err)
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
		f.Close()
		d.fs.Remove(d.path(name))
		return d.errorf("create %s: %w", name, err)
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
