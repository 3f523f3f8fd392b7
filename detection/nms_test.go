package detection

import (
	"cmp"
	"math"
	"slices"
	"testing"
)

func TestIoU(t *testing.T) {
	tests := []struct {
		name string
		a, b Box
		want float32
	}{
		{"identical", Box{0, 0, 10, 10}, Box{0, 0, 10, 10}, 1},
		{"disjoint", Box{0, 0, 10, 10}, Box{20, 20, 30, 30}, 0},
		{"touching edges", Box{0, 0, 10, 10}, Box{10, 0, 20, 10}, 0},
		{"half width", Box{0, 0, 2, 1}, Box{0, 0, 1, 1}, 0.5},
		{"shifted", Box{0, 0, 2, 2}, Box{1, 1, 3, 3}, 1.0 / 7}, // 1 / (4+4-1)
		{"contained", Box{0, 0, 10, 10}, Box{2, 2, 7, 7}, 0.25},
		{"inverted", Box{10, 10, 0, 0}, Box{0, 0, 10, 10}, 0},
		{"empty both", Box{}, Box{}, 0},
		{"apart vertically only", Box{0, 0, 10, 10}, Box{0, 20, 10, 30}, 0},
		{"apart horizontally only", Box{0, 0, 10, 10}, Box{20, 0, 30, 10}, 0},
		{"identical, under a pixel", Box{0, 0, 0.5, 0.5}, Box{0, 0, 0.5, 0.5}, 1},
		{"areas underflow to 0", Box{0, 0, 1e-30, 1e-30}, Box{0, 0, 1e-30, 1e-30}, 0},
	}
	for _, tt := range tests {
		got, rev := IoU(tt.a, tt.b), IoU(tt.b, tt.a)
		if abs32(got-tt.want) > 1e-6 || got != rev {
			t.Errorf("%s: IoU(%v, %v) = %g (reversed %g), want %g", tt.name, tt.a, tt.b, got, rev, tt.want)
		}
	}
}

func det(class int, score float32, x1, y1, x2, y2 float32) Detection {
	return Detection{ClassID: class, Score: score, Box: Box{x1, y1, x2, y2}}
}

// assertKept checks NMS kept exactly these detections, in this order.
func assertKept(t *testing.T, got, want []Detection) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("kept %d, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("kept[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestNMSPerClassAndAgnostic(t *testing.T) {
	// Two boxes with IoU 0.81 (9x10 overlap of 10x10 boxes = 90 / 110), different classes.
	car := det(2, 0.6, 0, 0, 10, 10)
	truck := det(7, 0.9, 1, 0, 11, 10)

	got := NMS([]Detection{car, truck}, NMSOptions{IoU: 0.5})
	assertKept(t, got, []Detection{truck, car})

	got = NMS([]Detection{car, truck}, NMSOptions{IoU: 0.5, Agnostic: true})
	assertKept(t, got, []Detection{truck})

	// Same class: suppressed even when not agnostic.
	car2 := det(2, 0.9, 1, 0, 11, 10)
	got = NMS([]Detection{car, car2}, NMSOptions{IoU: 0.5})
	assertKept(t, got, []Detection{car2})
}

func TestNMSThresholdBoundary(t *testing.T) {
	a := det(0, 0.9, 0, 0, 2, 1)
	b := det(0, 0.8, 0, 0, 1, 1) // IoU(a, b) = 0.5 exactly
	// IoU equal to the threshold does not exceed it: both kept.
	got := NMS([]Detection{a, b}, NMSOptions{IoU: 0.5})
	assertKept(t, got, []Detection{a, b})
	// Just below: suppressed.
	got = NMS([]Detection{a, b}, NMSOptions{IoU: 0.4999})
	assertKept(t, got, []Detection{a})
}

func TestNMSGreedyChain(t *testing.T) {
	// a overlaps b, b overlaps c, a and c are disjoint. b is suppressed by
	// a, so it must not suppress c.
	a := det(0, 0.9, 0, 0, 10, 10)
	b := det(0, 0.8, 5, 0, 15, 10)
	c := det(0, 0.7, 10, 0, 20, 10)
	got := NMS([]Detection{c, b, a}, NMSOptions{IoU: 0.3})
	assertKept(t, got, []Detection{a, c})
}

func TestNMSMaxDetections(t *testing.T) {
	dets := []Detection{
		det(0, 0.3, 0, 0, 1, 1),
		det(1, 0.9, 10, 0, 11, 1),
		det(0, 0.5, 20, 0, 21, 1),
		det(0, 0.95, 20, 0, 21, 1), // suppresses the 0.5 box
		det(2, 0.7, 30, 0, 31, 1),
	}
	got := NMS(dets, NMSOptions{IoU: 0.5, MaxDetections: 3})
	assertKept(t, got, []Detection{
		det(0, 0.95, 20, 0, 21, 1),
		det(1, 0.9, 10, 0, 11, 1),
		det(2, 0.7, 30, 0, 31, 1),
	})
	// A cap of 1 keeps the best box only.
	dets = []Detection{det(0, 0.3, 0, 0, 1, 1), det(1, 0.9, 10, 0, 11, 1)}
	assertKept(t, NMS(dets, NMSOptions{IoU: 0.5, MaxDetections: 1}), []Detection{det(1, 0.9, 10, 0, 11, 1)})
	// 0 means no limit.
	dets = []Detection{det(0, 0.3, 0, 0, 1, 1), det(1, 0.9, 10, 0, 11, 1), det(0, 0.5, 20, 0, 21, 1)}
	if got := NMS(dets, NMSOptions{IoU: 0.5}); len(got) != 3 {
		t.Errorf("MaxDetections 0 kept %d of 3 disjoint boxes", len(got))
	}
}

func TestNMSOrderAndDeterminism(t *testing.T) {
	// Equal scores keep their input order (stable sort), so the first of two
	// overlapping equal-score boxes wins.
	first := det(0, 0.8, 0, 0, 10, 10)
	second := det(0, 0.8, 1, 1, 10, 10)
	low := det(3, 0.2, 50, 50, 60, 60)
	high := det(1, 0.99, 100, 100, 110, 110)
	got := NMS([]Detection{low, first, second, high}, NMSOptions{IoU: 0.5})
	assertKept(t, got, []Detection{high, first, low})

	got = NMS([]Detection{low, second, first, high}, NMSOptions{IoU: 0.5})
	assertKept(t, got, []Detection{high, second, low})

	// NaN scores sort last and do not disturb the others.
	nan := det(0, float32(math.NaN()), 200, 200, 210, 210)
	got = NMS([]Detection{nan, low, high}, NMSOptions{IoU: 0.5})
	if len(got) != 3 || got[0] != high || got[1] != low || !math.IsNaN(float64(got[2].Score)) {
		t.Errorf("NMS with a NaN score = %+v, want [high, low, NaN]", got)
	}

	if got := NMS(nil, NMSOptions{IoU: 0.5}); len(got) != 0 {
		t.Errorf("NMS(nil) = %+v", got)
	}
}

func TestNMSInPlaceNoAllocs(t *testing.T) {
	src := nmsCandidates(300)
	dets := make([]Detection, len(src))
	var kept []Detection
	assertNoAllocs(t, "NMS", func() {
		copy(dets, src)
		kept = NMS(dets, NMSOptions{IoU: 0.45})
	})
	if len(kept) == 0 || len(kept) == len(src) {
		t.Fatalf("kept %d of %d clustered candidates; the fixture should need suppression", len(kept), len(src))
	}
	if &kept[0] != &dets[0] {
		t.Error("NMS did not return a prefix of its input")
	}
	// Check the invariants on the result: descending scores, and no two kept
	// boxes of the same class overlap by more than the threshold.
	for i := range kept {
		if i > 0 && kept[i].Score > kept[i-1].Score {
			t.Errorf("kept[%d].Score %g > kept[%d].Score %g", i, kept[i].Score, i-1, kept[i-1].Score)
		}
		for j := range i {
			if kept[i].ClassID == kept[j].ClassID && IoU(kept[i].Box, kept[j].Box) > 0.45 {
				t.Errorf("kept %d and %d: same class, IoU %g", j, i, IoU(kept[i].Box, kept[j].Box))
			}
		}
	}
}

func TestSortByScoreStable(t *testing.T) {
	// Both sort paths (insertion for short inputs, SortStableFunc for long
	// ones) must agree with a reference stable sort, ties and NaN included.
	for _, n := range []int{0, 1, 2, 17, insertionSortMax, insertionSortMax + 1, 3000} {
		dets := nmsCandidates(n)
		for i := range dets {
			// Coarse scores make many ties; ClassID records input order.
			dets[i].Score = float32(int(dets[i].Score*20)) / 20
			dets[i].ClassID = i
			if i%97 == 5 {
				dets[i].Score = float32(math.NaN())
			}
		}
		want := slices.Clone(dets)
		slices.SortStableFunc(want, func(a, b Detection) int {
			an, bn := math.IsNaN(float64(a.Score)), math.IsNaN(float64(b.Score))
			switch {
			case an && bn:
				return 0
			case an:
				return 1
			case bn:
				return -1
			}
			return cmp.Compare(b.Score, a.Score)
		})
		sortByScore(dets)
		for i := range want {
			if dets[i].ClassID != want[i].ClassID {
				t.Fatalf("n=%d: position %d holds input %d, want input %d", n, i, dets[i].ClassID, want[i].ClassID)
			}
		}
	}
}

// nmsCandidates builds n deterministic candidates: clusters of jittered
// boxes around a few objects of a few classes, like a decoder's output.
func nmsCandidates(n int) []Detection {
	dets := make([]Detection, n)
	seed := uint32(1)
	rnd := func() float32 { // xorshift32 in [0, 1)
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		return float32(seed>>8) / (1 << 24)
	}
	for i := range dets {
		obj := i % 20
		cx, cy := float32(obj%5)*120+60, float32(obj/5)*100+50
		w, h := 60+20*rnd(), 50+20*rnd()
		cx += 10 * (rnd() - 0.5)
		cy += 10 * (rnd() - 0.5)
		dets[i] = Detection{ClassID: obj % 4, Score: 0.25 + 0.7*rnd(), Box: cxcywh(cx, cy, w, h)}
	}
	return dets
}
