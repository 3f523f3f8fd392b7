package agent

import (
	"strconv"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/jsonw"
)

// FrameReport is the payload of <prefix>/<device>/<camera>/detections: what
// one processed frame showed. The JSON schema is documented in README.md.
type FrameReport struct {
	Time       time.Time
	Camera     string
	Frame      uint64
	Model      string
	Precision  string
	Width      int
	Height     int
	Timings    detector.Timings
	Detections []detection.Detection
}

// AppendJSON appends the report as one JSON object to buf. It allocates
// nothing when buf has room, so the per-frame publish path stays off the GC.
func (r *FrameReport) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"timestamp":"`...)
	buf = r.Time.UTC().AppendFormat(buf, jsonw.TimeLayout)
	buf = append(buf, `","camera":`...)
	buf = jsonw.String(buf, r.Camera)
	buf = append(buf, `,"frame":`...)
	buf = strconv.AppendUint(buf, r.Frame, 10)
	buf = append(buf, `,"model":`...)
	buf = jsonw.String(buf, r.Model)
	buf = append(buf, `,"precision":`...)
	buf = jsonw.String(buf, r.Precision)
	buf = append(buf, `,"width":`...)
	buf = strconv.AppendInt(buf, int64(r.Width), 10)
	buf = append(buf, `,"height":`...)
	buf = strconv.AppendInt(buf, int64(r.Height), 10)
	buf = append(buf, `,"preprocess_ms":`...)
	buf = appendMillis(buf, r.Timings.Preprocess)
	buf = append(buf, `,"inference_ms":`...)
	buf = appendMillis(buf, r.Timings.Inference)
	buf = append(buf, `,"postprocess_ms":`...)
	buf = appendMillis(buf, r.Timings.Postprocess)
	buf = append(buf, `,"detections":[`...)
	w, h := float32(max(r.Width, 1)), float32(max(r.Height, 1))
	for i, d := range r.Detections {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"label":`...)
		buf = jsonw.String(buf, d.Label)
		buf = append(buf, `,"class_id":`...)
		buf = strconv.AppendInt(buf, int64(d.ClassID), 10)
		buf = append(buf, `,"score":`...)
		buf = strconv.AppendFloat(buf, float64(d.Score), 'f', 4, 32)
		buf = append(buf, `,"box":[`...)
		buf = jsonw.Floats(buf, 1, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2)
		buf = append(buf, `],"box_norm":[`...)
		buf = jsonw.Floats(buf, 4, d.Box.X1/w, d.Box.Y1/h, d.Box.X2/w, d.Box.Y2/h)
		buf = append(buf, "]}"...)
	}
	return append(buf, "]}"...)
}

func appendMillis(buf []byte, d time.Duration) []byte {
	return strconv.AppendFloat(buf, float64(d)/1e6, 'f', 3, 64)
}
