// Package outbox delivers the agent's MQTT messages through a spool, so a
// broker outage (or, with a disk spool, an agent restart) loses nothing.
//
// Send adds messages to the spool and never waits for the network. Run is a
// flush loop: it flushes as soon as Send added messages (unless the last
// flush failed), on a timer while the broker is unreachable, and when
// Trigger is called (on every MQTT reconnect). A flush takes the
// messages that were spooled when it started, oldest first, in transactions
// of BatchSize, and publishes them one at a time in order, so a subscriber
// sees the messages of a topic in the order they were sent. A message that
// cannot be published now stays at the front of the spool for the next
// flush; one that can never be published is rejected and logged.
//
// Delivery is at least once. Every non-retained JSON-object payload is
// published with a "msg_id" member, the same on every attempt (see
// EpochFile), so that consumers can drop the duplicates a lost
// acknowledgement causes.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/spool"
)

// FinalFlushTimeout bounds the flush Run makes after its context is done.
const FinalFlushTimeout = 5 * time.Second

// DropWarnInterval is the least time between two "spool full" warnings:
// the first drop is logged at once, later ones are counted and summed up in
// the next warning, at most one per interval (and at shutdown).
const DropWarnInterval = time.Minute

// Stats are the spool's statistics plus the Outbox's counters since New.
type Stats struct {
	spool.Stats
	Flushes   uint64 // flush attempts, the final one included
	Published uint64 // messages the publisher accepted
	Failed    uint64 // publish attempts that failed (kept for later or rejected)
	// NotSpooled counts messages Send could not add (too large for
	// max_bytes, disk error, or sent after Run returned): they are lost.
	NotSpooled uint64
}

// Outbox is a spool with a flush loop. Its methods are safe for concurrent
// use; Run must be called once.
type Outbox struct {
	cfg  Config
	pub  publish.Publisher
	log  *slog.Logger
	sp   spool.Spool
	disk bool

	ready        chan struct{} // messages were sent; capacity 1
	readyPending atomic.Bool   // a ready signal is queued
	trigger      chan struct{} // flush requested (reconnect); capacity 1
	// failing is set after a flush stopped on a transient error and
	// cleared by a complete flush or a Trigger: while it is set, Send does
	// not signal ready (no early retrigger after a failure; the timer and
	// reconnects retry).
	failing atomic.Bool
	running atomic.Bool

	now   func() time.Time // the clock of the drop warnings
	drops dropWarn

	idPrefix []byte // `"msg_id":"<epoch>-`, see withID
	idBuf    []byte // payload with the id; reused by flush

	errMu      sync.Mutex
	sendErrs   int   // Add errors since the last flush log
	lastSendEr error // the latest of them

	flushes, published, failed, notSpooled atomic.Uint64
	lastAgeDrops                           uint64 // DroppedAge already logged; Run's goroutine only
}

// New applies cfg.WithDefaults, validates it and opens the spool: a Disk
// spool in cfg.Dir (replaying what a previous run left there), or a Memory
// spool when Dir is empty. log may be nil (nothing is logged).
func New(cfg Config, pub publish.Publisher, log *slog.Logger) (*Outbox, error) {
	if pub == nil {
		return nil, errors.New("outbox: nil publisher")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("spool config: %w", err)
	}
	log = log.With("component", "outbox")
	lim := spool.Limits{MaxMessages: cfg.MaxMessages, MaxBytes: cfg.MaxBytes, MaxAge: cfg.MaxAge.D()}
	o := &Outbox{
		cfg:     cfg,
		pub:     pub,
		log:     log,
		ready:   make(chan struct{}, 1),
		trigger: make(chan struct{}, 1),
		now:     time.Now,
	}
	if cfg.Dir == "" {
		o.sp = spool.NewMemory(lim)
	} else {
		d, err := spool.OpenDisk(cfg.Dir, lim, log)
		if err != nil {
			return nil, fmt.Errorf("outbox: open spool: %w", err)
		}
		o.sp, o.disk = d, true
		if n := d.Len(); n > 0 {
			log.Info("spool holds messages from a previous run", "dir", cfg.Dir, "messages", n)
		}
	}
	epoch, err := o.loadEpoch()
	if err != nil {
		_ = o.sp.Close()
		return nil, err
	}
	o.idPrefix = fmt.Appendf(nil, `"msg_id":"%s-`, epoch)
	return o, nil
}

// Send adds msgs to the spool (never waiting for the network) and signals
// Run to flush them now. When the spool is full the oldest messages are
// dropped; drops are counted in Stats and logged (the first at once, then
// at most once per DropWarnInterval, with counts). A message Send cannot
// add (see Stats.NotSpooled) is lost.
func (o *Outbox) Send(msgs ...publish.Message) {
	if len(msgs) == 0 {
		return
	}
	n, err := o.sp.Add(msgs...)
	if n > 0 {
		o.noteDrops(n)
	}
	if err != nil {
		o.notSpooled.Add(uint64(countNotSpooled(err, len(msgs))))
		o.errMu.Lock()
		o.sendErrs++
		o.lastSendEr = err
		o.errMu.Unlock()
	}
	// Publish promptly (an event is news now), unless a flush just failed:
	// then the timer and reconnects retry.
	if !o.failing.Load() && o.readyPending.CompareAndSwap(false, true) {
		select {
		case o.ready <- struct{}{}:
		default:
		}
	}
}

// countNotSpooled estimates how many of n messages an Add error lost: one
// per ErrTooLarge, all of them for anything else (closed spool, disk error).
func countNotSpooled(err error, n int) int {
	var k int
	var walk func(error) bool
	walk = func(e error) bool { // reports whether e is only ErrTooLarge errors
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			all := true
			for _, x := range j.Unwrap() {
				all = walk(x) && all
			}
			return all
		}
		if errors.Is(e, spool.ErrTooLarge) {
			k++
			return true
		}
		return false
	}
	if walk(err) {
		return k
	}
	return n
}

// Trigger asks Run to flush now (for example after the MQTT client
// reconnected: register it with mqtt.Client.OnConnect). It never blocks.
func (o *Outbox) Trigger() {
	select {
	case o.trigger <- struct{}{}:
	default:
	}
}

// Run is the flush loop. When ctx is done it makes a final flush bounded by
// a fresh FinalFlushTimeout deadline, closes the spool (a disk spool keeps
// what is left for the next run; a memory spool's remainder is logged as
// lost) and returns the spool's Close error.
func (o *Outbox) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("outbox: Run called more than once")
	}
	// A publish is not cut short by shutdown (it is bounded by the
	// publisher's own timeout): a message cancelled after it was written
	// might reach the broker and be sent again by the final flush.
	// Shutdown is checked between batches.
	pubCtx := context.WithoutCancel(ctx)
	tick := time.NewTicker(o.cfg.FlushInterval.D())
	defer tick.Stop()
	for {
		// Shutdown wins over a ready flush.
		select {
		case <-ctx.Done():
			return o.shutdown()
		default:
		}
		select {
		case <-ctx.Done():
			return o.shutdown()
		case <-tick.C:
			o.flush(pubCtx, ctx.Done())
		case <-o.ready:
			o.readyPending.Store(false)
			if !o.failing.Load() {
				o.flush(pubCtx, ctx.Done())
			}
		case <-o.trigger:
			o.failing.Store(false)
			o.flush(pubCtx, ctx.Done())
		}
	}
}

func (o *Outbox) shutdown() error {
	fctx, cancel := context.WithTimeout(context.Background(), FinalFlushTimeout)
	o.flush(fctx, nil)
	cancel()
	o.warnDrops(true)
	if n := o.sp.Len(); n > 0 {
		if o.disk {
			o.log.Info("undelivered messages kept in the disk spool for the next start", "messages", n, "dir", o.cfg.Dir)
		} else {
			o.log.Warn("undelivered messages lost: the spool is in memory (set spool.dir to keep them)", "messages", n)
		}
	}
	if err := o.sp.Close(); err != nil {
		return fmt.Errorf("outbox: close spool: %w", err)
	}
	return nil
}

// flush publishes what was spooled when it started, in batches, until the
// spool is empty, a publish fails transiently, or done is closed (checked
// between batches). Publishes use ctx. It returns whether it completed.
func (o *Outbox) flush(ctx context.Context, done <-chan struct{}) bool {
	o.flushes.Add(1)
	o.logDrops()
	n := o.sp.Len()
	for n > 0 {
		select {
		case <-done:
			return false
		default:
		}
		ageBefore := o.sp.Stats().DroppedAge
		tx := o.sp.Begin(min(o.cfg.BatchSize, n))
		n -= len(tx.Messages) + int(o.sp.Stats().DroppedAge-ageBefore)
		if len(tx.Messages) == 0 {
			o.sp.End(tx)
			break
		}
		var stop error
		for i := range tx.Messages {
			m := &tx.Messages[i]
			err := o.pub.PublishMessage(ctx, o.withID(*m))
			switch {
			case err == nil:
				tx.Accept(i)
				o.published.Add(1)
				continue
			case errors.Is(err, publish.ErrInvalidMessage):
				tx.Reject(i)
				o.failed.Add(1)
				o.log.Warn("message rejected, dropped", "topic", m.Topic, "id", m.ID, "bytes", m.Size(), "err", err)
				continue
			}
			o.failed.Add(1)
			stop = err
			break
		}
		o.sp.End(tx)
		if stop != nil {
			o.failing.Store(true)
			o.logFailure(stop)
			return false
		}
		n = min(n, o.sp.Len())
	}
	o.failing.Store(false)
	return true
}

// logFailure logs a flush that stopped: quietly while not connected (the
// MQTT client already reports the outage), loudly otherwise.
func (o *Outbox) logFailure(err error) {
	if errors.Is(err, publish.ErrNotConnected) || errors.Is(err, publish.ErrClosed) ||
		errors.Is(err, context.Canceled) {
		o.log.Debug("flush stopped, messages kept", "spooled", o.sp.Len(), "err", err)
		return
	}
	o.log.Warn("flush failed, messages kept for retry", "spooled", o.sp.Len(), "err", err)
}

// dropWarn rate-limits the "spool full" warning.
type dropWarn struct {
	mu      sync.Mutex
	pending uint64    // dropped since the last warning
	limits  uint8     // the limits those drops hit: limitMessages | limitBytes
	last    time.Time // of the last warning; zero before the first
}

const (
	limitMessages uint8 = 1 << iota
	limitBytes
)

// noteDrops counts n messages Add dropped to make room, notes which limit
// was hit, and warns at once unless a warning went out less than
// DropWarnInterval ago.
func (o *Outbox) noteDrops(n int) {
	limit := limitBytes
	if s := o.sp.Stats(); s.Len >= o.cfg.MaxMessages {
		limit = limitMessages
	}
	o.drops.mu.Lock()
	o.drops.pending += uint64(n)
	o.drops.limits |= limit
	o.drops.mu.Unlock()
	o.warnDrops(false)
}

// warnDrops logs the drops counted since the last warning, if any, when
// DropWarnInterval has passed since it (or always, with force).
func (o *Outbox) warnDrops(force bool) {
	now := o.now()
	d := &o.drops
	d.mu.Lock()
	if d.pending == 0 || (!force && !d.last.IsZero() && now.Sub(d.last) < DropWarnInterval) {
		d.mu.Unlock()
		return
	}
	n, limits, since := d.pending, d.limits, now.Sub(d.last)
	first := d.last.IsZero()
	d.pending, d.limits, d.last = 0, 0, now
	d.mu.Unlock()

	attrs := make([]any, 0, 10)
	attrs = append(attrs, "dropped", n)
	if !first {
		attrs = append(attrs, "since_last_warning", since.Round(time.Second))
	}
	attrs = append(attrs, "dropped_total", o.sp.Stats().DroppedFull)
	switch limits {
	case limitMessages:
		attrs = append(attrs, "limit", "spool.max_messages", "max_messages", o.cfg.MaxMessages)
	case limitBytes:
		attrs = append(attrs, "limit", "spool.max_bytes", "max_bytes", o.cfg.MaxBytes)
	default:
		attrs = append(attrs, "limit", "spool.max_messages and spool.max_bytes",
			"max_messages", o.cfg.MaxMessages, "max_bytes", o.cfg.MaxBytes)
	}
	o.log.Warn("spool full, dropped oldest messages", attrs...)
}

// logDrops logs, once per flush, what was dropped or lost since the
// previous one ("spool full" rate-limited by warnDrops).
func (o *Outbox) logDrops() {
	o.warnDrops(false)
	if age := o.sp.Stats().DroppedAge; age > o.lastAgeDrops {
		o.log.Warn("dropped messages older than spool.max_age", "dropped", age-o.lastAgeDrops, "max_age", o.cfg.MaxAge)
		o.lastAgeDrops = age
	}
	o.errMu.Lock()
	n, err := o.sendErrs, o.lastSendEr
	o.sendErrs, o.lastSendEr = 0, nil
	o.errMu.Unlock()
	if n > 0 {
		o.log.Warn("messages not spooled, lost", "calls", n, "last_err", err)
	}
}

// Stats returns the spool's statistics and the Outbox's counters.
func (o *Outbox) Stats() Stats {
	return Stats{
		Stats:      o.sp.Stats(),
		Flushes:    o.flushes.Load(),
		Published:  o.published.Load(),
		Failed:     o.failed.Load(),
		NotSpooled: o.notSpooled.Load(),
	}
}
