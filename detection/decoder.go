package detection

import (
	"fmt"
	"math"
)

// Decoder turns a raw output tensor into candidate detections in model-input
// pixels. A Decoder is immutable after NewDecoder and safe for concurrent use.
type Decoder interface {
	// Decode appends to dst the candidates whose score >= minScore and
	// returns it. It must not allocate when cap(dst) suffices. Candidates
	// are appended in tensor order and are not yet suppressed (see NMS).
	// out must hold at least as many values as the output shape given to
	// NewDecoder; a shorter out is a programming error and panics.
	Decode(out []float32, minScore float32, dst []Detection) []Detection
	// NumClasses is the number of classes the output scores, or 0 when the
	// layout does not say (end2end).
	NumClasses() int
}

// NewDecoder returns the decoder for format f, checking that outShape (the
// model's output shape) fits the format and an inW x inH model input.
func NewDecoder(f Format, outShape []int64, inW, inH int) (Decoder, error) {
	if inW <= 0 || inH <= 0 || inW > MaxInputSize || inH > MaxInputSize {
		return nil, fmt.Errorf("%s decoder: model input size %dx%d: width and height must be in 1..%d", f, inW, inH, MaxInputSize)
	}
	switch f {
	case FormatYOLOv8, FormatYOLOv5, FormatYOLOX, FormatYOLOXLevels, FormatEnd2End, FormatFastestV2:
	default:
		return nil, fmt.Errorf("output format %q: want %q, %q, %q, %q, %q or %q",
			f, FormatYOLOv8, FormatYOLOv5, FormatYOLOX, FormatYOLOXLevels, FormatEnd2End, FormatFastestV2)
	}
	if f == FormatFastestV2 && len(outShape) == 2 {
		outShape = append([]int64{1}, outShape...)
	}
	a, b, err := batchOneShape(outShape)
	if err != nil {
		return nil, fmt.Errorf("%s output %v: %w", f, outShape, err)
	}
	switch f {
	case FormatYOLOv8:
		// [1, 4+nc, N]
		if a < 5 {
			return nil, fmt.Errorf("%s output %v: %d channels, want 4 box channels plus at least 1 class", f, outShape, a)
		}
		return &yolov8Decoder{nc: a - 4, n: b}, nil
	case FormatYOLOv5:
		// [1, N, 5+nc]
		if b < 6 {
			return nil, fmt.Errorf("%s output %v: rows of %d values, want 5 (box, objectness) plus at least 1 class", f, outShape, b)
		}
		return &yolov5Decoder{nc: b - 5, n: a}, nil
	case FormatYOLOX, FormatYOLOXLevels:
		// [1, N, 5+nc], N = Σ grid cells (yolox_levels: as declared; the
		// memory holds the same values level by level, channel-major)
		if b < 6 {
			return nil, fmt.Errorf("%s output %v: rows of %d values, want 5 (box, objectness) plus at least 1 class", f, outShape, b)
		}
		if want := gridCells(inW, inH); a != want {
			return nil, fmt.Errorf("%s output %v: %d rows, want %d for a %dx%d input with strides 8,16,32", f, outShape, a, want, inW, inH)
		}
		if f == FormatYOLOXLevels {
			return newYOLOXLevelsDecoder(b-5, inW, inH), nil
		}
		return newYOLOXDecoder(b-5, inW, inH), nil
	case FormatFastestV2:
		// [1, N, 15+nc], N = Σ grid cells over strides 16, 32
		if b < 16 {
			return nil, fmt.Errorf("%s output %v: rows of %d values, want 15 (3 anchors × box and objectness) plus at least 1 class", f, outShape, b)
		}
		if want := fastestV2Cells(inW, inH); a != want {
			return nil, fmt.Errorf("%s output %v: %d rows, want %d for a %dx%d input with strides 16,32", f, outShape, a, want, inW, inH)
		}
		return newFastestV2Decoder(b-15, inW, inH, DefaultFastestV2Anchors)
	default: // FormatEnd2End
		// [1, K, 6]
		if b != 6 {
			return nil, fmt.Errorf("%s output %v: rows of %d values, want 6 (x1,y1,x2,y2,score,class)", f, outShape, b)
		}
		return &end2endDecoder{k: a}, nil
	}
}

// DetectFormat picks the output format from the output shape and the model
// input size when that is unambiguous:
//
//   - [1,K,6] with K <= 1000 is end2end (unless K also matches a yolox or
//     yolov5 grid, which is ambiguous);
//   - [1,A,B] with 5 <= A < B is yolov8 with A-4 classes;
//   - [1,N,C] with C >= 6 and N > C is yolox when N is the number of grid
//     cells over strides 8,16,32, yolov5 when N is three times that.
//
// yolox_levels is never picked: its declared shape is yolox's.
//
// Anything else is an error naming the shape.
func DetectFormat(outShape []int64, inW, inH int) (Format, error) {
	if inW <= 0 || inH <= 0 || inW > MaxInputSize || inH > MaxInputSize {
		return "", fmt.Errorf("detect output format: model input size %dx%d: width and height must be in 1..%d", inW, inH, MaxInputSize)
	}
	if len(outShape) == 2 && outShape[0] > 0 && outShape[1] > 15 && int(outShape[0]) == fastestV2Cells(inW, inH) {
		return FormatFastestV2, nil
	}
	a, b, err := batchOneShape(outShape)
	if err != nil {
		return "", fmt.Errorf("detect output format: output %v: %w; supported layouts: %s", outShape, err, supportedLayouts)
	}
	cells := gridCells(inW, inH)
	switch {
	case b == 6 && a <= 1000:
		if a == cells || a == 3*cells {
			return "", fmt.Errorf("detect output format: output %v is ambiguous for a %dx%d input: "+
				"end2end [1,K,6] or a one-class yolox/yolov5 grid; set format in the detector config", outShape, inW, inH)
		}
		return FormatEnd2End, nil
	case a < b && a >= 5:
		return FormatYOLOv8, nil
	case b >= 6 && a > b:
		switch a {
		case cells:
			return FormatYOLOX, nil
		case 3 * cells:
			return FormatYOLOv5, nil
		}
		return "", fmt.Errorf("detect output format: output %v is ambiguous: %d rows of %d values match neither yolox "+
			"(%d rows) nor yolov5 (%d rows) for a %dx%d input; set format in the detector config",
			outShape, a, b, cells, 3*cells, inW, inH)
	}
	return "", fmt.Errorf("detect output format: output %v: unrecognised layout; supported layouts: %s", outShape, supportedLayouts)
}

const supportedLayouts = "yolov8 [1,4+nc,N], yolov5 and yolox [1,N,5+nc], end2end [1,K,6], fastestv2 [N,15+nc] (and yolox_levels, only when format names it)"

// MaxOutputValues bounds the output tensor a model may declare (each slot
// holds one): 2^26 float32 values are 256 MiB, twenty times what an
// 80-class YOLOv8 at 1280x1280 outputs.
const MaxOutputValues = 1 << 26

// batchOneShape checks that shape is [1, a, b] with positive a and b that
// fit in an int, and returns a and b.
func batchOneShape(shape []int64) (a, b int, err error) {
	if len(shape) != 3 {
		return 0, 0, fmt.Errorf("rank %d, want 3 ([1, rows, columns])", len(shape))
	}
	for i, d := range shape {
		if d <= 0 {
			return 0, 0, fmt.Errorf("dimension %d is %d, want a fixed positive size", i, d)
		}
	}
	if shape[0] != 1 {
		return 0, 0, fmt.Errorf("batch %d, want 1", shape[0])
	}
	if shape[1] > MaxOutputValues || shape[2] > MaxOutputValues || shape[1]*shape[2] > MaxOutputValues {
		return 0, 0, fmt.Errorf("%d x %d values, more than the %d edgedet accepts", shape[1], shape[2], MaxOutputValues)
	}
	return int(shape[1]), int(shape[2]), nil
}

// checkLen panics with a clear message when out is shorter than the shape
// the decoder was built for.
func checkLen(f Format, out []float32, want int) {
	if len(out) < want {
		panic(fmt.Sprintf("detection: %s decode: output has %d values, want %d", f, len(out), want))
	}
}

// appendCandidate appends a candidate unless its score or a box corner is
// not a finite number (a broken or overflowing output: exp of a huge tw,
// NaN from the runtime), which would poison NMS and the JSON published
// downstream. A score a little over 1 (quantised sigmoids) counts as 1.
func appendCandidate(dst []Detection, cls int, score float32, b Box) []Detection {
	if !finite(score) || !finite(b.X1) || !finite(b.Y1) || !finite(b.X2) || !finite(b.Y2) {
		return dst
	}
	return append(dst, Detection{ClassID: cls, Score: min(score, 1), Box: b})
}

// finite reports whether v is neither NaN nor ±Inf: its exponent bits are
// not all ones. It must not test v-v == 0: Go may fuse a product with a
// later subtraction (the spec allows it; the arm64 compiler does it), so
// for score := obj * cls, inlined score-score became one fused
// multiply-subtract that yields the product's rounding error, not 0, and
// dropped nearly every YOLOX, YOLOv5 and FastestV2 candidate on arm64.
func finite(v float32) bool { return math.Float32bits(v)&float32ExpMask != float32ExpMask }

// float32ExpMask selects the 8 exponent bits of an IEEE 754 float32.
const float32ExpMask = 0x7f800000

// argmax returns the index and value of the largest score, the first one on
// ties. scores must not be empty.
func argmax(scores []float32) (int, float32) {
	cls, best := 0, scores[0]
	for c, s := range scores[1:] {
		if s > best {
			cls, best = c+1, s
		}
	}
	return cls, best
}

// cxcywh converts a centre/size box to corners.
func cxcywh(cx, cy, w, h float32) Box {
	hw, hh := w/2, h/2
	return Box{X1: cx - hw, Y1: cy - hh, X2: cx + hw, Y2: cy + hh}
}
