package camera

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.avi")
	txt := filepath.Join(dir, "notes.txt")
	for _, p := range []string{clip, txt} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.avi")

	ok := []Config{
		{Name: "front", Source: "/dev/video0"},
		{Name: "front", Source: "0", Width: 640, Height: 480, FPS: 15, DetectFPS: 5},
		{Name: "door", Source: "rtsp://u:p@127.0.0.1:8554/s", ReconnectMin: dur(time.Second), ReconnectMax: dur(time.Minute)},
		{Name: "gst", Source: "videotestsrc ! videoconvert ! appsink"},
		{Name: "f", Source: clip, Loop: true, Realtime: ptr(false)},
		{Name: "d", Source: dir, Kind: KindImages, Loop: true},
		{Name: "m", Source: clip, ReconnectMin: dur(time.Minute)}, // max defaults to max(30s, min)
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: unexpected error: %v", c, err)
		}
	}

	bad := []struct {
		cfg  Config
		want []string
	}{
		{Config{Name: "front", Source: "0", DetectFPS: -1}, []string{`camera "front": detect_fps: -1 is not a finite number >= 0`}},
		{Config{Name: "front", Source: "0", FPS: math.NaN()}, []string{`camera "front": fps: NaN is not a finite number >= 0`}},
		{Config{Name: "front", Source: "0", Width: -2, Height: -3}, []string{`width: -2 must be >= 0`, `height: -3 must be >= 0`}},
		{Config{Name: "front", Source: "0", Kind: "webcam"}, []string{`camera "front": kind: unknown kind "webcam"`}},
		{Config{Name: "front"}, []string{`camera "front": source: must not be empty`}},
		{Config{Source: "0"}, []string{`camera "": name: must not be empty`}},
		{Config{Name: "f", Source: missing}, []string{`camera "f": source: file "` + missing + `" does not exist`}},
		{Config{Name: "f", Source: missing, Kind: KindImages}, []string{`source: images path "` + missing + `" does not exist`}},
		{Config{Name: "f", Source: dir, Kind: KindFile}, []string{`is a directory`}},
		{Config{Name: "f", Source: txt, Kind: KindImages}, []string{`"` + txt + `" is neither a directory nor an image file`}},
		{Config{Name: "cam", Source: "/dev/video0", Loop: true}, []string{`camera "cam": loop: true only applies to kind "file" or "images" (kind is "v4l2")`}},
		{Config{Name: "cam", Source: "0", ReconnectMin: dur(-time.Second)}, []string{`reconnect_min: -1s must be >= 0`}},
		{Config{Name: "cam", Source: "0", ReconnectMin: dur(10 * time.Second), ReconnectMax: dur(time.Second)}, []string{`reconnect_max: 1s must be >= reconnect_min (10s)`}},
		{Config{Name: "cam", Source: "videotestsrc ! autovideosink"}, []string{`gstreamer pipeline "videotestsrc ! autovideosink" must end in appsink`}},
		{Config{Name: "cam", Source: "user:secret@cam.local/stream", Kind: KindURL}, []string{`is not a URL`}},
		{Config{Name: "cam", Source: "cam", Kind: KindV4L2}, []string{`"cam" is neither a device index nor an absolute device path`}},
	}
	for _, c := range bad {
		err := c.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: want error containing %q, got nil", c.cfg, c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v:\n got  %q\n want it to contain %q", c.cfg, err, w)
			}
		}
	}

	// Every problem is reported, not just the first.
	err := Config{Name: "x", Source: "0", FPS: -1, DetectFPS: -1, Kind: "nope"}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three joined errors, got %v", err)
	}
}

func TestValidateRedactsCredentials(t *testing.T) {
	err := Config{Name: "door", Source: "rtsp://admin:hunter2@127.0.0.1:1/x", Kind: KindGStreamer}.Validate()
	if err == nil {
		t.Fatal("want error: gstreamer pipeline without appsink")
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "rtsp://admin:xxxxx@127.0.0.1:1/x") {
		t.Fatalf("error leaks or lacks the redacted URL: %v", err)
	}
}

func TestDetectKind(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ src, want string }{
		{"rtsp://127.0.0.1:8554/cam", KindURL},
		{"RTSP://host/cam", KindURL},
		{"rtsps://host/cam", KindURL},
		{"rtmp://host/live", KindURL},
		{"http://host/video.mjpg", KindURL},
		{"https://host/video.m3u8", KindURL},
		{"v4l2src device=/dev/video0 ! videoconvert ! appsink", KindGStreamer},
		{"rtspsrc location=rtsp://h/s ! decodebin ! appsink", KindGStreamer},
		{"/dev/video0", KindV4L2},
		{"/dev/video12", KindV4L2},
		{"0", KindV4L2},
		{"17", KindV4L2},
		{dir, KindImages},
		{"shots/a.jpg", KindImages},
		{"a.JPEG", KindImages},
		{"a.png", KindImages},
		{"a.bmp", KindImages},
		{"a.webp", KindImages},
		{"a.tif", KindImages},
		{"a.tiff", KindImages},
		{"clip.avi", KindFile},
		{"clip.mp4", KindFile},
		{"/srv/missing-dir", KindFile},
		{"0x1", KindFile},
		{"", KindFile},
	}
	for _, c := range cases {
		if got := DetectKind(c.src); got != c.want {
			t.Errorf("DetectKind(%q) = %q, want %q", c.src, got, c.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://admin:xxxxx@10.0.0.5:554/stream1"},
		{"rtsp://admin@cam/s", "rtsp://admin@cam/s"},
		{"https://u:p%40ss@host/x.m3u8", "https://u:xxxxx@host/x.m3u8"},
		{"http://cam/mjpg/video.cgi?user=admin&pwd=hunter2", "http://cam/mjpg/video.cgi?user=admin&pwd=xxxxx"},
		{"rtspsrc location=rtsp://u:pw@cam/s latency=0 ! decodebin ! appsink", "rtspsrc location=rtsp://u:xxxxx@cam/s latency=0 ! decodebin ! appsink"},
		{"rtspsrc location=rtsp://cam/s user-id=u user-pw=pw ! decodebin ! appsink", "rtspsrc location=rtsp://cam/s user-id=u user-pw=xxxxx ! decodebin ! appsink"},
		{`open url "rtsp://u:pw@cam/s": capture did not open`, `open url "rtsp://u:xxxxx@cam/s": capture did not open`},
		{"rtsp://cam/s", "rtsp://cam/s"},
		{"http://host/a@b", "http://host/a@b"}, // '@' after the host is not user info
		{"/dev/video0", "/dev/video0"},
		{"me@example.com", "me@example.com"},
	}
	for _, c := range cases {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	dir := t.TempDir()
	rt := false
	in := Config{Name: "a", Source: dir, Realtime: &rt}
	orig := in
	d := in.WithDefaults()
	if in != orig || *in.Realtime != false {
		t.Fatalf("WithDefaults modified its receiver: %+v", in)
	}
	if d.Kind != KindImages || d.FPS != DefaultImagesFPS || d.ReconnectMin.D() != time.Second || d.ReconnectMax.D() != 30*time.Second {
		t.Errorf("defaults not filled: %+v", d)
	}
	if d.Realtime == in.Realtime || *d.Realtime != false {
		t.Errorf("Realtime must be copied, not shared: %p vs %p", d.Realtime, in.Realtime)
	}
	*d.Realtime = true
	if rt {
		t.Error("changing the copy changed the caller's bool")
	}

	v := Config{Name: "v", Source: "/dev/video0"}.WithDefaults()
	if v.Kind != KindV4L2 || !v.IsRealtime() || v.FPS != 0 {
		t.Errorf("v4l2 defaults: %+v", v)
	}
	if m := (Config{Name: "m", Source: "0", ReconnectMin: dur(time.Minute)}).WithDefaults(); m.ReconnectMax.D() != time.Minute {
		t.Errorf("reconnect_max with min 1m = %v, want 1m", m.ReconnectMax)
	}
	if (Config{}).IsRealtime() != true {
		t.Error("nil Realtime must mean true")
	}
}

func TestCSISource(t *testing.T) {
	c := Config{Name: "cam", Source: "csi"}.WithDefaults()
	if c.Kind != KindCSI {
		t.Fatalf("kind of source csi = %q", c.Kind)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("csi source must validate (the binary resolves it): %v", err)
	}
	if err := (Config{Name: "cam", Source: "csi", Loop: true}).Validate(); err == nil {
		t.Error("loop on a CSI camera must be rejected")
	}
}
