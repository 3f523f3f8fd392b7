package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	fs      fileSystem

	segs     []*segment // ordered by ID
	active   file       // open for append: the last of segs, or nil
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
	d := &Disk{dir: dir, segSize: segSize, fs: o.fs}
	d.init(l, o.clock, d, log)
	if err := d.fs.MkdirAll(dir, 0o700); err != nil {
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
