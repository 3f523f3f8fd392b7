package detection

import "testing"

// realisticYOLOv8 fills a [1, 84, n] channel-major output like a real
// frame: small class scores everywhere and a few confident anchors.
func realisticYOLOv8(n int) []float32 {
	const nc = 80
	out := make([]float32, (4+nc)*n)
	seed := uint32(7)
	rnd := func() float32 {
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		return float32(seed>>8) / (1 << 24)
	}
	for i := range n {
		out[i] = 320 * rnd()
		out[n+i] = 320 * rnd()
		out[2*n+i] = 10 + 100*rnd()
		out[3*n+i] = 10 + 100*rnd()
		for c := range nc {
			out[(4+c)*n+i] = 0.02 * rnd()
		}
		if i%100 == 0 { // 1% of anchors are confident
			out[(4+i%nc)*n+i] = 0.5 + 0.4*rnd()
		}
	}
	return out
}

// realisticYOLOX fills a [1, rows, 85] YOLOX output: low objectness almost
// everywhere, a few confident cells.
func realisticYOLOX(rows int) []float32 {
	const cols = 85
	out := make([]float32, rows*cols)
	seed := uint32(11)
	rnd := func() float32 {
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		return float32(seed>>8) / (1 << 24)
	}
	for i := range rows {
		row := out[i*cols : (i+1)*cols]
		row[0], row[1], row[2], row[3] = rnd(), rnd(), rnd()-0.5, rnd()-0.5
		row[4] = 0.01 * rnd()
		for c := 5; c < cols; c++ {
			row[c] = 0.05 * rnd()
		}
		if i%50 == 0 { // 2% of cells hold an object
			row[4] = 0.6 + 0.4*rnd()
			row[5+i%80] = 0.5 + 0.5*rnd()
		}
	}
	return out
}

func BenchmarkDecodeYOLOv8_84x2100(b *testing.B) {
	d := mustDecoder(b, FormatYOLOv8, []int64{1, 84, 2100}, 320, 320)
	out := realisticYOLOv8(2100)
	dst := make([]Detection, 0, 2100)
	if got := len(d.Decode(out, 0.25, dst)); got != 21 {
		b.Fatalf("decoded %d candidates, want 21", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = d.Decode(out, 0.25, dst[:0])
	}
}

func BenchmarkDecodeYOLOv8_84x8400(b *testing.B) {
	d := mustDecoder(b, FormatYOLOv8, []int64{1, 84, 8400}, 640, 640)
	out := realisticYOLOv8(8400)
	dst := make([]Detection, 0, 8400)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = d.Decode(out, 0.25, dst[:0])
	}
}

func BenchmarkDecodeYOLOX_3549x85(b *testing.B) {
	d := mustDecoder(b, FormatYOLOX, []int64{1, 3549, 85}, 416, 416)
	out := realisticYOLOX(3549)
	dst := make([]Detection, 0, 3549)
	if got := len(d.Decode(out, 0.3, dst)); got == 0 || got > 71 {
		b.Fatalf("decoded %d candidates, want 1..71", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = d.Decode(out, 0.3, dst[:0])
	}
}

func BenchmarkNMS300(b *testing.B) {
	src := nmsCandidates(300)
	dets := make([]Detection, len(src))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		copy(dets, src) // NMS works in place; restore the input each time
		NMS(dets, NMSOptions{IoU: 0.45})
	}
}

func BenchmarkNMS300Agnostic(b *testing.B) {
	src := nmsCandidates(300)
	dets := make([]Detection, len(src))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		copy(dets, src)
		NMS(dets, NMSOptions{IoU: 0.45, Agnostic: true})
	}
}
