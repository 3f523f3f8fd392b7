package detection

// Box is an axis-aligned box in pixels: (X1,Y1) top-left, (X2,Y2) bottom-right.
type Box struct {
	X1, Y1, X2, Y2 float32
}

// Area returns the box area, 0 for empty or inverted boxes.
func (b Box) Area() float32 {
	w, h := b.X2-b.X1, b.Y2-b.Y1
	if w <= 0 || h <= 0 {
		return 0
	}
	return w * h
}

// Detection is one detected object. Decoders fill ClassID, Score and Box (in
// model-input pixels); Detector.Detect maps Box to frame pixels and sets Label.
type Detection struct {
	ClassID int
	Label   string
	Score   float32
	Box     Box
}

// Format names a YOLO output layout, i.e. which decoder reads the output tensor.
type Format string

// Supported output formats.
const (
	// FormatYOLOv8 is the Ultralytics v8/v9/v11/v12 head: [1, 4+nc, N],
	// channel-major, boxes cx,cy,w,h in input pixels, sigmoid class scores,
	// no objectness.
	FormatYOLOv8 Format = "yolov8"
	// FormatYOLOv5 is the v5/v7 head: [1, N, 5+nc], rows of
	// cx,cy,w,h (input pixels), objectness, class scores; score = obj*cls.
	FormatYOLOv5 Format = "yolov5"
	// FormatYOLOX is the official YOLOX export without in-graph decoding:
	// [1, N, 5+nc] raw grid rows tx,ty,tw,th, obj, cls (obj and cls already
	// sigmoid); cx=(tx+gx)*s, w=exp(tw)*s over strides 8/16/32.
	FormatYOLOX Format = "yolox"
	// FormatYOLOXLevels is a YOLOX head whose export reshaped instead of
	// transposing (bubbliiiing/yolox-pytorch ONNX files): declared
	// [1, N, 5+nc] like FormatYOLOX, but laid out as one channel-major block
	// [5+nc][cells] per stride level 8/16/32, with objectness and class
	// logits (sigmoid applied here). Its shape cannot tell it from
	// FormatYOLOX, so it is only used when the description names it.
	FormatYOLOXLevels Format = "yolox_levels"
	// FormatEnd2End is YOLOv10 / YOLO26 with NMS in the graph: [1, K, 6]
	// rows x1,y1,x2,y2,score,class in input pixels.
	FormatEnd2End Format = "end2end"
	// FormatFastestV2 is Yolo-FastestV2: [N, 15+nc] (optionally [1, N,
	// 15+nc]) anchor-based rows over strides 16 and 32; see
	// fastestV2Decoder.
	FormatFastestV2 Format = "fastestv2"
)

// ResizeMode says how a frame is fitted into the model input.
type ResizeMode string

// Supported resize modes.
const (
	// ResizeLetterbox keeps the aspect ratio and centres the image, padding
	// both sides equally (Ultralytics).
	ResizeLetterbox ResizeMode = "letterbox"
	// ResizeLetterboxTopLeft keeps the aspect ratio and places the image at
	// the top-left corner, padding right and bottom (official YOLOX).
	ResizeLetterboxTopLeft ResizeMode = "letterbox_topleft"
	// ResizeStretch scales width and height independently, no padding.
	ResizeStretch ResizeMode = "stretch"
)
