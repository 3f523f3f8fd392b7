// Package cvsafe runs the OpenCV calls that can throw on input edgedet does
// not control (image files, output paths, codecs, frame sizes) through a
// thin C++ layer that catches cv::Exception. gocv calls OpenCV directly, and
// a C++ exception crossing cgo aborts the whole process (SIGABRT), which Go
// cannot recover. Each function here validates what it can first, with an
// error naming the file or value, and turns whatever OpenCV still throws
// into an *Error.
package cvsafe

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "cvsafe.h"
*/
import "C"

import (
	"fmt"
	"image"
	"strconv"
	"strings"
	"unsafe"

	"gocv.io/x/gocv"
)

// Error is an exception OpenCV threw, caught before it could abort the
// process. Op names the OpenCV call, Code is the cv::Error::Code
// (e.g. -215 for a failed assertion; 0 for an exception that is not a
// cv::Exception) and Msg is OpenCV's message.
type Error struct {
	Op   string
	Code int
	Msg  string
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("opencv %s: %s (code %d)", e.Op, e.Msg, e.Code)
	}
	return "opencv " + e.Op + ": " + e.Msg
}

// takeErr converts and frees a message set by the C++ layer: a
// cv::Exception comes as "<code>\x1f<message>".
func takeErr(op string, cerr *C.char) error {
	if cerr == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(cerr))
	e := &Error{Op: op, Msg: C.GoString(cerr)}
	if code, msg, ok := strings.Cut(e.Msg, "\x1f"); ok {
		if n, err := strconv.Atoi(code); err == nil {
			e.Code, e.Msg = n, msg
		}
	}
	return e
}

// matPtr is the cv::Mat* behind m.
func matPtr(m *gocv.Mat) unsafe.Pointer { return unsafe.Pointer(m.Ptr()) }

// cInts copies params into C memory (nil for none); free it with C.free.
func cInts(params []int) (*C.int, C.int) {
	if len(params) == 0 {
		return nil, 0
	}
	p := (*C.int)(C.malloc(C.size_t(len(params)) * C.size_t(unsafe.Sizeof(C.int(0)))))
	s := unsafe.Slice(p, len(params))
	for i, v := range params {
		s[i] = C.int(v)
	}
	return p, C.int(len(params))
}

// MaxSide bounds the width and height Resize and OpenVideoWriter accept: far
// above any camera, far below what would exhaust memory or overflow
// OpenCV's int sizes.
const MaxSide = 1 << 15

// Resize resizes src into dst at size with the given interpolation. An
// empty src or a size outside [1, MaxSide] is an error (OpenCV would throw).
// It makes no Go heap allocation when it succeeds. (Like the other
// functions here it calls no gocv method that is a cgo call on its Mat
// arguments: that would move them to the heap.)
func Resize(src gocv.Mat, dst *gocv.Mat, size image.Point, interp gocv.InterpolationFlags) error {
	if size.X < 1 || size.Y < 1 || size.X > MaxSide || size.Y > MaxSide {
		return fmt.Errorf("resize: target size %dx%d not in 1..%d", size.X, size.Y, MaxSide)
	}
	cerr := C.cvsafe_resize(matPtr(&src), matPtr(dst), C.int(size.X), C.int(size.Y), C.int(interp))
	if err := takeErr("resize", cerr); err != nil {
		return fmt.Errorf("resize to %dx%d: %w", size.X, size.Y, err)
	}
	return nil
}

// CvtColor converts src into dst with code. An empty src is an error, and
// so is a code that does not fit src's channel count (OpenCV throws). It
// makes no Go heap allocation when it succeeds.
func CvtColor(src gocv.Mat, dst *gocv.Mat, code gocv.ColorConversionCode) error {
	cerr := C.cvsafe_cvtcolor(matPtr(&src), matPtr(dst), C.int(code))
	if err := takeErr("cvtColor", cerr); err != nil {
		failed := src // a copy, so only this path moves a Mat to the heap
		return fmt.Errorf("convert colour of a %d-channel image (code %d): %w", failed.Channels(), code, err)
	}
	return nil
}
