package camera

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"gocv.io/x/gocv"
)

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
