package camera

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/redact"
)

// Source kinds. Config.Kind is one of these, or "" to detect it from Source.
const (
	KindV4L2      = "v4l2"      // a V4L2 device: "/dev/videoN" or a device index "N"
	KindFile      = "file"      // a video file: OpenCV FFmpeg backend, GStreamer as fallback
	KindImages    = "images"    // a directory of images, or one image file
	KindURL       = "url"       // rtsp://, rtsps://, rtmp://, http://, https:// through FFmpeg
	KindGStreamer = "gstreamer" // a GStreamer pipeline ending in appsink
	// KindCSI is the board's CSI camera (source "csi"); the binary turns it
	// into the board's GStreamer pipeline (platforms.CSIPipeline) before
	// the stream opens.
	KindCSI = "csi"
)

// Defaults filled by Config.WithDefaults.
const (
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = 30 * time.Second
	DefaultImagesFPS    = 1.0
	// DefaultFileFPS is the playback rate of a video file whose container
	// reports no frame rate (and Config.FPS is 0).
	DefaultFileFPS = 25.0
)

// imageExts are the extensions an images source reads (compared lower-case).
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".bmp": true,
	".webp": true, ".tif": true, ".tiff": true,
}

// Config describes one camera. It is decoded from an entry of the agent
// config's "camera" array of tables; zero values mean "default" as
// documented per field.
type Config struct {
	// Name identifies the camera in logs, errors and metrics.
	Name string `toml:"name"`
	// Source is "/dev/video0", "0" (device index), a video file, an image
	// file, a directory of images, an rtsp:// or http(s):// URL, or a
	// GStreamer pipeline ending in appsink.
	Source string `toml:"source"`
	// Kind is "" (detected from Source, see DetectKind), "v4l2", "file",
	// "images", "url" or "gstreamer".
	Kind string `toml:"kind"`
	// Width and Height request a capture size from devices, URLs and
	// GStreamer via CAP_PROP_FRAME_WIDTH/HEIGHT; 0 keeps the native size.
	// Files and images are delivered at their own size.
	Width  int `toml:"width"`
	Height int `toml:"height"`
	// FPS is the requested capture rate for devices, and the playback rate
	// for files (0 = the file's own rate) and images (default 1).
	FPS float64 `toml:"fps"`
	// DetectFPS delivers at most this many frames per second to the
	// consumer; the others are read and discarded (Stats.Skipped). 0 = no
	// limit.
	DetectFPS float64 `toml:"detect_fps"`
	// Loop restarts a file or images source at its end instead of ending.
	Loop bool `toml:"loop"`
	// Realtime paces file and images reads at the playback rate so they
	// behave like a live camera. nil means true; false reads each frame as
	// soon as the consumer took the previous one, so every frame is
	// processed (benchmarks, batch runs) and none is decoded in vain.
	Realtime *bool `toml:"realtime"`
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// reopen attempts (defaults 1s and 30s).
	ReconnectMin cfgtypes.Duration `toml:"reconnect_min"`
	ReconnectMax cfgtypes.Duration `toml:"reconnect_max"`
}

// WithDefaults returns a copy of c with defaults filled in: the detected
// Kind, the reconnect bounds, Realtime=true and 1 fps for images. It never
// modifies c (Realtime is copied, not shared).
func (c Config) WithDefaults() Config {
	d := c
	if d.Kind == "" {
		d.Kind = DetectKind(d.Source)
	}
	if d.ReconnectMin == 0 {
		d.ReconnectMin = cfgtypes.Duration(DefaultReconnectMin)
	}
	if d.ReconnectMax == 0 {
		d.ReconnectMax = cfgtypes.Duration(max(DefaultReconnectMax, d.ReconnectMin.D()))
	}
	rt := true
	if c.Realtime != nil {
		rt = *c.Realtime
	}
	d.Realtime = &rt
	if d.Kind == KindImages && d.FPS == 0 {
		d.FPS = DefaultImagesFPS
	}
	return d
}

// IsRealtime reports whether file and images reads are paced (Realtime nil
// or true).
func (c Config) IsRealtime() bool { return c.Realtime == nil || *c.Realtime }

// Validate checks c as written (zero values are allowed where a default
// exists) and returns every problem, joined. Each message names the camera,
// the field and the value, e.g. `camera "front": detect_fps: -1 must be >= 0`.
// For kind file and images the path must exist. URL credentials never
// appear in messages.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("camera %q: %s: "+format, append([]any{c.Name, field}, args...)...))
	}
	if strings.TrimSpace(c.Name) == "" {
		bad("name", "must not be empty")
	}
	src := RedactURL(c.Source)
	if strings.TrimSpace(c.Source) == "" {
		bad("source", "must not be empty")
	}
	switch c.Kind {
	case "", KindV4L2, KindFile, KindImages, KindURL, KindGStreamer, KindCSI:
	default:
		bad("kind", "unknown kind %q (want %q, %q, %q, %q, %q or empty for auto)",
			c.Kind, KindV4L2, KindFile, KindImages, KindURL, KindGStreamer)
	}
	if c.Width < 0 {
		bad("width", "%d must be >= 0", c.Width)
	}
	if c.Height < 0 {
		bad("height", "%d must be >= 0", c.Height)
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"fps", c.FPS}, {"detect_fps", c.DetectFPS}} {
		if err := cfgtypes.Float64(f.key, f.v, cfgtypes.NonNegative); err != nil {
			errs = append(errs, fmt.Errorf("camera %q: %w", c.Name, err))
		}
	}
	if c.ReconnectMin < 0 {
		bad("reconnect_min", "%v must be >= 0", c.ReconnectMin)
	}
	if c.ReconnectMax < 0 {
		bad("reconnect_max", "%v must be >= 0", c.ReconnectMax)
	}
	d := c.WithDefaults()
	if c.ReconnectMin >= 0 && c.ReconnectMax > 0 && d.ReconnectMax < d.ReconnectMin {
		bad("reconnect_max", "%v must be >= reconnect_min (%v)", d.ReconnectMax, d.ReconnectMin)
	}
	if strings.TrimSpace(c.Source) == "" {
		return errors.Join(errs...)
	}
	live := d.Kind == KindV4L2 || d.Kind == KindURL || d.Kind == KindGStreamer || d.Kind == KindCSI
	if c.Loop && live {
		bad("loop", "true only applies to kind %q or %q (kind is %q)", KindFile, KindImages, d.Kind)
	}
	switch d.Kind {
	case KindV4L2:
		if !allDigits(c.Source) && !filepath.IsAbs(c.Source) {
			bad("source", "%q is neither a device index nor an absolute device path", src)
		}
	case KindURL:
		if !strings.Contains(c.Source, "://") {
			bad("source", "%q is not a URL (want scheme://...)", src)
		}
	case KindGStreamer:
		if !strings.Contains(c.Source, "appsink") {
			bad("source", "gstreamer pipeline %q must end in appsink", src)
		}
	case KindFile:
		st, err := os.Stat(c.Source)
		switch {
		case errors.Is(err, os.ErrNotExist):
			bad("source", "file %q does not exist", src)
		case err != nil:
			bad("source", "%w", err)
		case st.IsDir():
			bad("source", "%q is a directory (use kind %q for a directory of images)", src, KindImages)
		}
	case KindImages:
		st, err := os.Stat(c.Source)
		switch {
		case errors.Is(err, os.ErrNotExist):
			bad("source", "images path %q does not exist", src)
		case err != nil:
			bad("source", "%w", err)
		case !st.IsDir() && !IsImageFile(c.Source):
			bad("source", "%q is neither a directory nor an image file (%s)", src, extList())
		}
	}
	return errors.Join(errs...)
}

// DetectKind returns the kind an empty Config.Kind resolves to:
// rtsp://, rtsps://, rtmp://, http://, https:// → url; a source containing
// " ! " → gstreamer; /dev/video* or all digits → v4l2; an existing directory
// → images; an image extension (.jpg .jpeg .png .bmp .webp .tif .tiff) →
// images; anything else → file.
func DetectKind(source string) string {
	if source == KindCSI {
		return KindCSI
	}
	lower := strings.ToLower(source)
	for _, p := range []string{"rtsp://", "rtsps://", "rtmp://", "http://", "https://"} {
		if strings.HasPrefix(lower, p) {
			return KindURL
		}
	}
	switch {
	case strings.Contains(source, " ! "):
		return KindGStreamer
	case strings.HasPrefix(source, "/dev/video") || allDigits(source):
		return KindV4L2
	}
	if st, err := os.Stat(source); err == nil && st.IsDir() {
		return KindImages
	}
	if IsImageFile(source) {
		return KindImages
	}
	return KindFile
}

// RedactURL masks the secrets in s (URL passwords, password query
// parameters, GStreamer password properties; see redact.String) so the
// result can be logged: "rtsp://user:xxxxx@host".
func RedactURL(s string) string { return redact.String(s) }

// IsImageFile reports whether p has an image extension an images source reads.
func IsImageFile(p string) bool { return imageExts[strings.ToLower(filepath.Ext(p))] }

func extList() string { return ".jpg .jpeg .png .bmp .webp .tif .tiff" }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
