package cvsafe

// #include <stdlib.h>
// #include "cvsafe.h"
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // header sizes for checkPixels
	_ "image/png"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// MaxPixels bounds the width × height of an image ReadImage and
// DecodeImage decode: 2^27 (134 M) pixels, 400 MB as BGR, several times
// any camera's. A file's header decides how much OpenCV allocates, and
// OpenCV's own limit is 2^30 pixels (3 GB).
const MaxPixels = 1 << 27

// checkPixels refuses an image whose header (JPEG, PNG, BMP, TIFF, WebP)
// claims more than MaxPixels. Headers Go cannot read are left to OpenCV.
func checkPixels(r io.Reader) error {
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return nil
	}
	if n := int64(cfg.Width) * int64(cfg.Height); n > MaxPixels {
		return fmt.Errorf("%dx%d is %d pixels, more than the %d allowed", cfg.Width, cfg.Height, n, MaxPixels)
	}
	return nil
}

// candidateExts are the image extensions OpenCV may have a writer for;
// WriterExts keeps those this build of OpenCV really supports.
var candidateExts = []string{
	".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff",
	".ppm", ".pgm", ".pbm", ".pnm", ".pxm", ".pam", ".sr", ".ras", ".exr", ".hdr", ".pic", ".jp2",
}

var writerExts = sync.OnceValue(func() []string {
	var exts []string
	for _, e := range candidateExts {
		c := C.CString("x" + e)
		if C.cvsafe_have_writer(c) != 0 {
			exts = append(exts, e)
		}
		C.free(unsafe.Pointer(c))
	}
	return exts
})

// WriterExts lists the file extensions (lower case, with the dot) OpenCV
// can write images as.
func WriterExts() []string { return slices.Clone(writerExts()) }

// CheckImageExt reports whether OpenCV can write an image named name,
// judging by its extension; the error lists the extensions it can write.
func CheckImageExt(name string) error {
	ext := strings.ToLower(filepath.Ext(name))
	if ext == "" {
		return fmt.Errorf("%s: no image extension (use one of %s)", name, strings.Join(writerExts(), " "))
	}
	if !slices.Contains(writerExts(), ext) {
		return fmt.Errorf("%s: OpenCV cannot write %q images (use one of %s)", name, ext, strings.Join(writerExts(), " "))
	}
	return nil
}

func checkWritable(what string, img gocv.Mat) error {
	if img.Empty() {
		return fmt.Errorf("%s: empty image", what)
	}
	return nil
}

// WriteImage writes img to path in the format its extension names, with
// OpenCV's imwrite params (gocv.IMWriteJpegQuality, value, …). An
// extension OpenCV has no writer for, an empty image or a file OpenCV
// cannot create is an error naming path.
func WriteImage(path string, img gocv.Mat, params ...int) error {
	if err := CheckImageExt(path); err != nil {
		return fmt.Errorf("write image %w", err)
	}
	if err := checkWritable("write image "+path, img); err != nil {
		return err
	}
	if len(params)%2 != 0 {
		return fmt.Errorf("write image %s: params %v are not key, value pairs", path, params)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	p, n := cInts(params)
	defer C.free(unsafe.Pointer(p))
	var ok C.int
	var cerr *C.char
	C.cvsafe_imwrite(cpath, matPtr(&img), p, n, &ok, &cerr)
	if err := takeErr("imwrite", cerr); err != nil {
		return fmt.Errorf("write image %s: %w", path, err)
	}
	if ok == 0 {
		return fmt.Errorf("write image %s: OpenCV could not write the file (does its directory exist and is it writable?)", path)
	}
	return nil
}

// EncodeImage encodes img in the format ext names (".jpg", ".png", …)
// with OpenCV's imwrite params and returns the bytes (Go memory).
func EncodeImage(ext gocv.FileExt, img gocv.Mat, params ...int) ([]byte, error) {
	if err := CheckImageExt(string(ext)); err != nil {
		return nil, fmt.Errorf("encode image: %w", err)
	}
	if err := checkWritable("encode "+string(ext), img); err != nil {
		return nil, err
	}
	if len(params)%2 != 0 {
		return nil, fmt.Errorf("encode %s: params %v are not key, value pairs", ext, params)
	}
	cext := C.CString(string(ext))
	defer C.free(unsafe.Pointer(cext))
	p, n := cInts(params)
	defer C.free(unsafe.Pointer(p))
	var out *C.uchar
	var outLen C.size_t
	var cerr *C.char
	C.cvsafe_imencode(cext, matPtr(&img), p, n, &out, &outLen, &cerr)
	if err := takeErr("imencode", cerr); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ext, err)
	}
	if out == nil {
		return nil, fmt.Errorf("encode %s: %dx%d image gave no bytes", ext, img.Cols(), img.Rows())
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(outLen)), nil
}

// jpegTail is how far from the end ReadImage looks for a JPEG's
// end-of-image marker (FF D9), so the trailers some cameras append after it
// do not count as truncation. A file cut inside its compressed data has no
// FF D9 there: that data escapes every FF byte. (A file shorter than this
// whose EXIF thumbnail ends in FF D9 passes; OpenCV then decodes what it
// can.)
const jpegTail = 64 << 10

// ReadImage reads the image file at path. A missing file, a directory, an
// empty file, a JPEG cut short (no end-of-image marker near its end) or a
// file OpenCV cannot decode is an error naming path; on error the returned
// Mat is zero and needs no Close. On success the caller owns the Mat.
func ReadImage(path string, flags gocv.IMReadFlag) (gocv.Mat, error) {
	if err := checkImageFile(path); err != nil {
		return gocv.Mat{}, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	m := gocv.NewMat()
	var cerr *C.char
	C.cvsafe_imread(cpath, C.int(flags), matPtr(&m), &cerr)
	if err := takeErr("imread", cerr); err != nil {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("read image %s: %w", path, err)
	}
	if m.Empty() {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("read image %s: cannot decode it (damaged, or not a format OpenCV reads)", path)
	}
	return m, nil
}

// checkImageFile checks that path is a non-empty regular file we can read
// before OpenCV sees it: OpenCV's imread only logs a warning for a file it
// cannot open, and opening a FIFO would block. Errors name path.
func checkImageFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read image %s: %w", path, pathErr(err))
	}
	switch {
	case st.IsDir():
		return fmt.Errorf("read image %s: is a directory", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("read image %s: not a regular file", path)
	case st.Size() == 0:
		return fmt.Errorf("read image %s: empty file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read image %s: %w", path, pathErr(err))
	}
	defer f.Close()
	if err := checkPixels(io.NewSectionReader(f, 0, st.Size())); err != nil {
		return fmt.Errorf("read image %s: %w", path, err)
	}
	head := make([]byte, 2)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, []byte{0xff, 0xd8}) {
		return nil // not a JPEG (or one byte long: OpenCV rejects it)
	}
	off := max(0, st.Size()-jpegTail)
	tail := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return fmt.Errorf("read image: %w", err)
	}
	if !bytes.Contains(tail, []byte{0xff, 0xd9}) {
		return fmt.Errorf("read image %s: truncated JPEG (no end-of-image marker)", path)
	}
	return nil
}

// pathErr drops the operation and path from an *fs.PathError (the caller
// names the file) and keeps the reason ("no such file or directory").
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// DecodeImage decodes an image held in memory; the error and ownership
// rules are ReadImage's.
func DecodeImage(buf []byte, flags gocv.IMReadFlag) (gocv.Mat, error) {
	if len(buf) == 0 {
		return gocv.Mat{}, errors.New("decode image: no bytes")
	}
	if len(buf) > math.MaxInt32 {
		return gocv.Mat{}, fmt.Errorf("decode image: %d bytes is too large", len(buf))
	}
	if bytes.HasPrefix(buf, []byte{0xff, 0xd8}) && !bytes.Contains(buf[max(0, len(buf)-jpegTail):], []byte{0xff, 0xd9}) {
		return gocv.Mat{}, errors.New("decode image: truncated JPEG (no end-of-image marker)")
	}
	if err := checkPixels(bytes.NewReader(buf)); err != nil {
		return gocv.Mat{}, fmt.Errorf("decode image: %w", err)
	}
	m := gocv.NewMat()
	var cerr *C.char
	C.cvsafe_imdecode((*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), C.int(flags), matPtr(&m), &cerr)
	if err := takeErr("imdecode", cerr); err != nil {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("decode image: %w", err)
	}
	if m.Empty() {
		m.Close()
		return gocv.Mat{}, errors.New("decode image: cannot decode it (damaged, or not a format OpenCV reads)")
	}
	return m, nil
}
