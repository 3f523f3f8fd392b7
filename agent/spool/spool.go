// Package spool holds MQTT messages the agent could not deliver yet, so a
// broker outage loses nothing within the spool's limits. It is modelled on
// Telegraf's transactional buffer: messages are added at the back, a flush
// takes the oldest ones in a transaction (Begin), publishes them and reports
// per message what happened (Accept, Reject, or neither = keep), and End
// applies that report. Kept messages return to the front, so the delivery
// order is preserved.
//
// Two implementations share the same semantics and the same test suite:
// Memory, a ring buffer, and Disk, a write-ahead log of segment files that
// survives a restart or a crash.
//
// # Guarantee
//
// A message that Add accepted leaves the spool in exactly one of these
// ways, each counted in Stats:
//
//   - Delivered: a transaction accepted it. Until then it is handed out
//     again by every Begin, in order. A Disk spool has it on disk (written
//     and fsynced) when Add returns and keeps it through restarts and
//     crashes; after a crash, a message whose acceptance had not reached
//     the disk yet is handed out again, with the same ID (at least once).
//   - DroppedFull: the spool was full (MaxMessages, or MaxBytes: the
//     messages' Size for Memory, the files for Disk). The oldest messages
//     go first, never the one being added; a Disk spool drops whole oldest
//     segments, about a sixteenth of MaxBytes at a time.
//   - DroppedAge: it had been held longer than MaxAge when a Begin reached
//     it. Held time is measured on a monotonic clock from Add (across
//     restarts for Disk: see OpenDisk), never from publish.Message.Time or the
//     wall clock, so a clock step never expires a message.
//   - DroppedRejected: the publisher rejected it as undeliverable.
//   - DroppedCorrupt (Disk): its record was damaged on disk, found when the
//     spool was opened; the count is exact when the IDs around the damage
//     tell it, and logged with the file and the cause.
//
// A Memory spool loses what it holds when the process exits. Add refuses a
// message that could never fit (ErrTooLarge) and, for Disk, one it cannot
// write (an I/O error): those were never in the spool.
package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("spool closed")

// ErrTooLarge is wrapped by the error Add returns for a message whose Size is
// over Limits.MaxBytes: such a message could never fit, so it is rejected
// instead of emptying the spool to make room for it.
var ErrTooLarge = errors.New("message too large")

// Limits bound a spool. A zero (or negative) field means unlimited.
type Limits struct {
	MaxMessages int
	MaxBytes    int64
	// MaxAge bounds how long the spool holds a message: the time since
	// Add, measured on Clock.Uptime (never on the wall clock, so a
	// clock step neither expires nor extends a message). A Disk spool
	// carries that time across restarts; see OpenDisk.
	MaxAge time.Duration
}

// Stats is a snapshot of a spool's size and counters. Len and Bytes include
// the messages of an open transaction. Counters start at zero when the spool
// is created or opened.
type Stats struct {
	Len   int
	Bytes int64
	// Added counts messages accepted by Add.
	Added uint64
	// Delivered counts messages a transaction accepted.
	Delivered uint64
	// DroppedFull counts the oldest messages dropped to respect
	// MaxMessages or MaxBytes.
	DroppedFull uint64
	// DroppedAge counts messages dropped by Begin for having been held
	// longer than MaxAge.
	DroppedAge uint64
	// DroppedRejected counts messages a transaction rejected (malformed,
	// oversize for the broker, ...): they are removed, never retried.
	DroppedRejected uint64
	// DroppedCorrupt counts messages a Disk spool found damaged on disk
	// when it was opened (each one is also logged with the file and the
	// cause). Always 0 for Memory.
	DroppedCorrupt uint64
	// DiskBytes is the size of a Disk spool's files (segments and
	// checkpoint), which Limits.MaxBytes bounds. Always 0 for Memory.
	DiskBytes int64
}

// Lost counts the messages that left the spool undelivered because of its
// limits or damage on disk: DroppedFull + DroppedAge + DroppedCorrupt.
// (Rejected messages are the broker's refusal, counted apart.)
func (s Stats) Lost() uint64 { return s.DroppedFull + s.DroppedAge + s.DroppedCorrupt }

// Spool is a FIFO of messages with transactional reads. All methods are safe
// for concurrent use.
//
// Lifecycle: Add any time; a flush calls Begin, publishes tx.Messages, marks
// each one with tx.Accept / tx.Reject (unmarked ones are kept) and calls End
// exactly once. Only one transaction is open at a time: a Begin before the
// previous transaction's End returns an empty Tx, whose End does nothing.
// While a transaction is open, its messages still count against the limits;
// if Add must drop messages to make room, the transaction's messages are the
// oldest and go first, and End then ignores them. After Close, Add returns
// ErrClosed, Begin returns an empty Tx and End does nothing.
type Spool interface {
	// Add appends msgs, assigning their IDs, and returns how many older
	// messages it dropped to respect the limits. A message larger than
	// MaxBytes is not added and makes Add return an error wrapping
	// ErrTooLarge that names its topic and size; the other messages of
	// the call are still added.
	Add(msgs ...publish.Message) (dropped int, err error)
	// Begin takes up to max of the oldest messages into a transaction,
	// first dropping (and counting) expired ones it meets. It never
	// returns nil.
	Begin(max int) *Tx
	// End applies tx: accepted and rejected messages are removed, kept
	// ones return to the front in their original order.
	End(tx *Tx)
	// Len is the number of messages held, including an open transaction's.
	Len() int
	Stats() Stats
	// Close releases the spool; it is idempotent. Messages still held by a
	// Memory spool are lost; a Disk spool keeps them for the next
	// OpenDisk, including those of a transaction that was never ended.
	Close() error
}

var (
	_ Spool = (*Memory)(nil)
	_ Spool = (*Disk)(nil)
)

const (
	kept uint8 = iota
	accepted
	rejected
)

// Tx is a transaction returned by Begin. Messages are the oldest messages of
// the spool in order; they share payloads with the spool and must not be
// modified. A Tx is used by one goroutine. Its methods are safe on a nil Tx.
type Tx struct {
	Messages []publish.Message
	marks    []uint8
}

// Accept marks the messages at indexes i as delivered. Out-of-range indexes
// are ignored; the last mark of an index wins.
func (t *Tx) Accept(i ...int) { t.mark(accepted, i) }

// Reject marks the messages at indexes i as undeliverable: End removes them
// and counts them in Stats.DroppedRejected.
func (t *Tx) Reject(i ...int) { t.mark(rejected, i) }

// AcceptAll marks every message as delivered.
func (t *Tx) AcceptAll() {
	if t == nil {
		return
	}
	for i := range t.marks {
		t.marks[i] = accepted
	}
}

func (t *Tx) mark(v uint8, idx []int) {
	if t == nil {
		return
	}
	for _, i := range idx {
		if i >= 0 && i < len(t.marks) {
			t.marks[i] = v
		}
	}
}

// backend persists what core does; Disk implements it. Its methods are
// called with core.mu held.
type backend interface {
	// tooLarge returns an error wrapping ErrTooLarge if a message on
	// topic of the given Size could not fit even in an empty spool.
	tooLarge(topic string, size int64) error
	// persist makes batch durable before it is queued, first dropping
	// (and counting) the oldest messages if it needs room; it returns
	// how many it dropped, of which the first skip of batch (not
	// written: the batch alone is over the limits).
	persist(batch []entry) (skip, dropped int, err error)
	// ack records that ids left the spool; no live message has an ID at or
	// below prefix.
	ack(ids []uint64, prefix uint64) error
	closeStore() error
	// diskBytes is the size of the backend's files.
	diskBytes() int64
}

// entry is a queued message with the spool-clock reading of its Add.
type entry struct {
	publish.Message
	at time.Duration
}

// core is the queue logic shared by Memory and Disk.
//
// The spool clock is clock.Uptime() + offset: Memory uses offset 0; Disk
// sets offset on open so that the clock continues where the previous run
// left it (see Disk.load). Held time is the spool clock minus entry.at.
type core struct {
	mu     sync.Mutex
	limits Limits
	clock  Clock
	offset time.Duration // spool clock minus clock.Uptime()
	lastS  time.Duration // latest spool-clock reading: it never goes back
	be     backend       // nil for Memory
	log    *slog.Logger  // backend errors that End cannot return

	q       ring
	bytes   int64 // live bytes: queued plus in flight (not evicted)
	last    uint64
	pending uint64 // first ID of the batch being persisted, or 0

	tx       *Tx     // open transaction, or nil
	inflight []entry // tx's messages, owned by the spool
	evicted  int     // inflight[:evicted] were dropped by Add during tx

	st     Stats
	closed bool

	batch []entry  // scratch for Add
	ids   []uint64 // scratch for removed IDs
}

func (c *core) init(l Limits, clock Clock, be backend, log *slog.Logger) {
	c.limits = l
	c.clock = clock
	c.be = be
	c.log = log
}

// now reads the spool clock.
func (c *core) now() time.Duration {
	s := c.clock.Uptime() + c.offset
	if s < c.lastS {
		s = c.lastS
	}
	c.lastS = s
	return s
}

// Add implements Spool.
func (c *core) Add(msgs ...publish.Message) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	var errs []error
	var wall time.Time
	at := c.now()
	batch := c.batch[:0]
	for _, m := range msgs {
		if err := c.tooLarge(m.Topic, m.Size()); err != nil {
			errs = append(errs, err)
			continue
		}
		if m.Time.IsZero() {
			if wall.IsZero() {
				wall = c.clock.Now()
			}
			m.Time = wall
		}
		c.last++
		m.ID = c.last
		batch = append(batch, entry{Message: m, at: at})
	}
	all := batch
	defer func() { clear(all); c.batch = all[:0] }()
	if len(batch) == 0 {
		return 0, errors.Join(errs...)
	}
	var dropped int
	added := len(batch)
	if c.be != nil {
		c.pending = batch[0].ID
		skip, n, err := c.be.persist(batch)
		c.pending = 0
		dropped = n
		batch = batch[skip:]
		if err != nil {
			// The IDs are spent: record them as gone so that no
			// partial write of them comes back after a restart.
			ids := c.ids[:0]
			for i := range batch {
				ids = append(ids, batch[i].ID)
			}
			c.removed(ids)
			c.st.Added += uint64(skip) // counted in DroppedFull
			return dropped, errors.Join(append(errs, err)...)
		}
	}
	for i := range batch {
		c.q.pushBack(batch[i])
		c.bytes += batch[i].Size()
	}
	c.st.Added += uint64(added)
	return dropped + c.evict(), errors.Join(errs...)
}

// tooLarge returns an error wrapping ErrTooLarge if a message on topic of
// the given Size could never fit the limits.
func (c *core) tooLarge(topic string, size int64) error {
	if c.be != nil {
		return c.be.tooLarge(topic, size)
	}
	if max := c.limits.MaxBytes; max > 0 && size > max {
		return fmt.Errorf("spool: message on topic %q is %d bytes, over the %d-byte limit: %w",
			topic, size, max, ErrTooLarge)
	}
	return nil
}

func (c *core) lenLocked() int {
	n := c.q.n
	if c.tx != nil {
		n += len(c.inflight) - c.evicted
	}
	return n
}

func (c *core) over() bool {
	l := c.limits
	return (l.MaxMessages > 0 && c.lenLocked() > l.MaxMessages) ||
		(l.MaxBytes > 0 && c.bytes > l.MaxBytes)
}

// evict drops the oldest messages, in flight first, until the limits hold.
func (c *core) evict() int {
	ids := c.ids[:0]
	for c.over() {
		id, ok := c.dropOldest()
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	c.st.DroppedFull += uint64(len(ids))
	c.removed(ids)
	return len(ids)
}

// oldest returns the oldest live message (in flight first), or nil.
func (c *core) oldest() *entry {
	if c.tx != nil && c.evicted < len(c.inflight) {
		return &c.inflight[c.evicted]
	}
	if c.q.n > 0 {
		return c.q.at(0)
	}
	return nil
}

// dropOldest removes the oldest live message, in flight first, without
// counting or persisting it, and returns its ID.
func (c *core) dropOldest() (uint64, bool) {
	if c.tx != nil && c.evicted < len(c.inflight) {
		m := &c.inflight[c.evicted]
		c.evicted++
		c.bytes -= m.Size()
		return m.ID, true
	}
	if c.q.n > 0 {
		m := c.q.popFront()
		c.bytes -= m.Size()
		return m.ID, true
	}
	return 0, false
}

// prefix is the largest ID such that no live message, nor the batch being
// persisted, has an ID at or below it.
func (c *core) prefix() uint64 {
	p := c.last
	if e := c.oldest(); e != nil {
		p = e.ID - 1
	}
	if c.pending > 0 {
		p = min(p, c.pending-1)
	}
	return p
}

// removed tells the backend that ids left the spool and recycles the slice.
func (c *core) removed(ids []uint64) {
	if c.be != nil && len(ids) > 0 {
		if err := c.be.ack(ids, c.prefix()); err != nil {
			c.log.Warn("spool acknowledgement not persisted; messages may be delivered again after a restart", "err", err)
		}
	}
	c.ids = ids[:0]
}

// Begin implements Spool.
func (c *core) Begin(max int) *Tx {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.tx != nil || max <= 0 {
		return &Tx{}
	}
	now := c.now()
	ids := c.ids[:0]
	c.inflight = c.inflight[:0]
	for len(c.inflight) < max && c.q.n > 0 {
		e := c.q.popFront()
		if c.limits.MaxAge > 0 && now-e.at > c.limits.MaxAge {
			c.bytes -= e.Size()
			c.st.DroppedAge++
			ids = append(ids, e.ID)
			continue
		}
		c.inflight = append(c.inflight, e)
	}
	tx := &Tx{}
	if len(c.inflight) > 0 {
		tx.Messages = make([]publish.Message, len(c.inflight))
		for i := range c.inflight {
			tx.Messages[i] = c.inflight[i].Message
		}
		tx.marks = make([]uint8, len(c.inflight))
		c.tx = tx
		c.evicted = 0
	}
	c.removed(ids)
	return tx
}

// End implements Spool.
func (c *core) End(tx *Tx) {
	if tx == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != tx {
		return
	}
	ids := c.ids[:0]
	for i := len(c.inflight) - 1; i >= c.evicted; i-- {
		m := &c.inflight[i]
		switch tx.marks[i] {
		case accepted:
			c.st.Delivered++
		case rejected:
			c.st.DroppedRejected++
		default:
			c.q.pushFront(*m)
			continue
		}
		c.bytes -= m.Size()
		ids = append(ids, m.ID)
	}
	clear(c.inflight)
	c.inflight = c.inflight[:0]
	c.tx = nil
	c.evicted = 0
	c.removed(ids)
}

// Len implements Spool.
func (c *core) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lenLocked()
}

// Stats implements Spool.
func (c *core) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Len = c.lenLocked()
	s.Bytes = c.bytes
	if c.be != nil {
		s.DiskBytes = c.be.diskBytes()
	}
	return s
}

// Close implements Spool.
func (c *core) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.be != nil {
		// With the transaction still open: its messages are live, and
		// the last checkpoint must not count them as gone.
		err = c.be.closeStore()
	}
	c.tx = nil
	return err
}

// ring is a growable FIFO of entries that can also push at the front.
type ring struct {
	buf     []entry
	head, n int
}

func (r *ring) at(i int) *entry { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) grow() {
	nb := make([]entry, max(16, 2*len(r.buf)))
	for i := 0; i < r.n; i++ {
		nb[i] = *r.at(i)
	}
	r.buf, r.head = nb, 0
}

func (r *ring) pushBack(m entry) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = m
	r.n++
}

func (r *ring) pushFront(m entry) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
	r.buf[r.head] = m
	r.n++
}

func (r *ring) popFront() entry {
	m := r.buf[r.head]
	r.buf[r.head] = entry{} // release the payload
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return m
}
