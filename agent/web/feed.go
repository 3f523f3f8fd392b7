package web

import (
	"context"
	"image"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/cvsafe"
	"github.com/edgedet/edgedet/internal/overlay"
)

// Feed states. Offer moves idle → filling → pending, the encoder moves
// pending → encoding → idle, Close moves idle or pending → closed. filling
// and encoding are short and only their owner leaves them, so Close waits
// them out rather than freeing a Mat in use.
const (
	feedIdle int32 = iota
	feedFilling
	feedPending
	feedEncoding
	feedClosed
)

// DefaultQuality is the JPEG quality NewFeed uses when given one outside
// 1..100.
const DefaultQuality = 75

// Feed carries one camera's annotated frames from the detect loop to the
// live-view viewers. It costs an atomic load per frame while nobody watches.
//
// Lifecycle: NewFeed, then one goroutine runs Run while the detect loop
// calls Offer after each frame; after Run has returned, Close frees the
// native memory. Offer is safe after Close (it does nothing).
type Feed struct {
	interval time.Duration // minimum time between offered frames; 0: no limit
	quality  int
	clock    clock.Clock // its monotonic reading paces Offer and dates frames

	viewers atomic.Int32
	state   atomic.Int32
	next    atomic.Int64 // monotonic reading (ns) before which Offer skips
	work    chan struct{}

	// Owned by whoever holds state filling (Offer) or encoding (Run).
	mat    gocv.Mat
	dets   []detection.Detection
	motion []image.Rectangle
	// zones are drawn on every frame (SetZones, before Run).
	zones []overlay.Zone

	mu      sync.Mutex
	frame   []byte        // newest JPEG; never modified once published
	at      time.Duration // when frame was encoded (clock.Mono)
	seq     uint64        // increments with every new frame
	updated chan struct{} // closed and replaced when a new frame is published
}

// NewFeed returns a feed that encodes at most maxFPS frames a second
// (maxFPS <= 0: as fast as the encoder keeps up) at the given JPEG quality
// (1..100, otherwise DefaultQuality).
func NewFeed(maxFPS float64, quality int) *Feed {
	if quality < 1 || quality > 100 {
		quality = DefaultQuality
	}
	var interval time.Duration
	if maxFPS > 0 {
		interval = time.Duration(float64(time.Second) / maxFPS)
	}
	return &Feed{
		interval: interval,
		quality:  quality,
		clock:    clock.System,
		work:     make(chan struct{}, 1),
		mat:      gocv.NewMat(),
		dets:     make([]detection.Detection, 0, 32),
		updated:  make(chan struct{}),
	}
}

// SetZones sets the zone outlines drawn on every frame, with the motion
// boxes Offer passes (tuning aids). Call it before Run.
func (f *Feed) SetZones(zones []overlay.Zone) { f.zones = zones }

// Wanted reports whether a viewer is connected. The detect loop may use it
// to skip work that only the live view needs.
func (f *Feed) Wanted() bool { return f.viewers.Load() > 0 }

// Offer hands the feed the frame the detect loop has just processed, its
// detections and its motion boxes (nil without motion detection). It never blocks: when a viewer is connected, the encoder is
// idle and maxFPS allows, it copies img (BGR CV_8UC3) and dets into the
// feed's own buffers and wakes the encoder; otherwise it returns at once.
// The caller keeps ownership of img and dets.
func (f *Feed) Offer(img gocv.Mat, dets []detection.Detection, motion []image.Rectangle) {
	if f.viewers.Load() == 0 {
		return
	}
	now := int64(f.clock.Mono())
	if now < f.next.Load() {
		return
	}
	if !f.state.CompareAndSwap(feedIdle, feedFilling) {
		return // encoder busy, frame pending, or closed
	}
	if img.Empty() {
		f.state.Store(feedIdle)
		return
	}
	img.CopyTo(&f.mat)
	f.dets = append(f.dets[:0], dets...)
	f.motion = append(f.motion[:0], motion...)
	f.next.Store(now + int64(f.interval))
	f.state.Store(feedPending)
	select {
	case f.work <- struct{}{}:
	default:
	}
}

// Run encodes offered frames until ctx is done: it draws the detections on
// the feed's copy with detector.Draw, encodes it as JPEG and hands the bytes
// to the viewers. Run it in one goroutine; Close after it returns.
func (f *Feed) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.work:
		}
		if !f.state.CompareAndSwap(feedPending, feedEncoding) {
			continue
		}
		buf, err := f.encode()
		f.state.Store(feedIdle)
		if err == nil {
			f.publish(buf)
		}
	}
}

// encode draws on and encodes the feed's Mat; the caller holds state
// encoding. The returned bytes are a Go copy: the native buffer is freed
// before encode returns.
func (f *Feed) encode() ([]byte, error) {
	overlay.Draw(&f.mat, overlay.Overlay{Motion: f.motion, Zones: f.zones}, image.Point{}, 1)
	detector.Draw(&f.mat, f.dets)
	return cvsafe.EncodeImage(gocv.JPEGFileExt, f.mat, gocv.IMWriteJpegQuality, f.quality)
}

func (f *Feed) publish(buf []byte) {
	f.mu.Lock()
	f.frame = buf
	f.at = f.clock.Mono()
	f.seq++
	close(f.updated)
	f.updated = make(chan struct{})
	f.mu.Unlock()
}

// watch registers a viewer: Offer starts copying frames until the returned
// func (call it exactly once) unregisters it.
func (f *Feed) watch() (stop func()) {
	f.viewers.Add(1)
	var once sync.Once
	return func() { once.Do(func() { f.viewers.Add(-1) }) }
}

// frameAfter returns the newest frame once its sequence number is above
// after, waiting for it until ctx is done. With maxAge > 0, a frame
// encoded longer than maxAge ago (on the monotonic clock) is treated as
// absent, so a new viewer never starts with a stale picture.
func (f *Feed) frameAfter(ctx context.Context, after uint64, maxAge time.Duration) ([]byte, uint64, error) {
	notBefore := time.Duration(math.MinInt64)
	if maxAge > 0 {
		notBefore = f.clock.Mono() - maxAge
	}
	for {
		f.mu.Lock()
		frame, seq, at, ch := f.frame, f.seq, f.at, f.updated
		f.mu.Unlock()
		if seq > after && frame != nil && at >= notBefore {
			return frame, seq, nil
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-ch:
		}
	}
}

// Close frees the feed's native memory. Call it after Run has returned; it
// waits out an Offer copying at that moment. It is idempotent.
func (f *Feed) Close() error {
	for {
		s := f.state.Load()
		if s == feedClosed {
			return nil
		}
		if s == feedFilling || s == feedEncoding {
			runtime.Gosched()
			continue
		}
		if f.state.CompareAndSwap(s, feedClosed) {
			break
		}
	}
	f.dets = nil
	return f.mat.Close()
}
