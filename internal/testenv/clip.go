// Package testenv holds helpers that tests and the setup script share, such
// as building a small sample video clip from still images.
package testenv

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/cvsafe"
)

// PadGrey is the grey level of the letterbox padding WriteClip adds.
const PadGrey = 114

// WriteClip writes an MJPG .avi of size w×h at fps, showing each image
// (letterboxed, grey 114 padding) for framesEach frames, and returns nothing
// but error. Used by tests and by the setup to build the sample clip.
// The parent directory of path is created when missing.
func WriteClip(path string, images []string, w, h int, fps float64, framesEach int) (err error) {
	switch {
	case len(images) == 0:
		return errors.New("write clip: no images")
	case w <= 0 || h <= 0:
		return fmt.Errorf("write clip: size %dx%d must be positive", w, h)
	case !(fps > 0) || math.IsInf(fps, 0):
		return fmt.Errorf("write clip: fps %v must be > 0", fps)
	case framesEach < 1:
		return fmt.Errorf("write clip: frames each %d must be >= 1", framesEach)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write clip %q: %w", path, err)
	}

	canvas := gocv.NewMat()
	defer canvas.Close()
	resized := gocv.NewMat()
	defer resized.Close()

	// Decode and letterbox every image before opening the writer, so a bad
	// input leaves no half-written file behind.
	frames := make([]gocv.Mat, 0, len(images))
	defer func() {
		for i := range frames {
			frames[i].Close()
		}
	}()
	for _, name := range images {
		img, err := cvsafe.ReadImage(name, gocv.IMReadColor)
		if err != nil {
			return fmt.Errorf("write clip: %w", err)
		}
		out := gocv.NewMat()
		letterbox(img, &resized, &out, w, h)
		img.Close()
		frames = append(frames, out)
	}

	vw, err := cvsafe.OpenVideoWriter(path, "MJPG", fps, w, h, true)
	if err != nil {
		return fmt.Errorf("write clip: %w", err)
	}
	for i := range frames {
		for range framesEach {
			if err := vw.Write(frames[i]); err != nil {
				vw.Close()
				return fmt.Errorf("write clip %q: %w", path, err)
			}
		}
	}
	vw.Close()

	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("write clip %q: %w", path, err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("write clip %q: file is empty after writing", path)
	}
	return nil
}

// letterbox scales src to fit w×h keeping its aspect ratio and centres it on a
// PadGrey canvas written to dst. tmp is scratch space.
func letterbox(src gocv.Mat, tmp, dst *gocv.Mat, w, h int) {
	sw, sh := src.Cols(), src.Rows()
	scale := math.Min(float64(w)/float64(sw), float64(h)/float64(sh))
	nw := max(1, min(w, int(math.Round(float64(sw)*scale))))
	nh := max(1, min(h, int(math.Round(float64(sh)*scale))))
	gocv.Resize(src, tmp, image.Pt(nw, nh), 0, 0, gocv.InterpolationArea)
	left, top := (w-nw)/2, (h-nh)/2
	grey := color.RGBA{R: PadGrey, G: PadGrey, B: PadGrey, A: 0}
	gocv.CopyMakeBorder(*tmp, dst, top, h-nh-top, left, w-nw-left, gocv.BorderConstant, grey)
}
