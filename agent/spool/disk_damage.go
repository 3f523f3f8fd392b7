package spool

import (
	"cmp"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

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
	if err := d.fs.Remove(d.path(name)); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// quarantine moves the file name to corrupt/ or, if keep is not nil,
// copies it there (data is its content) and then atomically replaces it
// with keep: a crash at any point leaves the file or keep in place, never
// neither. corrupt/ keeps the newest maxCorruptFiles files.
func (d *Disk) quarantine(name string, data, keep []byte) error {
	cdir := d.path(corruptDir)
	if err := d.fs.MkdirAll(cdir, 0o700); err != nil {
		return d.errorf("%w", err)
	}
	dst := filepath.Join(cdir, name)
	for i := 1; ; i++ {
		_, err := d.fs.Lstat(dst)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return d.errorf("%w", err)
		}
		dst = filepath.Join(cdir, name+"."+strconv.Itoa(i))
	}
	var err error
	if keep == nil {
		err = d.fs.Rename(d.path(name), dst)
	} else if err = d.fs.WriteSynced(dst, data, 0o600); err == nil {
		err = d.fs.Replace(d.path(name), keep, 0o600)
	}
	if err != nil {
		return d.errorf("%w", err)
	}
	d.pruneCorrupt(cdir)
	if err := d.fs.SyncDir(cdir); err != nil {
		return d.errorf("%w", err)
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
		return d.errorf("%w", err)
	}
	return nil
}

// pruneCorrupt deletes all but the newest maxCorruptFiles files of cdir, so
// repeated damage cannot fill the disk.
func (d *Disk) pruneCorrupt(cdir string) {
	entries, err := d.fs.ReadDir(cdir)
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
		if err := d.fs.Remove(filepath.Join(cdir, f.name)); err != nil {
			d.log.Warn("cannot prune damaged files", "file", f.name, "err", err)
		}
	}
}
