package detection

import "testing"

func TestYOLOv8Decode(t *testing.T) {
	const nc, n = 3, 4
	out := make([]float32, (4+nc)*n)
	// Channel-major: value(c, i) = out[c*n+i].
	set := func(i int, vals ...float32) {
		for c, v := range vals {
			out[c*n+i] = v
		}
	}
	set(0, 10, 20, 4, 6, 0.1, 0.2, 0.9)      // class 2 wins
	set(1, 50, 50, 10, 10, 0.1, 0.2, 0.1)    // below minScore
	set(2, 100, 50, 20, 10, 0.3, 0.8, 0.8)   // tie: first class wins
	set(3, 200, 150, 40, 30, 0.25, 0.0, 0.1) // exactly minScore: kept
	d := mustDecoder(t, FormatYOLOv8, []int64{1, 4 + nc, n}, 320, 320)
	if got := d.NumClasses(); got != nc {
		t.Errorf("NumClasses = %d, want %d", got, nc)
	}

	prefix := Detection{ClassID: 7, Score: 1}
	got := d.Decode(out, 0.25, []Detection{prefix})
	assertDetections(t, got, []Detection{
		prefix,
		{ClassID: 2, Score: 0.9, Box: Box{8, 17, 12, 23}},
		{ClassID: 1, Score: 0.8, Box: Box{90, 45, 110, 55}},
		{ClassID: 0, Score: 0.25, Box: Box{180, 135, 220, 165}},
	})

	dst := make([]Detection, 0, n)
	assertNoAllocs(t, "yolov8 decode", func() { dst = d.Decode(out, 0.25, dst[:0]) })
}

func TestYOLOv8DecodeAcrossBlocks(t *testing.T) {
	// More anchors than one scoring block, with winners on both sides of
	// the block boundary and in the short last block.
	const nc, n = 5, 2*yolov8Block + 44
	out := make([]float32, (4+nc)*n)
	type hit struct{ i, cls int }
	hits := []hit{{0, 4}, {yolov8Block - 1, 1}, {yolov8Block, 3}, {2 * yolov8Block, 0}, {n - 1, 2}}
	var want []Detection
	for k, h := range hits {
		cx := float32(10 * (k + 1))
		out[h.i], out[n+h.i], out[2*n+h.i], out[3*n+h.i] = cx, 2*cx, 4, 8
		score := 0.5 + float32(k)/10
		out[(4+h.cls)*n+h.i] = score
		want = append(want, Detection{ClassID: h.cls, Score: score, Box: Box{cx - 2, 2*cx - 4, cx + 2, 2*cx + 4}})
	}
	d := mustDecoder(t, FormatYOLOv8, []int64{1, 4 + nc, n}, 640, 640)
	assertDetections(t, d.Decode(out, 0.25, nil), want)
}
