package platforms

import (
	"strings"
	"testing"
)

func TestCSIPipeline(t *testing.T) {
	pi, err := CSIPipeline(Board{Kind: "raspberrypi"}, 640, 480, 15)
	if err != nil || !strings.HasPrefix(pi, "libcamerasrc ") || !strings.Contains(pi, "width=640,height=480,framerate=15/1") || !strings.HasSuffix(strings.Fields(pi)[len(strings.Fields(pi))-3], "appsink") {
		t.Errorf("pi pipeline %q, %v", pi, err)
	}
	jet, err := CSIPipeline(Board{Kind: "jetson"}, 0, 0, 0)
	if err != nil || !strings.HasPrefix(jet, "nvarguscamerasrc ") || !strings.Contains(jet, "width=1280,height=720,framerate=30/1") || !strings.Contains(jet, "nvvidconv") {
		t.Errorf("jetson pipeline %q, %v", jet, err)
	}
	if _, err := CSIPipeline(Board{Kind: "x86_64"}, 0, 0, 0); err == nil || !strings.Contains(err.Error(), "x86_64") {
		t.Errorf("x86: want an error naming the board, got %v", err)
	}
}
