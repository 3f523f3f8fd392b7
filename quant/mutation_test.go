package quant

import (
	"slices"
	"testing"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A 1x1 plane (global pooling, a squeeze-excite branch) is still NCHW: its
// channels get means too. An empty plane or a length that does not match
// the shape is ignored.
func TestChannelMeansOnePixelPlane(t *testing.T) {
	c := channelMeans{}
	c.add("pool", []int64{2, 3, 1, 1}, []float32{1, 2, 3, 5, 6, 7})
	c.add("empty", []int64{1, 3, 0, 4}, nil)
	c.add("short", []int64{1, 2, 2, 2}, []float32{1, 2, 3})
	got := c.means()
	if want := []float32{3, 4, 5}; !slices.Equal(got["pool"], want) {
		t.Errorf("means of a 1x1 plane = %v, want %v", got["pool"], want)
	}
	for _, name := range []string{"empty", "short"} {
		if m, ok := got[name]; ok {
			t.Errorf("%s: got channel means %v, want none", name, m)
		}
	}
}
