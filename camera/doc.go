// Package camera owns frame capture: it opens the configured source,
// delivers every frame as 8-bit BGR with its capture time, and hands the
// consumer always the newest frame. Detection, tracking and publishing are
// other packages' business; they see only Frames.
//
// What it owns, by file:
//
//   - config.go: Config, the source kinds and their detection from the
//     source string, defaults and validation.
//   - source.go: the Source interface every kind implements, and Open, which
//     picks the implementation for a Config.
//   - capture.go: the gocv VideoCapture source for V4L2 devices, network
//     streams (RTSP, HTTP), GStreamer pipelines and video files, including
//     the conversion of non-BGR frames.
//   - images.go: the source for a directory of images or one image file.
//   - pacer.go: realtime pacing shared by the file and images sources.
//   - stream.go: Stream, the capture goroutine with reconnect backoff and
//     the frame pool.
//
// A Stream runs one capture goroutine per camera (Run) that reads into a
// fixed pool of three frames: one being captured, one waiting in a
// capacity-1 slot, one held by the consumer (Next/Release). A frame the
// consumer did not take in time goes back to the pool (Stats.Dropped), so a
// slow consumer never makes the camera lag and never grows a queue.
package camera
