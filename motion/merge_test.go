package motion

import (
	"image"
	"slices"
	"testing"
)

func TestMergeBoxes(t *testing.T) {
	r := image.Rect
	cases := []struct {
		name  string
		boxes []image.Rectangle
		pad   int
		want  []image.Rectangle
	}{
		{"empty", nil, 5, nil},
		{"one", []image.Rectangle{r(0, 0, 10, 10)}, 5, []image.Rectangle{r(0, 0, 10, 10)}},
		{"overlap", []image.Rectangle{r(0, 0, 10, 10), r(5, 5, 20, 20)}, 0, []image.Rectangle{r(0, 0, 20, 20)}},
		{"touching merge at pad 0", []image.Rectangle{r(0, 0, 10, 10), r(10, 0, 20, 10)}, 0, []image.Rectangle{r(0, 0, 20, 10)}},
		{"gap 1 apart at pad 0", []image.Rectangle{r(0, 0, 10, 10), r(11, 0, 20, 10)}, 0, []image.Rectangle{r(0, 0, 10, 10), r(11, 0, 20, 10)}},
		{"gap equal to pad", []image.Rectangle{r(0, 0, 10, 10), r(15, 0, 20, 10)}, 5, []image.Rectangle{r(0, 0, 20, 10)}},
		{"gap beyond pad", []image.Rectangle{r(0, 0, 10, 10), r(16, 0, 20, 10)}, 5, []image.Rectangle{r(0, 0, 10, 10), r(16, 0, 20, 10)}},
		{"near in x but far in y", []image.Rectangle{r(0, 0, 10, 10), r(12, 30, 20, 40)}, 5, []image.Rectangle{r(0, 0, 10, 10), r(12, 30, 20, 40)}},
		{"diagonal corner within pad", []image.Rectangle{r(0, 0, 10, 10), r(13, 13, 20, 20)}, 3, []image.Rectangle{r(0, 0, 20, 20)}},
		{"negative pad counts as 0", []image.Rectangle{r(0, 0, 10, 10), r(10, 0, 20, 10)}, -4, []image.Rectangle{r(0, 0, 20, 10)}},
		{"empty boxes dropped", []image.Rectangle{{}, r(0, 0, 10, 10), r(5, 5, 5, 9)}, 100, []image.Rectangle{r(0, 0, 10, 10)}},
		// a and c are far apart; b joins a, and the grown box then reaches c.
		{"transitive", []image.Rectangle{r(0, 0, 10, 10), r(40, 0, 50, 10), r(8, 0, 32, 10)}, 8, []image.Rectangle{r(0, 0, 50, 10)}},
		// d is checked before the union of a and c grows to reach it.
		{"grown box reaches an earlier box", []image.Rectangle{r(0, 0, 10, 10), r(60, 0, 70, 10), r(100, 0, 110, 10), r(9, 0, 55, 10)}, 5,
			[]image.Rectangle{r(0, 0, 70, 10), r(100, 0, 110, 10)}},
		{"chain of many", []image.Rectangle{r(0, 0, 5, 5), r(6, 0, 11, 5), r(12, 0, 17, 5), r(18, 0, 23, 5), r(50, 50, 60, 60)}, 1,
			[]image.Rectangle{r(0, 0, 23, 5), r(50, 50, 60, 60)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.boxes)
			got := MergeBoxes(in, c.pad)
			sortRects(got)
			want := slices.Clone(c.want)
			sortRects(want)
			if !slices.Equal(got, want) {
				t.Fatalf("MergeBoxes(%v, %d) = %v, want %v", c.boxes, c.pad, got, want)
			}
			if len(got) > 0 && &got[0] != &in[0] {
				t.Fatal("MergeBoxes did not work in place")
			}
			// The result is stable: no two boxes are within pad.
			if again := MergeBoxes(slices.Clone(got), c.pad); len(again) != len(got) {
				t.Fatalf("merging the result again gives %v", again)
			}
		})
	}
}

func TestMergeBoxesAllocs(t *testing.T) {
	src := make([]image.Rectangle, 0, 40)
	for i := range 40 {
		src = append(src, image.Rect(i*7%97, i*13%89, i*7%97+9, i*13%89+9))
	}
	buf := make([]image.Rectangle, len(src))
	if n := testing.AllocsPerRun(100, func() {
		copy(buf, src)
		MergeBoxes(buf, 4)
	}); n != 0 {
		t.Fatalf("MergeBoxes allocates %v times per call, want 0", n)
	}
}

func sortRects(rs []image.Rectangle) {
	slices.SortFunc(rs, func(a, b image.Rectangle) int {
		if a.Min.X != b.Min.X {
			return a.Min.X - b.Min.X
		}
		return a.Min.Y - b.Min.Y
	})
}
