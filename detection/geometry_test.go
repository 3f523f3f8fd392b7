package detection

import (
	"math"
	"strings"
	"testing"
)

func TestNewGeometry(t *testing.T) {
	tests := []struct {
		name                   string
		srcW, srcH, dstW, dstH int
		mode                   ResizeMode
		want                   Geometry // Mode/Src/Dst are filled from the inputs
	}{
		{
			// YOLOX official: r = min(416/640, 416/480) = 0.65, image at the top-left.
			name: "topleft 640x480 to 416", srcW: 640, srcH: 480, dstW: 416, dstH: 416, mode: ResizeLetterboxTopLeft,
			want: Geometry{ResizedW: 416, ResizedH: 312, ScaleX: 0.65, ScaleY: 0.65},
		},
		{
			// Height limits: r = 416/640 = 0.65, 480*0.65 = 312 wide.
			name: "topleft 480x640 to 416", srcW: 480, srcH: 640, dstW: 416, dstH: 416, mode: ResizeLetterboxTopLeft,
			want: Geometry{ResizedW: 312, ResizedH: 416, ScaleX: 0.65, ScaleY: 0.65},
		},
		{
			// YOLOX truncates: 481*0.65 = 312.65 -> 312 (rounding would give 313).
			name: "topleft truncates like yolox", srcW: 640, srcH: 481, dstW: 416, dstH: 416, mode: ResizeLetterboxTopLeft,
			want: Geometry{ResizedW: 416, ResizedH: 312, ScaleX: 0.65, ScaleY: 0.65},
		},
		{
			// r = min(320/810, 320/1080) = 8/27; 810*8/27 = 240; dw = (320-240)/2 = 40,
			// left = round(39.9) = 40; dh = 0, top = round(-0.1) = 0.
			name: "letterbox 810x1080 to 320", srcW: 810, srcH: 1080, dstW: 320, dstH: 320, mode: ResizeLetterbox,
			want: Geometry{ResizedW: 240, ResizedH: 320, PadLeft: 40, PadTop: 0, ScaleX: 8.0 / 27, ScaleY: 8.0 / 27},
		},
		{
			// r = 0.32; 565*0.32 = 180.8 -> 181; dh = (320-181)/2 = 69.5, top = round(69.4) = 69
			// (bottom gets 70, like Ultralytics' round(dh+0.1)).
			name: "letterbox odd spare rows", srcW: 1000, srcH: 565, dstW: 320, dstH: 320, mode: ResizeLetterbox,
			want: Geometry{ResizedW: 320, ResizedH: 181, PadLeft: 0, PadTop: 69, ScaleX: 0.32, ScaleY: 0.32},
		},
		{
			// r = 0.5; 481*0.5 = 240.5 rounds half to even (Python round) -> 240; dh = 40.
			name: "letterbox rounds half to even", srcW: 640, srcH: 481, dstW: 320, dstH: 320, mode: ResizeLetterbox,
			want: Geometry{ResizedW: 320, ResizedH: 240, PadLeft: 0, PadTop: 40, ScaleX: 0.5, ScaleY: 0.5},
		},
		{
			// Upscaling: r = min(640/320, 640/240) = 2; 640x480 inside 640x640, dh = 80.
			name: "letterbox upscales", srcW: 320, srcH: 240, dstW: 640, dstH: 640, mode: ResizeLetterbox,
			want: Geometry{ResizedW: 640, ResizedH: 480, PadLeft: 0, PadTop: 80, ScaleX: 2, ScaleY: 2},
		},
		{
			// Non-square input: r = min(640/1280, 384/720) = 0.5; 640x360, dh = 12.
			name: "letterbox non-square input", srcW: 1280, srcH: 720, dstW: 640, dstH: 384, mode: ResizeLetterbox,
			want: Geometry{ResizedW: 640, ResizedH: 360, PadLeft: 0, PadTop: 12, ScaleX: 0.5, ScaleY: 0.5},
		},
		{
			name: "stretch 640x480 to 320", srcW: 640, srcH: 480, dstW: 320, dstH: 320, mode: ResizeStretch,
			want: Geometry{ResizedW: 320, ResizedH: 320, ScaleX: 0.5, ScaleY: 2.0 / 3},
		},
		{
			// A sliver never resizes to 0 pixels: 1*0.032 -> 1, dh = 159.5, top = round(159.4) = 159.
			name: "letterbox keeps at least one pixel", srcW: 10000, srcH: 1, dstW: 320, dstH: 320, mode: ResizeLetterbox,
			want: Geometry{ResizedW: 320, ResizedH: 1, PadLeft: 0, PadTop: 159, ScaleX: 0.032, ScaleY: 0.032},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewGeometry(tt.srcW, tt.srcH, tt.dstW, tt.dstH, tt.mode)
			if err != nil {
				t.Fatalf("NewGeometry: %v", err)
			}
			want := tt.want
			want.Mode, want.SrcW, want.SrcH, want.DstW, want.DstH = tt.mode, tt.srcW, tt.srcH, tt.dstW, tt.dstH
			if got != want {
				t.Errorf("NewGeometry(%d, %d, %d, %d, %q)\n got %+v\nwant %+v", tt.srcW, tt.srcH, tt.dstW, tt.dstH, tt.mode, got, want)
			}
		})
	}
}

func TestNewGeometryErrors(t *testing.T) {
	tests := []struct {
		name                   string
		srcW, srcH, dstW, dstH int
		mode                   ResizeMode
		wantInErr              string
	}{
		{"zero frame width", 0, 480, 320, 320, ResizeLetterbox, "frame size 0x480"},
		{"zero frame height", 640, 0, 320, 320, ResizeLetterbox, "frame size 640x0"},
		{"zero input width", 640, 480, 0, 320, ResizeLetterbox, "model input size 0x320"},
		{"negative frame height", 640, -1, 320, 320, ResizeLetterbox, "frame size 640x-1"},
		{"zero input height", 640, 480, 320, 0, ResizeStretch, "model input size 320x0"},
		{"unknown mode", 640, 480, 320, 320, "fit", `resize mode "fit"`},
		{"empty mode", 640, 480, 320, 320, "", `resize mode ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGeometry(tt.srcW, tt.srcH, tt.dstW, tt.dstH, tt.mode)
			if err == nil {
				t.Fatalf("NewGeometry = %+v, want an error", g)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not name %q", err, tt.wantInErr)
			}
			if g != (Geometry{}) {
				t.Errorf("NewGeometry returned %+v with an error, want the zero Geometry", g)
			}
		})
	}
}

// TestNewGeometryOnePixel: a one-pixel frame and a one-pixel input are
// sizes like any other.
func TestNewGeometryOnePixel(t *testing.T) {
	for _, mode := range []ResizeMode{ResizeLetterbox, ResizeLetterboxTopLeft, ResizeStretch} {
		for _, s := range [][4]int{{1, 1, 320, 320}, {640, 480, 1, 1}, {1, 1, 1, 1}} {
			g, err := NewGeometry(s[0], s[1], s[2], s[3], mode)
			if err != nil {
				t.Errorf("%s %v: %v", mode, s, err)
				continue
			}
			if g.ResizedW < 1 || g.ResizedH < 1 || g.ResizedW > s[2] || g.ResizedH > s[3] {
				t.Errorf("%s %v: resized to %dx%d", mode, s, g.ResizedW, g.ResizedH)
			}
		}
	}
}

func TestGeometryToFrame(t *testing.T) {
	// 810x1080 -> 320 centred: r = 8/27, PadLeft 40.
	g, err := NewGeometry(810, 1080, 320, 320, ResizeLetterbox)
	if err != nil {
		t.Fatal(err)
	}
	// x = (x_in - 40) * 27/8, y = y_in * 27/8.
	got := g.ToFrame(Box{X1: 40 + 16, Y1: 32, X2: 40 + 160, Y2: 256})
	want := Box{X1: 54, Y1: 108, X2: 540, Y2: 864}
	assertBox(t, "inside", got, want, 1e-3)

	// A box reaching into the padding and past the input edge is clipped
	// to the frame.
	got = g.ToFrame(Box{X1: 20, Y1: -10, X2: 300, Y2: 330})
	want = Box{X1: 0, Y1: 0, X2: 810, Y2: 1080}
	assertBox(t, "clipped", got, want, 0)

	// YOLOX top-left: x = x_in / r, no offset (r = 0.65).
	g, err = NewGeometry(640, 480, 416, 416, ResizeLetterboxTopLeft)
	if err != nil {
		t.Fatal(err)
	}
	got = g.ToFrame(Box{X1: 65, Y1: 130, X2: 390, Y2: 312})
	want = Box{X1: 100, Y1: 200, X2: 600, Y2: 480}
	assertBox(t, "topleft", got, want, 1e-3)
	// The bottom padding (input rows 312..416) maps past the frame and is clipped.
	got = g.ToFrame(Box{X1: 0, Y1: 300, X2: 416, Y2: 416})
	want = Box{X1: 0, Y1: 300 / 0.65, X2: 640, Y2: 480}
	assertBox(t, "topleft clipped", got, want, 1e-3)

	// NaN coordinates never escape the frame.
	nan := float32(math.NaN())
	got = g.ToFrame(Box{X1: nan, Y1: nan, X2: nan, Y2: nan})
	assertBox(t, "nan", got, Box{}, 0)
}

func TestGeometryRoundTrip(t *testing.T) {
	frame := Box{X1: 12.5, Y1: 7, X2: 501, Y2: 333.25}
	for _, mode := range []ResizeMode{ResizeLetterbox, ResizeLetterboxTopLeft, ResizeStretch} {
		for _, size := range [][4]int{{640, 480, 320, 320}, {810, 1080, 320, 320}, {1280, 720, 640, 384}, {600, 400, 640, 640}} {
			g, err := NewGeometry(size[0], size[1], size[2], size[3], mode)
			if err != nil {
				t.Fatal(err)
			}
			in := g.ToInput(frame)
			// The box must land inside the resized image, not in the padding.
			if in.X1 < float32(g.PadLeft) || in.Y1 < float32(g.PadTop) ||
				in.X2 > float32(g.PadLeft+g.ResizedW)+0.5 || in.Y2 > float32(g.PadTop+g.ResizedH)+0.5 {
				t.Errorf("%s %v: ToInput(%v) = %v, outside the resized image %+v", mode, size, frame, in, g)
			}
			assertBox(t, string(mode), g.ToFrame(in), frame, 1e-3)
		}
	}
}

func assertBox(t *testing.T, name string, got, want Box, tol float32) {
	t.Helper()
	d := max(abs32(got.X1-want.X1), abs32(got.Y1-want.Y1), abs32(got.X2-want.X2), abs32(got.Y2-want.Y2))
	if !(d <= tol) {
		t.Errorf("%s: box %v, want %v (tolerance %g)", name, got, want, tol)
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
