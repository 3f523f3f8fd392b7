package agent

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/detector"
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
	Detections []detector.Detection
}

// AppendJSON appends the report as one JSON object to buf. It allocates
// nothing when buf has room, so the per-frame publish path stays off the GC.
func (r *FrameReport) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"timestamp":"`...)
	buf = r.Time.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
	buf = append(buf, `","camera":`...)
	buf = appendString(buf, r.Camera)
	buf = append(buf, `,"frame":`...)
	buf = strconv.AppendUint(buf, r.Frame, 10)
	buf = append(buf, `,"model":`...)
	buf = appendString(buf, r.Model)
	buf = append(buf, `,"precision":`...)
	buf = appendString(buf, r.Precision)
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
		buf = appendString(buf, d.Label)
		buf = append(buf, `,"class_id":`...)
		buf = strconv.AppendInt(buf, int64(d.ClassID), 10)
		buf = append(buf, `,"score":`...)
		buf = strconv.AppendFloat(buf, float64(d.Score), 'f', 4, 32)
		buf = append(buf, `,"box":[`...)
		buf = appendFloats(buf, 1, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2)
		buf = append(buf, `],"box_norm":[`...)
		buf = appendFloats(buf, 4, d.Box.X1/w, d.Box.Y1/h, d.Box.X2/w, d.Box.Y2/h)
		buf = append(buf, "]}"...)
	}
	return append(buf, "]}"...)
}

func appendFloats(buf []byte, prec int, vs ...float32) []byte {
	for i, v := range vs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendFloat(buf, float64(v), 'f', prec, 32)
	}
	return buf
}

func appendMillis(buf []byte, d time.Duration) []byte {
	return strconv.AppendFloat(buf, float64(d)/1e6, 'f', 3, 64)
}

// appendString appends s as a JSON string, escaping quotes, backslashes,
// control characters and invalid UTF-8.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}
