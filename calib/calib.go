// Package calib supplies calibration inputs for the model tools (quantize,
// prune): frames from a directory of images or captured from a camera,
// kept encoded (small) and preprocessed on demand with the detector's own
// Preprocessor, so the tools see exactly what the agent feeds the model.
// Inputs implements onnx.Inputs; the tools below it (quant, prune) never
// import detector or camera.
package calib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/cvsafe"
	"github.com/edgedet/edgedet/internal/progress"
	"github.com/edgedet/edgedet/onnx"
)

// Inputs are calibration frames, held encoded and preprocessed one at a
// time. Close frees the preprocessor; Inputs must not be used after it.
type Inputs struct {
	names []string // for errors
	files []string // decode from disk when set
	blobs [][]byte // else decode these
	pre   *detector.Preprocessor
}

var _ onnx.Inputs = (*Inputs)(nil)

// Len is the number of frames (0 for nil Inputs).
func (e *Inputs) Len() int {
	if e == nil {
		return 0
	}
	return max(len(e.files), len(e.blobs))
}

// Input decodes frame i and preprocesses it into dst (the model input's
// element count).
func (e *Inputs) Input(_ context.Context, i int, dst []float32) error {
	img, err := e.Image(i)
	if err != nil {
		return err
	}
	defer img.Close()
	if _, err := e.pre.Run(img, dst); err != nil {
		return fmt.Errorf("%s: %w", e.names[i], err)
	}
	return nil
}

// Image decodes frame i as a BGR image; the caller closes it.
func (e *Inputs) Image(i int) (gocv.Mat, error) {
	if i < 0 || i >= e.Len() {
		return gocv.Mat{}, fmt.Errorf("calibration input %d: out of range [0,%d)", i, e.Len())
	}
	var img gocv.Mat
	var err error
	if e.files != nil {
		img, err = cvsafe.ReadImage(e.files[i], gocv.IMReadColor)
	} else {
		img, err = cvsafe.DecodeImage(e.blobs[i], gocv.IMReadColor)
	}
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%s: %w", e.names[i], err)
	}
	if img.Empty() {
		img.Close()
		return gocv.Mat{}, fmt.Errorf("%s: cannot decode image", e.names[i])
	}
	return img, nil
}

// Names are the frames' names (file paths, or "camera C frame N").
func (e *Inputs) Names() []string { return e.names }

// Close frees the preprocessor. It is nil-safe.
func (e *Inputs) Close() error {
	if e == nil || e.pre == nil {
		return nil
	}
	err := e.pre.Close()
	e.pre = nil
	return err
}

// FromDir lists the images of dir (sorted), at most limit of them (0 = all),
// checking each decodes: unreadable ones are skipped with a warning, an
// empty set is an error. spec is the model's description
// (detector.Describe).
func FromDir(dir string, limit int, spec detection.Spec, log *slog.Logger) (*Inputs, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("calibration directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && camera.IsImageFile(e.Name()) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	var good []string
	for _, f := range files {
		if limit > 0 && len(good) == limit {
			break
		}
		img, err := cvsafe.ReadImage(f, gocv.IMReadColor)
		if err != nil {
			log.Warn("skipping unreadable calibration image", "file", f, "err", err)
			continue
		}
		img.Close()
		good = append(good, f)
	}
	if len(good) == 0 {
		if len(files) == 0 {
			return nil, fmt.Errorf("calibration directory %s has no images (.jpg, .png, .bmp, .webp, .tif)", dir)
		}
		return nil, fmt.Errorf("calibration directory %s: none of its %d images can be read (first: %s)", dir, len(files), files[0])
	}
	pre, err := detector.NewPreprocessor(spec)
	if err != nil {
		return nil, err
	}
	return &Inputs{names: good, files: good, pre: pre}, nil
}

// FromCamera captures n frames from camera name (configured by cc), spread
// over time by the camera's detect_fps, keeping them JPEG-encoded; a stream
// that ends early gives fewer. It draws a progress bar on bar (nil: none).
func FromCamera(ctx context.Context, name string, cc camera.Config, n int, spec detection.Spec, log *slog.Logger, bar io.Writer) (*Inputs, error) {
	if n <= 0 {
		return nil, fmt.Errorf("camera %q: %d frames requested, want > 0", name, n)
	}
	stream, err := camera.NewStream(cc, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		stream.Close()
	}()
	if bar == nil {
		bar = io.Discard
	}
	pb := progress.New(bar, "capture", n, "frames")
	defer pb.Finish()
	e := &Inputs{}
	for len(e.blobs) < n {
		f, err := stream.Next(ctx)
		if errors.Is(err, camera.ErrEndOfStream) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("capture from camera %q: %w", name, err)
		}
		buf, err := cvsafe.EncodeImage(gocv.JPEGFileExt, f.Mat)
		stream.Release(f)
		if err != nil {
			return nil, fmt.Errorf("encode frame: %w", err)
		}
		e.blobs = append(e.blobs, buf)
		e.names = append(e.names, fmt.Sprintf("camera %s frame %d", name, len(e.blobs)))
		pb.Add(1)
	}
	if len(e.blobs) == 0 {
		return nil, fmt.Errorf("camera %q delivered no frames", name)
	}
	if e.pre, err = detector.NewPreprocessor(spec); err != nil {
		return nil, err
	}
	return e, nil
}
