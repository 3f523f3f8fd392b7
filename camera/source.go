package camera

import (
	"context"
	"log/slog"
)

// Source produces frames from one opened camera, video file or image set.
//
// Read fills f.Mat (BGR, CV_8UC3) and f.Time in place; f and its Mat belong
// to the caller, which reuses them from frame to frame. Read returns
// ErrEndOfStream when a finite source has no more frames; any other error
// means the source failed and should be closed and reopened. ctx bounds only
// the waits Read does itself (realtime pacing): a native OpenCV read cannot
// be interrupted.
//
// A Source is used by one goroutine at a time. Close releases every native
// handle; it is idempotent.
type Source interface {
	Read(ctx context.Context, f *Frame) error
	Close() error
}

// FPSer is implemented by sources that know their frame rate (the device's
// or stream's reported rate, or the playback rate of a file or images).
type FPSer interface {
	FPS() float64
}

// Opener opens the Source a Config describes. Open is the Opener for every
// kind this package supports; NewStreamWithOpener takes others (fakes in
// tests, future kinds).
type Opener func(ctx context.Context, cfg Config, log *slog.Logger) (Source, error)

var _ Opener = Open

// Open opens the source cfg describes (defaults are filled first; cfg should
// have passed Validate). It returns ctx.Err() if ctx is already done, but
// cannot interrupt a native open that blocks (a stalled network stream can
// take tens of seconds). On error nothing stays open. log receives warnings
// about skipped images; nil discards them.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.WithDefaults()
	// Return a nil interface, never a typed nil, on error.
	if cfg.Kind == KindImages {
		s, err := openImages(cfg, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	c, err := openCapture(cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}
