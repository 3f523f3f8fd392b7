package motion

import (
	"errors"
	"fmt"

	"github.com/edgedet/edgedet/internal/cfgtypes"
)

// Defaults filled by Config.WithDefaults.
const (
	DefaultThreshold          = 30
	DefaultFrameHeight        = 100
	DefaultLearningRate       = 0.05
	DefaultLightningThreshold = 0.8
	// DefaultMinAreaFraction is the smallest motion area, as a fraction of
	// the frame area, used while Config.MinArea is 0: 0.0005 is 8.9 pixels
	// of a 178x100 motion frame (Frigate's default contour_area is 10 at
	// that size) or 1037 pixels of a 1920x1080 frame.
	DefaultMinAreaFraction = 0.0005
)

// Limits checked by Config.Validate.
const (
	MinFrameHeight = 20
	MaxFrameHeight = 2160
	// MaxCoord bounds mask coordinates, far beyond any camera frame.
	MaxCoord = 32767
)

// Point is a mask polygon vertex in frame pixels: x, y. In TOML it is a
// two-element integer array, so a mask reads
//
//	mask = [[[0, 0], [200, 0], [200, 50], [0, 50]]]
type Point [2]int

// Config tunes a Detector. It is decoded from a "motion" TOML table; a zero
// field means "use the default" (see WithDefaults) and Validate judges the
// result.
type Config struct {
	// Threshold is the difference between a pixel of the (downscaled,
	// grey, blurred) frame and the background at which the pixel counts as
	// changed, 1..255 (default 30).
	Threshold int `toml:"threshold"`
	// MinArea is the smallest area of a region of motion, in pixels of the
	// full frame, that is reported (it is converted to the motion
	// resolution). 0 means DefaultMinAreaFraction of the frame area, which
	// follows the frame size.
	MinArea int `toml:"min_area"`
	// FrameHeight is the height, 20..2160, frames are downscaled to for
	// motion detection, keeping the aspect ratio (default 100). Frames
	// smaller than that are used at their own size.
	FrameHeight int `toml:"frame_height"`
	// LearningRate is the weight, in (0,1], of each frame in the running
	// average that is the background (default 0.05: an object that stops,
	// 100 grey levels off the background, stops being reported after about
	// 25 frames at the default threshold; the agent rechecks tracked objects
	// that stopped anyway, so the sooner a still object or the ghost it
	// leaves is learned, the sooner the detector is free). Pixels that differ from the
	// previous frame by Threshold or more (and their neighbours) are not
	// learned, so moving objects leave no trail in the background. It is
	// per frame, so it acts faster at higher frame rates.
	LearningRate float64 `toml:"learning_rate"`
	// LightningThreshold is the fraction, in (0,1], of the unmasked frame
	// that, changing at once, means a global brightness change (lights,
	// IR switch, exposure) rather than motion (default 0.8): the background
	// is reset to the frame, nothing is reported and Calibrating is true.
	LightningThreshold float64 `toml:"lightning_threshold"`
	// Masks are polygons, in frame pixels, where motion is ignored. Each
	// one is grown by one motion-resolution pixel (about 11 frame pixels
	// at 1080p with the default height) so its edges never leak.
	Masks [][]Point `toml:"mask"`
}

// WithDefaults returns c with every zero field set to its default (MinArea
// stays 0: it is resolved per frame size). It does not touch non-zero
// fields, so an invalid value stays for Validate to report. The result
// shares c's Masks; nothing in this package modifies them.
func (c Config) WithDefaults() Config {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.FrameHeight == 0 {
		c.FrameHeight = DefaultFrameHeight
	}
	if c.LearningRate == 0 {
		c.LearningRate = DefaultLearningRate
	}
	if c.LightningThreshold == 0 {
		c.LightningThreshold = DefaultLightningThreshold
	}
	return c
}

// Validate reports every invalid field, naming its key and value, e.g.
// `motion.threshold: 0 not in 1..255` or `motion.mask[1]: 2 points, a
// polygon needs at least 3`. Call it on c.WithDefaults(): zero values are
// out of range here.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("motion.%s: "+format, append([]any{key}, args...)...))
	}
	if c.Threshold < 1 || c.Threshold > 255 {
		bad("threshold", "%d not in 1..255", c.Threshold)
	}
	if c.MinArea < 0 {
		bad("min_area", "%d must be >= 0", c.MinArea)
	}
	if c.FrameHeight < MinFrameHeight || c.FrameHeight > MaxFrameHeight {
		bad("frame_height", "%d not in %d..%d", c.FrameHeight, MinFrameHeight, MaxFrameHeight)
	}
	if err := cfgtypes.Float64("motion.learning_rate", c.LearningRate, cfgtypes.UnitOpen); err != nil {
		errs = append(errs, err)
	}
	if err := cfgtypes.Float64("motion.lightning_threshold", c.LightningThreshold, cfgtypes.UnitOpen); err != nil {
		errs = append(errs, err)
	}
	for i, poly := range c.Masks {
		if len(poly) < 3 {
			bad(fmt.Sprintf("mask[%d]", i), "%d points, a polygon needs at least 3", len(poly))
			continue
		}
		for j, p := range poly {
			if p[0] < 0 || p[0] > MaxCoord || p[1] < 0 || p[1] > MaxCoord {
				bad(fmt.Sprintf("mask[%d][%d]", i, j), "[%d, %d] not in 0..%d", p[0], p[1], MaxCoord)
			}
		}
	}
	return errors.Join(errs...)
}
