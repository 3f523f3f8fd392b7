package camera

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/cvsafe"
)

var (
	_ Source = (*captureSource)(nil)
	_ FPSer  = (*captureSource)(nil)
)

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
