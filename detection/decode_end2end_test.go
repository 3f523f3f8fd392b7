package detection

import (
	"math"
	"testing"
)

func TestEnd2EndDecode(t *testing.T) {
	nan := float32(math.NaN())
	out := []float32{
		10, 20, 30, 40, 0.9, 2, // kept
		1, 2, 3, 4, 0.1, 0, // score below minScore
		5, 6, 7, 8, 0.8, 1.5, // class not an integer
		5, 6, 7, 8, 0.8, -1, // negative class
		5, 6, 7, 8, 0.8, nan, // NaN class
		5, 6, 7, 8, 0.8, 1e30, // class out of range
		5, 6, 7, 8, nan, 0, // NaN score
		50, 60, 70, 80, 0.5, 0, // kept, class 0
		0, 0, 0, 0, 0, 0, // padding row (score 0)
		1, 1, 2, 2, 0.6, 1 << 24, // kept: the largest class id
		1, 1, 2, 2, 0.6, 1<<24 + 2, // a whole float32 over 2^24
	}
	const k = 11
	d := mustDecoder(t, FormatEnd2End, []int64{1, k, 6}, 640, 640)
	if got := d.NumClasses(); got != 0 {
		t.Errorf("NumClasses = %d, want 0 (unknown)", got)
	}
	got := d.Decode(out, 0.25, nil)
	assertDetections(t, got, []Detection{
		{ClassID: 2, Score: 0.9, Box: Box{10, 20, 30, 40}},
		{ClassID: 0, Score: 0.5, Box: Box{50, 60, 70, 80}},
		{ClassID: 1 << 24, Score: 0.6, Box: Box{1, 1, 2, 2}},
	})

	dst := make([]Detection, 0, k)
	assertNoAllocs(t, "end2end decode", func() { dst = d.Decode(out, 0.25, dst[:0]) })
}
