package detection

import "testing"

func TestYOLOv5Decode(t *testing.T) {
	out := []float32{
		50, 60, 10, 20, 0.9, 0.5, 0.8, // score 0.9*0.8 = 0.72, class 1
		10, 10, 4, 4, 0.2, 0.9, 0.9, // obj below minScore
		30, 30, 8, 8, 0.5, 0.4, 0.2, // 0.5*0.4 = 0.2 < 0.3
		70, 80, 6, 2, 0.6, 0.5, 0.5, // 0.6*0.5 = 0.3, tie -> class 0
	}
	d := mustDecoder(t, FormatYOLOv5, []int64{1, 4, 7}, 320, 320)
	if got := d.NumClasses(); got != 2 {
		t.Errorf("NumClasses = %d, want 2", got)
	}
	got := d.Decode(out, 0.3, nil)
	assertDetections(t, got, []Detection{
		{ClassID: 1, Score: 0.9 * 0.8, Box: Box{45, 50, 55, 70}},
		{ClassID: 0, Score: float32(0.6) * 0.5, Box: Box{67, 79, 73, 81}},
	})

	// The objectness gate skips the class scan: a row whose obj is below
	// minScore is dropped even if its (out-of-range) class score would
	// lift the product above it.
	gate := []float32{0, 0, 2, 2, 0.2, 5, 0}
	d1 := mustDecoder(t, FormatYOLOv5, []int64{1, 1, 7}, 320, 320)
	if got := d1.Decode(gate, 0.3, nil); len(got) != 0 {
		t.Errorf("obj 0.2 < minScore 0.3: got %+v, want nothing", got)
	}

	dst := make([]Detection, 0, 4)
	assertNoAllocs(t, "yolov5 decode", func() { dst = d.Decode(out, 0.3, dst[:0]) })
}
