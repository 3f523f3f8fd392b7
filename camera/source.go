package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/cvsafe"
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

var (
	_ Opener = Open
	_ Source = (*captureSource)(nil)
	_ Source = (*imagesSource)(nil)
	_ FPSer  = (*captureSource)(nil)
	_ FPSer  = (*imagesSource)(nil)
)

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

// captureSource reads through a gocv.VideoCapture: devices, URLs,
// GStreamer pipelines and video files.
type captureSource struct {
	vc   *gocv.VideoCapture
	cfg  Config
	desc string // redacted source, for messages
	live bool
	fps  float64
	pace pacer
	// frames counts frames read since the last open or loop restart; a file
	// that yields none is broken, not ended.
	frames int
	// convert is set once the source delivered a non-BGR frame: from then on
	// frames are read into raw and converted into the caller's Mat.
	convert bool
	raw     gocv.Mat
}

func openCapture(cfg Config) (*captureSource, error) {
	vc, err := openVideoCapture(cfg)
	if err != nil {
		return nil, err
	}
	c := &captureSource{
		vc:   vc,
		cfg:  cfg,
		desc: RedactURL(cfg.Source),
		live: cfg.Kind != KindFile,
	}
	c.fps = vc.Get(gocv.VideoCaptureFPS)
	if !finite(c.fps) || c.fps < 0 {
		c.fps = 0
	}
	if !c.live {
		if cfg.FPS > 0 {
			c.fps = cfg.FPS
		} else if c.fps == 0 {
			c.fps = DefaultFileFPS
		}
		if cfg.IsRealtime() {
			c.pace.period = time.Duration(float64(time.Second) / c.fps)
		}
	}
	return c, nil
}

// openVideoCapture opens and configures the capture. It never returns a live
// handle together with an error, and its errors never carry URL credentials
// (gocv's own error text includes the raw URI, so it is not wrapped).
func openVideoCapture(cfg Config) (*gocv.VideoCapture, error) {
	desc := RedactURL(cfg.Source)
	var (
		vc  *gocv.VideoCapture
		err error
	)
	switch cfg.Kind {
	case KindV4L2:
		idx, ierr := deviceIndex(cfg.Source)
		if ierr != nil {
			return nil, fmt.Errorf("open v4l2 %q: %w", desc, ierr)
		}
		vc, err = gocv.VideoCaptureDeviceWithAPI(idx, gocv.VideoCaptureV4L2)
	case KindURL:
		vc, err = gocv.VideoCaptureFileWithAPI(cfg.Source, gocv.VideoCaptureFFmpeg)
	case KindGStreamer:
		vc, err = gocv.VideoCaptureFileWithAPI(cfg.Source, gocv.VideoCaptureGstreamer)
	case KindFile:
		// Not gocv.VideoCaptureFile: its CAP_ANY falls through to every
		// backend when FFmpeg and GStreamer fail (a broken or missing file),
		// and OpenCV 4.6's GPHOTO2 backend aborts the process when two
		// threads probe at once (and scans USB for cameras, slowly).
		vc, err = gocv.VideoCaptureFileWithAPI(cfg.Source, gocv.VideoCaptureFFmpeg)
		if err != nil || vc == nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			vc, err = gocv.VideoCaptureFileWithAPI(cfg.Source, gocv.VideoCaptureGstreamer)
		}
	case KindCSI:
		return nil, fmt.Errorf("open %q: a CSI camera must first be resolved to the board's GStreamer pipeline (edgedet run does this)", desc)
	default:
		return nil, fmt.Errorf("open %q: unknown kind %q", desc, cfg.Kind)
	}
	if err != nil || vc == nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("open %s %q: %w", cfg.Kind, desc, ErrNotOpened)
	}
	if cfg.Kind != KindFile {
		if cfg.Width > 0 {
			vc.Set(gocv.VideoCaptureFrameWidth, float64(cfg.Width))
		}
		if cfg.Height > 0 {
			vc.Set(gocv.VideoCaptureFrameHeight, float64(cfg.Height))
		}
	}
	if cfg.Kind == KindV4L2 && cfg.FPS > 0 {
		vc.Set(gocv.VideoCaptureFPS, cfg.FPS)
	}
	return vc, nil
}

var videoNodeRE = regexp.MustCompile(`^video([0-9]+)$`)

// deviceIndex maps "N", "/dev/videoN" or a symlink to one (such as
// /dev/v4l/by-id/...) to N. A missing device path is ErrNotPresent.
func deviceIndex(src string) (int, error) {
	if allDigits(src) {
		return strconv.Atoi(src)
	}
	p, err := filepath.EvalSymlinks(src)
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNotPresent
	}
	if err != nil {
		return 0, err
	}
	m := videoNodeRE.FindStringSubmatch(filepath.Base(p))
	if m == nil {
		return 0, fmt.Errorf("%q is not a /dev/videoN device", p)
	}
	return strconv.Atoi(m[1])
}

func (c *captureSource) FPS() float64 { return c.fps }

func (c *captureSource) Read(ctx context.Context, f *Frame) error {
	if c.vc == nil {
		return ErrClosed
	}
	if err := c.pace.wait(ctx); err != nil {
		return err
	}
	ok, err := c.read(f)
	if err != nil {
		return err
	}
	if !ok {
		switch {
		case c.live:
			return fmt.Errorf("read %s %q: %w", c.cfg.Kind, c.desc, ErrReadFailed)
		case c.frames == 0:
			return fmt.Errorf("read file %q: no frame decoded: %w", c.desc, ErrReadFailed)
		case !c.cfg.Loop:
			return ErrEndOfStream
		}
		if ok, err = c.restart(f); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("read file %q: no frame after restarting: %w", c.desc, ErrReadFailed)
		}
	}
	f.Time = time.Now()
	c.frames++
	return nil
}

// restart rewinds a looping file and reads its first frame: a seek to frame
// 0, or a reopen when the container cannot seek.
func (c *captureSource) restart(f *Frame) (bool, error) {
	c.frames = 0
	c.vc.Set(gocv.VideoCapturePosFrames, 0)
	if ok, err := c.read(f); ok || err != nil {
		return ok, err
	}
	c.vc.Close()
	c.vc = nil
	vc, err := openVideoCapture(c.cfg)
	if err != nil {
		return false, err
	}
	c.vc = vc
	return c.read(f)
}

// read reads one frame into f.Mat as BGR. An empty Mat is a failed read.
func (c *captureSource) read(f *Frame) (bool, error) {
	if c.convert {
		if !c.vc.Read(&c.raw) || c.raw.Empty() {
			return false, nil
		}
		return true, toBGR(c.raw, &f.Mat, false)
	}
	if !c.vc.Read(&f.Mat) || f.Mat.Empty() {
		return false, nil
	}
	if f.Mat.Type() != gocv.MatTypeCV8UC3 {
		// First non-BGR frame: convert this one in place (one allocation),
		// then read the native format into raw from now on.
		c.convert = true
		c.raw = gocv.NewMat()
		return true, toBGR(f.Mat, &f.Mat, true)
	}
	return true, nil
}

func (c *captureSource) Close() error {
	if c == nil {
		return nil
	}
	if c.vc != nil {
		c.vc.Close()
		c.vc = nil
	}
	if c.convert {
		c.raw.Close()
		c.convert = false
	}
	return nil
}

// toBGR converts src (8- or 16-bit, 1, 2 (YUYV), 3 or 4 channels) to 8-bit
// BGR in dst. inPlace says src and dst are the same Mat; OpenCV's conversions
// handle that aliasing.
func toBGR(src gocv.Mat, dst *gocv.Mat, inPlace bool) error {
	t := src.Type()
	ch := src.Channels()
	cur := src
	switch depth := t & 7; depth {
	case gocv.MatTypeCV8U:
	case gocv.MatTypeCV16U:
		src.ConvertToWithParams(dst, gocv.MatType((ch-1)<<3)|gocv.MatTypeCV8U, 1.0/256, 0)
		cur, inPlace = *dst, true
	default:
		return fmt.Errorf("convert frame to bgr: unsupported pixel type %d: %w", int(t), ErrReadFailed)
	}
	switch ch {
	case 3:
		if !inPlace {
			cur.CopyTo(dst)
		}
	case 1:
		return convertColor(cur, dst, gocv.ColorGrayToBGR)
	case 2:
		return convertColor(cur, dst, gocv.ColorYUVToBGRYUY2)
	case 4:
		return convertColor(cur, dst, gocv.ColorBGRAToBGR)
	default:
		return fmt.Errorf("convert frame to bgr: %d channels: %w", ch, ErrReadFailed)
	}
	return nil
}

// convertColor is cvsafe.CvtColor with a failure reported as a read
// error: toBGR picks the code from the channel count, so OpenCV should
// never throw here, but a frame from a driver is outside input.
func convertColor(src gocv.Mat, dst *gocv.Mat, code gocv.ColorConversionCode) error {
	if err := cvsafe.CvtColor(src, dst, code); err != nil {
		return fmt.Errorf("convert frame to bgr: %w: %w", err, ErrReadFailed)
	}
	return nil
}

// imagesSource decodes a sorted list of image files, or one image file.
type imagesSource struct {
	path     string
	dir      bool
	loop     bool
	fps      float64
	pace     pacer
	log      *slog.Logger
	files    []string
	next     int
	readPass int // images decoded in the current pass over files
	warned   map[string]bool
}

func openImages(cfg Config, log *slog.Logger) (*imagesSource, error) {
	st, err := os.Stat(cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("open images: %w", err)
	}
	s := &imagesSource{
		path:   cfg.Source,
		dir:    st.IsDir(),
		loop:   cfg.Loop,
		fps:    cfg.FPS,
		log:    log,
		warned: map[string]bool{},
	}
	if s.fps <= 0 {
		s.fps = DefaultImagesFPS
	}
	if cfg.IsRealtime() {
		s.pace.period = time.Duration(float64(time.Second) / s.fps)
	}
	if err := s.list(); err != nil {
		return nil, err
	}
	return s, nil
}

// list (re)reads the directory, so a looping source picks up new images.
func (s *imagesSource) list() error {
	if !s.dir {
		s.files = []string{s.path}
		return nil
	}
	ents, err := os.ReadDir(s.path)
	if err != nil {
		return fmt.Errorf("open images %q: %w", s.path, err)
	}
	s.files = s.files[:0]
	for _, e := range ents {
		if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
			if IsImageFile(e.Name()) {
				s.files = append(s.files, filepath.Join(s.path, e.Name()))
			}
		}
	}
	slices.Sort(s.files)
	if len(s.files) == 0 {
		return fmt.Errorf("open images %q: directory has no image files (%s)", s.path, extList())
	}
	return nil
}

func (s *imagesSource) FPS() float64 { return s.fps }

func (s *imagesSource) Read(ctx context.Context, f *Frame) error {
	if s.files == nil {
		return ErrClosed
	}
	if err := s.pace.wait(ctx); err != nil {
		return err
	}
	for {
		if s.next >= len(s.files) {
			if s.readPass == 0 {
				return fmt.Errorf("read images %q: none of %d files decodes: %w", s.path, len(s.files), ErrReadFailed)
			}
			if !s.loop {
				return ErrEndOfStream
			}
			if err := s.list(); err != nil {
				return err
			}
			s.next, s.readPass = 0, 0
		}
		name := s.files[s.next]
		s.next++
		img, err := cvsafe.ReadImage(name, gocv.IMReadColor)
		if err != nil {
			if !s.warned[name] {
				s.warned[name] = true
				s.log.Warn("unreadable image skipped", "file", name, "err", err)
			}
			continue
		}
		img.CopyTo(&f.Mat)
		img.Close()
		s.readPass++
		f.Time = time.Now()
		return nil
	}
}

func (s *imagesSource) Close() error {
	if s == nil {
		return nil
	}
	s.files = nil
	return nil
}

// pacer spaces reads period apart, like a live camera. The first read is
// immediate; a reader that falls more than one period behind restarts the
// schedule instead of bursting to catch up.
type pacer struct {
	period time.Duration
	next   time.Time
}

func (p *pacer) wait(ctx context.Context) error {
	if p.period <= 0 {
		return nil
	}
	now := time.Now()
	if p.next.IsZero() || now.Sub(p.next) > p.period {
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	p.next = p.next.Add(p.period)
	return nil
}
