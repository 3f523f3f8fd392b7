package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
