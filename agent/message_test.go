package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
)

func sampleReport() FrameReport {
	return FrameReport{
		Time:      time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.FixedZone("CET", 3600)),
		Camera:    "front",
		Frame:     42,
		Model:     "yolox_nano_416",
		Precision: "fp32",
		Width:     640,
		Height:    480,
		Timings:   detector.Timings{Preprocess: 1500 * time.Microsecond, Inference: 10250 * time.Microsecond, Postprocess: 80 * time.Microsecond},
		Detections: []detection.Detection{
			{ClassID: 16, Label: "dog", Score: 0.85123, Box: detection.Box{X1: 64, Y1: 48, X2: 320, Y2: 480}},
			{ClassID: 0, Label: "a \"quoted\"\\ label\n\x01é", Score: 0.5, Box: detection.Box{X1: 0, Y1: 0, X2: 640, Y2: 240}},
		},
	}
}

func TestFrameReportJSON(t *testing.T) {
	r := sampleReport()
	var got struct {
		Timestamp     string  `json:"timestamp"`
		Camera        string  `json:"camera"`
		Frame         uint64  `json:"frame"`
		Model         string  `json:"model"`
		Precision     string  `json:"precision"`
		Width         int     `json:"width"`
		Height        int     `json:"height"`
		PreprocessMs  float64 `json:"preprocess_ms"`
		InferenceMs   float64 `json:"inference_ms"`
		PostprocessMs float64 `json:"postprocess_ms"`
		Detections    []struct {
			Label   string     `json:"label"`
			ClassID int        `json:"class_id"`
			Score   float64    `json:"score"`
			Box     [4]float64 `json:"box"`
			BoxNorm [4]float64 `json:"box_norm"`
		} `json:"detections"`
	}
	out := r.AppendJSON(nil)
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", out, err)
	}
	if got.Timestamp != "2026-11-27T14:04:05.123Z" {
		t.Errorf("timestamp %q, want RFC 3339 UTC with milliseconds", got.Timestamp)
	}
	if got.Camera != "front" || got.Frame != 42 || got.Model != "yolox_nano_416" || got.Precision != "fp32" || got.Width != 640 || got.Height != 480 {
		t.Errorf("header fields: %+v", got)
	}
	if got.PreprocessMs != 1.5 || got.InferenceMs != 10.25 || got.PostprocessMs != 0.08 {
		t.Errorf("timings: %v %v %v", got.PreprocessMs, got.InferenceMs, got.PostprocessMs)
	}
	if len(got.Detections) != 2 {
		t.Fatalf("detections: %+v", got.Detections)
	}
	d := got.Detections[0]
	if d.Label != "dog" || d.ClassID != 16 || d.Score != 0.8512 || d.Box != [4]float64{64, 48, 320, 480} || d.BoxNorm != [4]float64{0.1, 0.1, 0.5, 1} {
		t.Errorf("detection: %+v", d)
	}
	if got.Detections[1].Label != r.Detections[1].Label {
		t.Errorf("escaped label round trip: %q != %q", got.Detections[1].Label, r.Detections[1].Label)
	}
	empty := FrameReport{Time: r.Time, Camera: "c"}
	if err := json.Unmarshal(empty.AppendJSON(nil), &got); err != nil || got.Detections == nil || len(got.Detections) != 0 {
		t.Errorf("empty report must have detections: [] (err %v, %+v)", err, got.Detections)
	}
}

func TestFrameReportJSONAllocs(t *testing.T) {
	r := sampleReport()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() { buf = r.AppendJSON(buf[:0]) })
	if allocs != 0 {
		t.Errorf("AppendJSON allocates %.0f times per report; the publish path must not", allocs)
	}
}

func BenchmarkFrameReportJSON(b *testing.B) {
	r := sampleReport()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}
