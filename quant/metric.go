package quant

import (
	"fmt"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/eval"
)

// Detection metric constants: the FP32 detections that count as ground
// truth score at least metricMinScore (a usual detection threshold); the
// compared model's are decoded from metricDecodeScore up and suppressed as
// the evaluator does.
const (
	metricMinScore    = 0.25
	metricDecodeScore = 0.001
	metricNMSIoU      = 0.65
	metricMaxDet      = 100
)

// DetectionMetric is a Metric for detectors whose output spec describes:
// it decodes the FP32 and the quantized outputs into detections and
// returns 1 − their agreement (eval.Agreement: COCO AP@[.50:.95] of the
// quantized model's detections with FP32's as the ground truth). So the
// float layers are chosen for what a user sees, the detections, rather
// than for the raw output values, most of which are class scores no frame
// raises.
func DetectionMetric(spec detection.Spec) Metric {
	return func(ref, got []Outputs) (float64, error) {
		if len(ref) == 0 {
			return 0, fmt.Errorf("no frames")
		}
		if len(got) != len(ref) {
			return 0, fmt.Errorf("outputs of %d frames for %d reference frames", len(got), len(ref))
		}
		var dec detection.Decoder
		decode := func(o Outputs) ([]eval.Detection, error) {
			if len(o.Values) == 0 {
				return nil, fmt.Errorf("model has no output")
			}
			if dec == nil {
				var err error
				if dec, err = spec.Decoder(o.Shapes[0]); err != nil {
					return nil, err
				}
			}
			dets := detection.NMS(dec.Decode(o.Values[0], metricDecodeScore, nil), detection.NMSOptions{IoU: metricNMSIoU, MaxDetections: metricMaxDet})
			out := make([]eval.Detection, len(dets))
			for i, d := range dets {
				out[i] = eval.Detection{ClassID: d.ClassID, Score: float64(d.Score), Box: [4]float64{float64(d.Box.X1), float64(d.Box.Y1), float64(d.Box.X2), float64(d.Box.Y2)}}
			}
			return out, nil
		}
		refDets, gotDets := make([][]eval.Detection, len(ref)), make([][]eval.Detection, len(got))
		classes := 0
		for i := range ref {
			var err error
			if refDets[i], err = decode(ref[i]); err != nil {
				return 0, err
			}
			if gotDets[i], err = decode(got[i]); err != nil {
				return 0, err
			}
			for _, d := range append(refDets[i], gotDets[i]...) {
				classes = max(classes, d.ClassID+1)
			}
		}
		if n := dec.NumClasses(); n > 0 {
			classes = n
		}
		a, err := eval.Agreement(refDets, gotDets, max(classes, 1), metricMinScore)
		if err != nil {
			return 0, err
		}
		return 1 - a, nil
	}
}
