package agent

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/edgedet/edgedet/agent/mqtt"
)

// frigateTopLevel are the levels right under the prefix that Frigate's
// tree uses for itself: a camera or zone of that name would publish onto
// them.
var frigateTopLevel = map[string]bool{
	"available": true, "events": true, "stats": true, "restart": true, "reviews": true,
	"tracked_object_update": true, "camera_activity": true, "notifications": true, "onConnect": true,
}

// validateFrigate checks what mqtt.compat = "frigate" needs of the cameras
// and zones: in Frigate's tree cameras and zones share the level under the
// prefix (<prefix>/<camera>/<label>, <prefix>/<zone>/<label>), so a zone
// name must be unique across cameras and differ from every camera name,
// and neither may be one of Frigate's own top-level topics.
func (c *Config) validateFrigate() []error {
	if c.MQTT.Compat != mqtt.CompatFrigate {
		return nil
	}
	var errs []error
	cameras := map[string]bool{}
	for i, cam := range c.Cameras {
		cameras[cam.Name] = true
		if frigateTopLevel[cam.Name] {
			errs = append(errs, fmt.Errorf("camera[%d].name: %q is a topic of Frigate's own with mqtt.compat = %q (rename the camera)",
				i, cam.Name, mqtt.CompatFrigate))
		}
	}
	zoneAt := map[string]string{} // zone name → where it was first defined
	for i, cam := range c.Cameras {
		for j, z := range cam.Zones {
			key := fmt.Sprintf("camera[%d].zone[%d].name", i, j)
			switch {
			case frigateTopLevel[z.Name]:
				errs = append(errs, fmt.Errorf("%s: %q is a topic of Frigate's own with mqtt.compat = %q (rename the zone)",
					key, z.Name, mqtt.CompatFrigate))
			case cameras[z.Name]:
				errs = append(errs, fmt.Errorf("%s: %q is also a camera name; with mqtt.compat = %q zones and cameras share <prefix>/<name>/<label> (rename the zone)",
					key, z.Name, mqtt.CompatFrigate))
			case zoneAt[z.Name] != "":
				errs = append(errs, fmt.Errorf("%s: %q is already %s; with mqtt.compat = %q zone names are global, as in Frigate (rename one)",
					key, z.Name, zoneAt[z.Name], mqtt.CompatFrigate))
			default:
				zoneAt[z.Name] = key
			}
		}
	}
	return errs
}

// frigateStats is the payload of <prefix>/stats in Frigate mode: the keys
// of Frigate's /api/stats that edgedet has a value for (its process ids
// are edgedet's; there is no ffmpeg process, so ffmpeg_pid is null).
type frigateStats struct {
	Cameras      map[string]frigateCameraStats   `json:"cameras"`
	Detectors    map[string]frigateDetectorStats `json:"detectors"`
	CameraFPS    float64                         `json:"camera_fps"`
	ProcessFPS   float64                         `json:"process_fps"`
	SkippedFPS   float64                         `json:"skipped_fps"`
	DetectionFPS float64                         `json:"detection_fps"`
	Service      frigateService                  `json:"service"`
}

type frigateCameraStats struct {
	CameraFPS        float64 `json:"camera_fps"`
	ProcessFPS       float64 `json:"process_fps"`
	SkippedFPS       float64 `json:"skipped_fps"`
	DetectionFPS     float64 `json:"detection_fps"`
	DetectionEnabled bool    `json:"detection_enabled"`
	PID              int     `json:"pid"`
	CapturePID       int     `json:"capture_pid"`
	FFmpegPID        *int    `json:"ffmpeg_pid"`
}

type frigateDetectorStats struct {
	InferenceSpeed float64 `json:"inference_speed"` // ms, mean over the interval
	DetectionStart float64 `json:"detection_start"` // 0: not tracked
	PID            int     `json:"pid"`
}

type frigateService struct {
	Uptime      int64          `json:"uptime"` // seconds
	Version     string         `json:"version"`
	Storage     map[string]any `json:"storage"`
	LastUpdated int64          `json:"last_updated"` // Unix seconds
}

// toFrigateStats maps a stats report to Frigate's shape. The detector is
// named after the execution provider ("cpu" when unknown); its inference
// speed is the cameras' mean inference time weighted by their process
// rates. detection_fps is process_fps: edgedet runs the model once per
// processed frame (with motion.regions, once per crop).
func toFrigateStats(r StatsReport, version string, pid int, now time.Time) frigateStats {
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	fs := frigateStats{Cameras: map[string]frigateCameraStats{}, Detectors: map[string]frigateDetectorStats{},
		Service: frigateService{Uptime: int64(r.UptimeS), Version: version, Storage: map[string]any{}, LastUpdated: now.Unix()}}
	var inferWeighted, fpsSum float64
	for name, c := range r.Cameras {
		fs.Cameras[name] = frigateCameraStats{CameraFPS: round(c.CameraFPS), ProcessFPS: round(c.ProcessFPS),
			SkippedFPS: round(c.SkippedFPS), DetectionFPS: round(c.ProcessFPS), DetectionEnabled: c.Detect, PID: pid, CapturePID: pid}
		fs.CameraFPS += c.CameraFPS
		fs.ProcessFPS += c.ProcessFPS
		fs.SkippedFPS += c.SkippedFPS
		inferWeighted += c.InferenceMs * c.ProcessFPS
		fpsSum += c.ProcessFPS
	}
	fs.CameraFPS, fs.ProcessFPS, fs.SkippedFPS = round(fs.CameraFPS), round(fs.ProcessFPS), round(fs.SkippedFPS)
	fs.DetectionFPS = fs.ProcessFPS
	det := frigateDetectorStats{PID: pid}
	if fpsSum > 0 {
		det.InferenceSpeed = round(inferWeighted / fpsSum)
	}
	fs.Detectors[cmp.Or(strings.ToLower(r.Provider), "cpu")] = det
	return fs
}
