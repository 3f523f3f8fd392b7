package detection

import (
	"encoding/binary"
	"math"
	"testing"
)

// f32bytes packs values as little-endian float32, the fuzzers' encoding of
// an output tensor.
func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

var nan, inf = float32(math.NaN()), float32(math.Inf(1))

// FuzzDecode builds a decoder for a fuzzed format, output shape and input
// size, fills the output from the fuzzed bytes (NaN, ±Inf, huge, subnormal
// values included) and checks what Decode, NMS and ToFrame return: every
// candidate has a class the model has, a score in [minScore, 1] and finite
// corners; NMS keeps a subset best first; frame boxes lie in the frame.
func FuzzDecode(f *testing.F) {
	// format index (yolov8, yolov5, yolox, end2end, fastestv2,
	// yolox_levels), rows,
	// columns, input width and height, grid (rows = the grid cells of the
	// input size), minScore, output values.
	f.Add(uint8(0), int64(5), int64(64), 64, 64, false, float32(0.25),
		f32bytes(10, 20, 8, 8, 0.9, 30, 30, 1e30, 1e30, 0.8, nan, 1, 2, 3, inf, 0.5))
	f.Add(uint8(1), int64(4), int64(7), 64, 64, false, float32(0.1),
		f32bytes(32, 32, 10, 10, 0.9, 0.1, 0.95, 1, 1, inf, inf, 1, 1, 1, nan, nan, nan, nan, nan, nan, nan))
	f.Add(uint8(2), int64(0), int64(6), 64, 64, true, float32(0.2),
		f32bytes(0.5, 0.5, 0, 0, 0.9, 0.9, 0.1, 0.1, 100, 100, 0.99, 0.99, 0, 0, -100, -100, 1, 1))
	f.Add(uint8(3), int64(3), int64(6), 640, 640, false, float32(0),
		f32bytes(1, 2, 3, 4, 0.5, 0, 1, 2, 3, 4, 0.7, 16777217, -inf, 0, inf, 9, 0.9, 2))
	f.Add(uint8(4), int64(0), int64(16), 64, 64, true, float32(0.3),
		f32bytes(0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1e20, 1e20, 1e20, 1e20, 0.9, 0.9, 0.9, 2))
	f.Add(uint8(0), int64(84), int64(1), 32, 32, false, float32(1), []byte{})
	f.Add(uint8(5), int64(0), int64(6), 32, 32, true, float32(0.2),
		f32bytes(0.5, -0.5, 0, 100, inf, 3, -inf, nan, 2, 88, 1e30, -1e30, 0.5, 0.5))
	f.Fuzz(func(t *testing.T, fi uint8, rows, cols int64, inW, inH int, grid bool, minScore float32, data []byte) {
		formats := [...]Format{FormatYOLOv8, FormatYOLOv5, FormatYOLOX, FormatEnd2End, FormatFastestV2, FormatYOLOXLevels}
		format := formats[int(fi)%len(formats)]
		if grid && inW > 0 && inH > 0 && inW <= MaxInputSize && inH <= MaxInputSize {
			rows = int64(gridCells(inW, inH))
			if format == FormatFastestV2 {
				rows = int64(fastestV2Cells(inW, inH))
			}
		}
		if !(minScore >= 0 && minScore <= 1) {
			return // the detector's decode threshold is always a score
		}
		shape := []int64{1, rows, cols}
		dec, err := NewDecoder(format, shape, inW, inH)
		if err != nil {
			return
		}
		n := rows * cols
		if n > 1<<18 {
			return // valid but too slow to fill on every iteration
		}
		out := make([]float32, n)
		if len(data) >= 4 {
			for i := range out {
				j := 4 * i % (len(data) - len(data)%4)
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[j:]))
			}
		}
		most := int(rows) // one candidate per row, per anchor column for yolov8, per anchor for fastestv2
		switch format {
		case FormatYOLOv8:
			most = int(cols)
		case FormatFastestV2:
			most = 3 * int(rows)
		}
		dets := dec.Decode(out, minScore, nil)
		if len(dets) > most {
			t.Fatalf("%d candidates from %v, want at most %d", len(dets), shape, most)
		}
		nc := dec.NumClasses()
		for _, d := range dets {
			if !(d.Score >= minScore && d.Score <= 1) {
				t.Fatalf("%+v: score not in [%g, 1]", d, minScore)
			}
			if !finite(d.Box.X1) || !finite(d.Box.Y1) || !finite(d.Box.X2) || !finite(d.Box.Y2) {
				t.Fatalf("%+v: box not finite", d)
			}
			if d.ClassID < 0 || (nc > 0 && d.ClassID >= nc) || d.ClassID > maxExactClass {
				t.Fatalf("%+v: class not in the model's %d", d, nc)
			}
		}
		kept := NMS(dets, NMSOptions{IoU: 0.45})
		g, err := NewGeometry(640, 480, inW, inH, ResizeLetterbox)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range kept {
			if i > 0 && d.Score > kept[i-1].Score {
				t.Fatalf("NMS result not best first: %g after %g", d.Score, kept[i-1].Score)
			}
			b := g.ToFrame(d.Box)
			for _, v := range [...]float32{b.X1, b.X2} {
				if !(v >= 0 && v <= 640) {
					t.Fatalf("frame box %+v outside 640x480", b)
				}
			}
			for _, v := range [...]float32{b.Y1, b.Y2} {
				if !(v >= 0 && v <= 480) {
					t.Fatalf("frame box %+v outside 640x480", b)
				}
			}
		}
	})
}

// FuzzDetectFormat checks that DetectFormat never panics on any shape and
// input size, and that a format it picks builds a decoder for that shape.
func FuzzDetectFormat(f *testing.F) {
	f.Add(int64(1), int64(84), int64(2100), int64(0), 320, 320)   // yolov8n 320
	f.Add(int64(1), int64(3549), int64(85), int64(0), 416, 416)   // yolox_nano 416
	f.Add(int64(1), int64(25200), int64(85), int64(0), 640, 640)  // yolov5 640
	f.Add(int64(1), int64(300), int64(6), int64(0), 640, 640)     // yolov10 end2end
	f.Add(int64(605), int64(95), int64(0), int64(0), 352, 352)    // yolo-fastestv2 [N, 15+nc]
	f.Add(int64(1), int64(-1), int64(85), int64(0), 640, 640)     // dynamic rows
	f.Add(int64(1), int64(1<<40), int64(1<<40), int64(0), 64, 64) // 2^80 values
	f.Add(int64(1), int64(3), int64(64), int64(64), 64, 64)       // rank 4
	f.Fuzz(func(t *testing.T, d0, d1, d2, d3 int64, inW, inH int) {
		shape := []int64{d0, d1}
		if d2 != 0 {
			shape = append(shape, d2)
		}
		if d3 != 0 {
			shape = append(shape, d3)
		}
		format, err := DetectFormat(shape, inW, inH)
		if err != nil {
			if format != "" {
				t.Fatalf("format %q with error %v", format, err)
			}
			return
		}
		dec, err := NewDecoder(format, shape, inW, inH)
		if err != nil {
			t.Fatalf("DetectFormat(%v, %d, %d) = %s, but NewDecoder: %v", shape, inW, inH, format, err)
		}
		if dec.NumClasses() < 0 {
			t.Fatalf("%s decoder for %v: %d classes", format, shape, dec.NumClasses())
		}
	})
}
