package cvsafe

// #include <stdlib.h>
// #include "cvsafe.h"
import "C"

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"gocv.io/x/gocv"
)

// VideoWriter writes frames of one size and colour to a video file. Unlike
// gocv.VideoWriter it reports a file it could not open and a frame that
// does not fit, where OpenCV silently writes nothing.
type VideoWriter struct {
	p     unsafe.Pointer // cv::VideoWriter*; nil once closed
	path  string
	w, h  int
	color bool
}

// OpenVideoWriter opens path for a w×h video at fps with the four-character
// codec (e.g. "MJPG"). Every value is checked first, with an error naming
// it; a file OpenCV cannot open (no backend for the extension or codec, no
// such directory) is an error too, and no writer is returned with an error.
func OpenVideoWriter(path, codec string, fps float64, w, h int, color bool) (*VideoWriter, error) {
	var errs []error
	if len(codec) != 4 {
		errs = append(errs, fmt.Errorf("codec %q is not four characters", codec))
	} else {
		for _, r := range []byte(codec) {
			if r < 0x20 || r > 0x7e {
				errs = append(errs, fmt.Errorf("codec %q is not printable ASCII", codec))
				break
			}
		}
	}
	if math.IsNaN(fps) || math.IsInf(fps, 0) || fps <= 0 || fps > 1000 {
		errs = append(errs, fmt.Errorf("fps %g not in (0, 1000]", fps))
	}
	if w < 1 || h < 1 || w > MaxSide || h > MaxSide {
		errs = append(errs, fmt.Errorf("size %dx%d not in 1..%d", w, h, MaxSide))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("open video writer %s: %w", path, err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	fourcc := int32(codec[0]) | int32(codec[1])<<8 | int32(codec[2])<<16 | int32(codec[3])<<24
	c := C.int(0)
	if color {
		c = 1
	}
	var cerr *C.char
	p := C.cvsafe_videowriter_open(cpath, C.int(fourcc), C.double(fps), C.int(w), C.int(h), c, &cerr)
	if err := takeErr("VideoWriter.open", cerr); err != nil {
		return nil, fmt.Errorf("open video writer %s: %w", path, err)
	}
	if p == nil {
		return nil, fmt.Errorf("open video writer %s: OpenCV cannot write %s video there (check the extension, codec and directory)", path, codec)
	}
	return &VideoWriter{p: p, path: path, w: w, h: h, color: color}, nil
}

// Write appends frame, which must have the writer's size and be 8-bit BGR
// (or grey for a writer opened without colour).
func (v *VideoWriter) Write(frame gocv.Mat) error {
	if v == nil || v.p == nil {
		return fmt.Errorf("write video frame: %w", ErrClosed)
	}
	want := gocv.MatTypeCV8UC3
	if !v.color {
		want = gocv.MatTypeCV8UC1
	}
	if frame.Cols() != v.w || frame.Rows() != v.h || frame.Type() != want {
		return fmt.Errorf("write video frame to %s: frame %dx%d %v, writer takes %dx%d %v",
			v.path, frame.Cols(), frame.Rows(), frame.Type(), v.w, v.h, want)
	}
	var cerr *C.char
	C.cvsafe_videowriter_write(v.p, matPtr(&frame), &cerr)
	if err := takeErr("VideoWriter.write", cerr); err != nil {
		return fmt.Errorf("write video frame to %s: %w", v.path, err)
	}
	return nil
}

// Close finishes the file. It is nil-safe and idempotent.
func (v *VideoWriter) Close() error {
	if v == nil || v.p == nil {
		return nil
	}
	C.cvsafe_videowriter_release(v.p)
	v.p = nil
	return nil
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("cvsafe: video writer closed")
