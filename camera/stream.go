package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrEndOfStream: a non-looping file or images source has no more
	// frames and the last one was handed over.
	ErrEndOfStream = errors.New("end of stream")
	// ErrClosed: the stream was closed, or Run stopped and the last frame
	// was taken.
	ErrClosed = errors.New("camera stream closed")
	// ErrNotOpened: OpenCV could not open the source.
	ErrNotOpened = errors.New("capture did not open")
	// ErrReadFailed: the source opened but a frame could not be read.
	ErrReadFailed = errors.New("frame read failed")
	// ErrNotPresent: the configured device node does not exist.
	ErrNotPresent = errors.New("device not present")
	// ErrRunning: Run was called a second time on the same Stream.
	ErrRunning = errors.New("stream already run")
)

const (
	// poolSize frames: capturing, waiting in the slot, and two held by a
	// pipelined consumer (one being preprocessed, one in the model).
	poolSize = 4
	// stopGrace is how long Run waits, after ctx is done, for a capture
	// goroutine blocked in a native open or read before abandoning it.
	stopGrace = 2 * time.Second
)

// Frame is one captured image. Frames are owned by a Stream's fixed pool;
// never copy a Frame by value.
type Frame struct {
	Mat  gocv.Mat  // BGR, CV_8UC3
	Seq  uint64    // 1-based sequence number of frames read from the source (gaps = frames dropped/skipped)
	Time time.Time // capture time

	noCopy noCopy
	owner  *Stream
	state  frameState
}

type frameState uint8

const (
	frameFree     frameState = iota // in the pool's free list
	frameCapture                    // being filled by the capture goroutine
	frameSlot                       // published, waiting for Next
	frameConsumer                   // handed out by Next, waiting for Release
	frameClosed                     // Mat closed
)

// noCopy makes go vet's copylocks check flag copies of a Frame.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// Stats is a snapshot of a Stream's counters.
type Stats struct {
	Captured   uint64 // frames read from the source (the last Seq)
	Delivered  uint64 // frames handed to the consumer by Next
	Dropped    uint64 // published frames replaced before the consumer took them
	Skipped    uint64 // frames read but not published because of DetectFPS
	Reconnects uint64 // reopen attempts after a failure
	Connected  bool   // a source is open and has not failed since
	LastError  string // the most recent open or read failure, kept after recovery ("" if none)
	Width      int    // size of the last captured frame
	Height     int
	SourceFPS  float64 // rate the source reports (devices, streams) or plays at (files, images)
}

// Stream captures from one source in its own goroutine and hands the
// consumer the newest frame.
//
// Lifecycle: NewStream, then Run in one goroutine and Next in one consumer
// goroutine (Release may come from another), then Close once Run has
// returned and the consumer has released its frames. The consumer may hold
// two frames (one being preprocessed while the previous one is in the
// model); while it holds three, capture pauses until one is released.
type Stream struct {
	cfg         Config // defaults filled
	log         *slog.Logger
	open        Opener
	detectEvery time.Duration
	// lossless: an unpaced file or images source waits for the consumer
	// to take each frame instead of replacing it (batch runs, benchmarks).
	lossless bool

	started     atomic.Bool
	captureDone chan struct{} // closed when the capture goroutine has returned

	mu       sync.Mutex // guards the fields below
	free     []*Frame
	slot     *Frame
	endErr   error // what Next returns once the slot is empty, after Run ended
	closed   bool
	cancel   context.CancelFunc // stops the running capture
	stats    Stats
	nextDue  time.Time     // DetectFPS: earliest capture time of the next published frame
	ready    chan struct{} // cap 1: a frame was published
	taken    chan struct{} // cap 1: the consumer took the slot frame
	freed    chan struct{} // cap 1: a frame went back to the free list
	ended    chan struct{} // closed once endErr is set or the stream is closed
	endedSet bool
}

// NewStream validates cfg and returns a Stream that has opened nothing yet.
// log may be nil; the stream logs through a child logger with
// "component"="camera" and "camera"=cfg.Name.
func NewStream(cfg Config, log *slog.Logger) (*Stream, error) {
	return NewStreamWithOpener(cfg, Open, log)
}

// NewStreamWithOpener is NewStream with a custom Opener, for sources this
// package does not build (scripted fakes in tests, other capture stacks).
func NewStreamWithOpener(cfg Config, open Opener, log *slog.Logger) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if open == nil {
		return nil, fmt.Errorf("camera %q: nil opener", cfg.Name)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := cfg.WithDefaults()
	s := &Stream{
		cfg:         d,
		log:         log.With("component", "camera", "camera", d.Name),
		open:        open,
		captureDone: make(chan struct{}),
		ready:       make(chan struct{}, 1),
		taken:       make(chan struct{}, 1),
		freed:       make(chan struct{}, 1),
		ended:       make(chan struct{}),
	}
	s.lossless = !d.IsRealtime() && (d.Kind == KindFile || d.Kind == KindImages)
	if d.DetectFPS > 0 {
		s.detectEvery = time.Duration(float64(time.Second) / d.DetectFPS)
	}
	return s, nil
}

// Config returns the stream's configuration with defaults filled.
func (s *Stream) Config() Config { return s.cfg }

// Run is the capture loop with reconnects. It returns nil when ctx is done,
// or, for a non-looping file or images source, ErrEndOfStream (wrapped) once
// the last frame was handed to the consumer (nil if ctx ends while that
// frame still waits). It returns within about stopGrace (2 s) of ctx being
// done even when OpenCV is blocked in an open or read: that call is
// abandoned in its goroutine, which closes its capture and returns its frame
// when the call eventually returns. Run may be called once; it returns
// ErrClosed after Close.
func (s *Stream) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("camera %q: %w", s.cfg.Name, ErrRunning)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	for range poolSize {
		s.free = append(s.free, &Frame{Mat: gocv.NewMat(), owner: s})
	}
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.mu.Unlock()
	defer cancel()

	done := make(chan error, 1)
	go func() {
		defer close(s.captureDone)
		done <- s.capture(runCtx)
	}()
	var err error
	select {
	case err = <-done:
	case <-runCtx.Done():
		t := time.NewTimer(stopGrace)
		select {
		case err = <-done:
		case <-t.C:
			s.log.Warn("capture blocked in native call, abandoning it", "waited", stopGrace)
		}
		t.Stop()
	}
	if errors.Is(err, ErrEndOfStream) {
		s.finish(ErrEndOfStream)
		if s.waitHandover(runCtx) {
			s.log.Info("camera stream ended")
			return fmt.Errorf("camera %q: %w", s.cfg.Name, ErrEndOfStream)
		}
		return nil
	}
	s.finish(ErrClosed)
	if err != nil {
		s.log.Error("capture failed", "err", RedactURL(err.Error()))
		return fmt.Errorf("camera %q: %w", s.cfg.Name, err)
	}
	return nil
}

// capture opens the source, reads and publishes frames, and reopens it with
// backoff after failures. It returns nil when ctx is done, ErrEndOfStream
// at the end of a finite source, or an error if it panicked.
func (s *Stream) capture(ctx context.Context) (err error) {
	s.mu.Lock()
	cur := s.popFree()
	s.mu.Unlock()
	var src Source
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("capture panic: %v\n%s", r, debug.Stack())
		}
		if src != nil {
			src.Close()
		}
		s.mu.Lock()
		if cur != nil {
			s.put(cur)
		}
		s.stats.Connected = false
		s.mu.Unlock()
	}()

	bo := backoff{min: s.cfg.ReconnectMin.D(), max: s.cfg.ReconnectMax.D()}
	var failures int // failed attempts in the current streak
	first := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		src, err = s.open(ctx, s.cfg, s.log)
		if err != nil && src != nil {
			src.Close() // an Opener must not return both; don't leak if it does
			src = nil
		}
		if err == nil && src == nil {
			err = errors.New("opener returned no source")
		}
		if err == nil {
			if ctx.Err() != nil {
				return nil // the open outlived Run; the defer closes src
			}
			s.opened(src)
			err = s.readLoop(ctx, src, &cur, &bo, &failures, &first)
			src.Close()
			src = nil
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrEndOfStream) {
				return ErrEndOfStream
			}
		} else if ctx.Err() != nil {
			return nil
		}
		wait := bo.next()
		failures++
		s.failed(err, wait, failures)
		if !sleepCtx(ctx, wait) {
			return nil
		}
		s.mu.Lock()
		s.stats.Reconnects++
		s.mu.Unlock()
	}
}

// readLoop reads frames from an open source until it fails, ends or ctx is
// done. *cur is the capture frame; publishing swaps it for a free one.
func (s *Stream) readLoop(ctx context.Context, src Source, cur **Frame, bo *backoff, failures *int, first *bool) error {
	for {
		if *cur == nil {
			f, err := s.waitFree(ctx)
			if err != nil {
				return err
			}
			*cur = f
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := src.Read(ctx, *cur); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		bo.reset()
		s.publish(cur)
		if s.lossless {
			if err := s.waitTaken(ctx); err != nil {
				return err
			}
		}
		if *failures > 0 || *first {
			st := s.Stats()
			if *first {
				s.log.Info("camera streaming", "source", RedactURL(s.cfg.Source), "kind", s.cfg.Kind,
					"width", st.Width, "height", st.Height, "fps", st.SourceFPS)
			} else {
				s.log.Info("camera recovered", "attempts", *failures,
					"width", st.Width, "height", st.Height, "fps", st.SourceFPS)
			}
			*failures, *first = 0, false
		}
	}
}

// publish numbers the frame in *cur and, unless DetectFPS skips it, puts it
// in the slot. *cur becomes the frame to capture into next: the replaced
// slot frame (dropped), a free frame, or nil when the consumer holds the
// rest.
func (s *Stream) publish(cur **Frame) {
	f := *cur
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Captured++
	f.Seq = s.stats.Captured
	s.stats.Width, s.stats.Height = f.Mat.Cols(), f.Mat.Rows()
	s.stats.Connected = true
	if s.closed || s.endSet() {
		return // Run is over; keep the frame, the capture goroutine is stopping
	}
	if s.detectEvery > 0 {
		if !s.nextDue.IsZero() && f.Time.Before(s.nextDue) {
			s.stats.Skipped++
			return
		}
		// Keep the long-run rate at DetectFPS: advance the schedule by one
		// interval, or restart it when the source fell behind.
		if s.nextDue.IsZero() || f.Time.Sub(s.nextDue) >= s.detectEvery {
			s.nextDue = f.Time.Add(s.detectEvery)
		} else {
			s.nextDue = s.nextDue.Add(s.detectEvery)
		}
	}
	old := s.slot
	f.state = frameSlot
	s.slot = f
	if old != nil {
		s.stats.Dropped++
		old.state = frameCapture
		old.Time = time.Time{}
		*cur = old
	} else {
		*cur = s.popFree()
	}
	signal(s.ready)
}

// waitTaken waits until the consumer has taken the slot frame (or the
// stream is closing), so an unpaced file or images source drops nothing.
func (s *Stream) waitTaken(ctx context.Context) error {
	for {
		s.mu.Lock()
		empty := s.slot == nil || s.closed || s.endSet()
		s.mu.Unlock()
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.taken:
		case <-s.ended:
		}
	}
}

// waitFree waits for the consumer to release a frame.
func (s *Stream) waitFree(ctx context.Context) (*Frame, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if f := s.popFree(); f != nil {
			s.mu.Unlock()
			return f, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.freed:
		}
	}
}

// opened records a freshly opened source.
func (s *Stream) opened(src Source) {
	fps := 0.0
	if f, ok := src.(FPSer); ok {
		fps = f.FPS()
	}
	s.mu.Lock()
	s.stats.Connected = true
	s.stats.SourceFPS = fps
	s.mu.Unlock()
	s.log.Debug("camera opened", "source", RedactURL(s.cfg.Source), "kind", s.cfg.Kind)
}

// failed records a failure; the first of a streak is a warning, the retries
// after it are debug.
func (s *Stream) failed(err error, wait time.Duration, failures int) {
	msg := RedactURL(err.Error())
	s.mu.Lock()
	s.stats.Connected = false
	s.stats.LastError = msg
	s.mu.Unlock()
	if failures == 1 {
		s.log.Warn("camera source failed, reconnecting", "err", msg, "retry_in", wait)
	} else {
		s.log.Debug("camera reconnect failed", "err", msg, "attempt", failures, "retry_in", wait)
	}
}

// finish makes Next return err once the slot is empty.
func (s *Stream) finish(err error) {
	s.mu.Lock()
	if s.endErr == nil {
		s.endErr = err
	}
	s.stats.Connected = false
	s.markEnded()
	s.mu.Unlock()
}

func (s *Stream) markEnded() {
	if !s.endedSet {
		s.endedSet = true
		close(s.ended)
	}
}

func (s *Stream) endSet() bool { return s.endErr != nil }

// waitHandover waits until the consumer took the slot frame. It reports
// false if ctx ended first.
func (s *Stream) waitHandover(ctx context.Context) bool {
	for {
		s.mu.Lock()
		empty := s.slot == nil || s.closed
		s.mu.Unlock()
		if empty {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-s.taken:
		}
	}
}

// Next blocks for the newest undelivered frame. It returns ErrEndOfStream
// after the source ended and the last frame was taken, ErrClosed after Close
// or after Run stopped and the last frame was taken, and ctx.Err() when ctx
// is done. Give the frame back with Release before calling Next again.
func (s *Stream) Next(ctx context.Context) (*Frame, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if f := s.slot; f != nil {
			s.slot = nil
			f.state = frameConsumer
			s.stats.Delivered++
			signal(s.taken)
			s.mu.Unlock()
			return f, nil
		}
		if err := s.endErr; err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ready:
		case <-s.ended:
		}
	}
}

// Release gives a frame returned by Next back to the pool. It is nil-safe;
// frames of another stream, and frames already released, are ignored. After
// Close it closes the frame's Mat.
func (s *Stream) Release(f *Frame) {
	if f == nil || f.owner != s {
		return
	}
	s.mu.Lock()
	if f.state == frameConsumer {
		s.put(f)
	}
	s.mu.Unlock()
}

// Stats returns a consistent snapshot of the counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close closes every pooled Mat and stops a capture that is still running.
// Call it after Run has returned and the consumer released its frame; a
// frame still out (held by the consumer, or by an abandoned native read) is
// closed when it comes back. Idempotent; always returns nil.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	for _, f := range s.free {
		f.Mat.Close()
		f.state = frameClosed
	}
	s.free = nil
	if s.slot != nil {
		s.slot.Mat.Close()
		s.slot.state = frameClosed
		s.slot = nil
	}
	s.markEnded()
	return nil
}

// popFree takes a frame from the free list (nil if empty). Call with mu held.
func (s *Stream) popFree() *Frame {
	n := len(s.free)
	if n == 0 {
		return nil
	}
	f := s.free[n-1]
	s.free = s.free[:n-1]
	f.state = frameCapture
	return f
}

// put returns a frame to the free list, or closes its Mat once the stream is
// closed. Call with mu held.
func (s *Stream) put(f *Frame) {
	if s.closed {
		f.Mat.Close()
		f.state = frameClosed
		return
	}
	f.state = frameFree
	f.Seq = 0
	f.Time = time.Time{}
	s.free = append(s.free, f)
	signal(s.freed)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff doubles from min to max; reset starts again at min.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
