package cvsafe_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/cvsafe"
)

// bgr is a w×h 8-bit BGR image with a gradient (so encoders have content).
func bgr(t testing.TB, w, h int) *gocv.Mat {
	t.Helper()
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	t.Cleanup(func() { m.Close() })
	gocv.Rectangle(&m, image.Rect(w/4, h/4, w/2, h/2), color.RGBA{200, 100, 50, 0}, -1)
	return &m
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestWriterExts(t *testing.T) {
	exts := cvsafe.WriterExts()
	for _, e := range []string{".jpg", ".png", ".bmp"} {
		if !slices.Contains(exts, e) {
			t.Errorf("WriterExts() = %v, missing %s", exts, e)
		}
	}
	if slices.Contains(exts, ".txt") {
		t.Errorf("WriterExts() = %v has .txt", exts)
	}
}

// TestWriteImage: every input that made gocv.IMWrite abort the process
// (an extension with no writer) or fail silently is an error naming the
// file; a good one writes a file OpenCV reads back.
func TestWriteImage(t *testing.T) {
	dir := t.TempDir()
	img := bgr(t, 32, 24)
	empty := gocv.NewMat()
	defer empty.Close()
	for _, tc := range []struct {
		name, path string
		img        gocv.Mat
		params     []int
		want       []string
	}{
		{"txt extension", filepath.Join(dir, "x.txt"), *img, nil, []string{"x.txt", `".txt"`, ".jpg"}},
		{"no extension", filepath.Join(dir, "x"), *img, nil, []string{"no image extension", ".png"}},
		{"missing directory", filepath.Join(dir, "no", "x.jpg"), *img, nil, []string{"no/x.jpg", "directory"}},
		{"empty image", filepath.Join(dir, "e.jpg"), empty, nil, []string{"e.jpg", "empty image"}},
		{"odd params", filepath.Join(dir, "p.jpg"), *img, []int{gocv.IMWriteJpegQuality}, []string{"p.jpg", "pairs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, cvsafe.WriteImage(tc.path, tc.img, tc.params...), tc.want...)
		})
	}
	// A 2-channel image cannot be a JPEG: OpenCV throws, caught.
	two := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV8UC2)
	defer two.Close()
	err := cvsafe.WriteImage(filepath.Join(dir, "two.jpg"), two)
	var cvErr *cvsafe.Error
	if !errors.As(err, &cvErr) {
		t.Errorf("2-channel JPEG: error %v is not a *cvsafe.Error", err)
	}

	good := filepath.Join(dir, "Good.JPG")
	if err := cvsafe.WriteImage(good, *img, gocv.IMWriteJpegQuality, 90); err != nil {
		t.Fatal(err)
	}
	back, err := cvsafe.ReadImage(good, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.Cols() != 32 || back.Rows() != 24 {
		t.Errorf("read back %dx%d, want 32x24", back.Cols(), back.Rows())
	}
}

func TestEncodeImage(t *testing.T) {
	img := bgr(t, 16, 16)
	if _, err := cvsafe.EncodeImage(".txt", *img); err == nil || !strings.Contains(err.Error(), ".txt") {
		t.Errorf(".txt: error %v, want one naming .txt", err)
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := cvsafe.EncodeImage(gocv.JPEGFileExt, empty); err == nil {
		t.Error("empty image: no error")
	}
	buf, err := cvsafe.EncodeImage(gocv.JPEGFileExt, *img, gocv.IMWriteJpegQuality, 80)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte{0xff, 0xd8}) || !bytes.HasSuffix(buf, []byte{0xff, 0xd9}) {
		t.Errorf("encoded %d bytes are not a JPEG", len(buf))
	}
	m, err := cvsafe.DecodeImage(buf, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Cols() != 16 {
		t.Errorf("decoded width %d, want 16", m.Cols())
	}
}

// TestReadImageBadFiles: a directory, an empty file, a truncated JPEG,
// garbage and a missing file are errors naming the path.
func TestReadImageBadFiles(t *testing.T) {
	dir := t.TempDir()
	img := bgr(t, 64, 48)
	full := filepath.Join(dir, "full.jpg")
	if err := cvsafe.WriteImage(full, *img); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	isDir := filepath.Join(dir, "dir.jpg")
	if err := os.Mkdir(isDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A FIFO with no writer: opening it to read blocked ReadImage forever.
	fifo := filepath.Join(dir, "fifo.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"directory", isDir, "is a directory"},
		{"empty file", write("empty.jpg", nil), "empty file"},
		{"truncated jpeg", write("cut.jpg", data[:len(data)/2]), "truncated JPEG"},
		{"garbage", write("junk.png", []byte("not an image at all")), "cannot decode"},
		{"missing", filepath.Join(dir, "nope.jpg"), "nope.jpg: no such file"},
		{"fifo", fifo, "fifo.jpg: not a regular file"},
		{"huge png header", write("huge.png", pngHeader(60000, 60000)), "60000x60000 is 3600000000 pixels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := cvsafe.ReadImage(tc.path, gocv.IMReadColor)
			wantErr(t, err, filepath.Base(tc.path), tc.want)
			if m.Ptr() != nil {
				t.Error("a Mat came back with the error")
			}
		})
	}
	if _, err := cvsafe.DecodeImage(data[:len(data)/2], gocv.IMReadColor); err == nil {
		t.Error("DecodeImage of a truncated JPEG: no error")
	}
	if _, err := cvsafe.DecodeImage(pngHeader(30000, 30000), gocv.IMReadColor); err == nil || !strings.Contains(err.Error(), "30000x30000") {
		t.Errorf("DecodeImage of a 30000x30000 PNG header: %v", err)
	}
	if _, err := cvsafe.DecodeImage(nil, gocv.IMReadColor); err == nil {
		t.Error("DecodeImage of no bytes: no error")
	}
}

// TestResizeCvtColor: the inputs that made gocv abort (an empty source, a
// zero size, a conversion code for another channel count) are errors.
func TestResizeCvtColor(t *testing.T) {
	img := bgr(t, 20, 10)
	empty := gocv.NewMat()
	defer empty.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	wantErr(t, cvsafe.Resize(empty, &dst, image.Pt(4, 4), gocv.InterpolationLinear), "empty")
	wantErr(t, cvsafe.Resize(*img, &dst, image.Pt(0, 4), gocv.InterpolationLinear), "0x4")
	wantErr(t, cvsafe.Resize(*img, &dst, image.Pt(1<<20, 4), gocv.InterpolationLinear), "1048576x4")
	if err := cvsafe.Resize(*img, &dst, image.Pt(10, 5), gocv.InterpolationArea); err != nil {
		t.Fatal(err)
	}
	if dst.Cols() != 10 || dst.Rows() != 5 {
		t.Errorf("resized to %dx%d, want 10x5", dst.Cols(), dst.Rows())
	}
	err := cvsafe.CvtColor(*img, &dst, gocv.ColorGrayToBGR)
	var cvErr *cvsafe.Error
	if !errors.As(err, &cvErr) || !strings.Contains(err.Error(), "3-channel") || cvErr.Code != -2 {
		t.Errorf("GrayToBGR on BGR: error %v, want a *cvsafe.Error naming the 3 channels, code -2 (StsError)", err)
	}
	wantErr(t, cvsafe.CvtColor(empty, &dst, gocv.ColorBGRToGray), "empty")

	// Both sit on per-frame paths that allocate nothing.
	grey := gocv.NewMat()
	defer grey.Close()
	if n := testing.AllocsPerRun(10, func() {
		if err := cvsafe.Resize(*img, &dst, image.Pt(10, 5), gocv.InterpolationArea); err != nil {
			t.Fatal(err)
		}
		if err := cvsafe.CvtColor(dst, &grey, gocv.ColorBGRToGray); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Resize and CvtColor allocate %v times", n)
	}
	if err := cvsafe.CvtColor(*img, &dst, gocv.ColorBGRToGray); err != nil {
		t.Fatal(err)
	}
	if dst.Channels() != 1 {
		t.Errorf("grey has %d channels", dst.Channels())
	}
}

func TestVideoWriter(t *testing.T) {
	dir := t.TempDir()
	avi := filepath.Join(dir, "a.avi")
	for _, tc := range []struct {
		name, path, codec string
		fps               float64
		w, h              int
		want              string
	}{
		{"zero size", avi, "MJPG", 10, 0, 0, "size 0x0"},
		{"negative size", avi, "MJPG", 10, -5, 8, "size -5x8"},
		{"huge size", avi, "MJPG", 10, 100000, 100000, "size 100000x100000"},
		{"short codec", avi, "MJ", 10, 8, 8, `codec "MJ"`},
		{"zero fps", avi, "MJPG", 0, 8, 8, "fps 0"},
		{"unknown codec", avi, "ZZZZ", 10, 8, 8, "cannot write ZZZZ"},
		{"no backend for the extension", filepath.Join(dir, "a.txt"), "MJPG", 10, 8, 8, "a.txt"},
		{"missing directory", filepath.Join(dir, "no", "a.avi"), "MJPG", 10, 8, 8, "no/a.avi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vw, err := cvsafe.OpenVideoWriter(tc.path, tc.codec, tc.fps, tc.w, tc.h, true)
			wantErr(t, err, tc.want)
			if vw != nil {
				t.Error("a writer came back with the error")
				vw.Close()
			}
		})
	}

	vw, err := cvsafe.OpenVideoWriter(avi, "MJPG", 10, 32, 24, true)
	if err != nil {
		t.Fatal(err)
	}
	defer vw.Close()
	wantErr(t, vw.Write(*bgr(t, 16, 16)), "16x16", "32x24")
	for range 3 {
		if err := vw.Write(*bgr(t, 32, 24)); err != nil {
			t.Fatal(err)
		}
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := vw.Write(*bgr(t, 32, 24)); !errors.Is(err, cvsafe.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	vc, err := gocv.VideoCaptureFile(avi)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if n := vc.Get(gocv.VideoCaptureFrameCount); n != 3 {
		t.Errorf("video has %v frames, want 3", n)
	}
}

// pngHeader is a PNG signature and IHDR chunk for a w×h 8-bit RGB image,
// with no image data: what a decompression bomb starts with.
func pngHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}
