package spool

import (
	"errors"
	"io/fs"
	"slices"
)

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
		if err := d.fs.Remove(d.path(s.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
	if err := d.fs.Replace(path, buf, 0o600); err != nil {
		return d.errorf("%w", err)
	}
	d.ckBytes = int64(len(buf))
	if err := d.fs.SyncDir(d.dir); err != nil {
		return d.errorf("%s: %w", ckName, err)
	}
	return nil
}

// readCheckpoint returns the checkpoint, or a zero one if there is none or
// it is damaged (then it is moved aside).
func (d *Disk) readCheckpoint() (checkpoint, error) {
	data, err := d.fs.ReadFile(d.path(ckName))
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
		return checkpoint{}, d.quarantine(ckName, nil, nil)
	}
	d.ckBytes = int64(len(data))
	return ck, nil
}
