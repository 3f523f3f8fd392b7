package platforms

import (
	"fmt"
	"math"
)

// CSISource is the camera source name that means "this board's CSI camera".
const CSISource = "csi"

// CSIPipeline returns the GStreamer pipeline that reads the board's CSI
// camera at the requested size and rate (0 = 1280x720 at 30 fps) as BGR
// frames for OpenCV: libcamerasrc on a Raspberry Pi, nvarguscamerasrc with
// the hardware converter on a Jetson. Other boards have no CSI camera.
func CSIPipeline(b Board, width, height int, fps float64) (string, error) {
	if width <= 0 || height <= 0 {
		width, height = 1280, 720
	}
	rate := int(math.Round(fps))
	if rate <= 0 {
		rate = 30
	}
	switch b.Kind {
	case "raspberrypi":
		return fmt.Sprintf("libcamerasrc ! video/x-raw,width=%d,height=%d,framerate=%d/1,format=NV12 ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1",
			width, height, rate), nil
	case "jetson":
		return fmt.Sprintf("nvarguscamerasrc ! video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1",
			width, height, rate), nil
	}
	return "", fmt.Errorf("camera source %q: a %s board has no CSI camera; use a V4L2 device (/dev/video0), a URL or a GStreamer pipeline", CSISource, b.Kind)
}
