package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomScene is a dataset of n images with 0-4 objects of 3 classes each,
// and detections that find most objects (jittered, some with the wrong
// class) plus false positives, with scores that often tie.
func randomScene(seed uint64, n int) (*Dataset, map[int][]Detection) {
	rng := rand.New(rand.NewPCG(seed, 1))
	ds := &Dataset{Names: []string{"a", "b", "c"}}
	dets := map[int][]Detection{}
	box := func() [4]float64 {
		x, y := rng.Float64()*500, rng.Float64()*400
		w, h := 5+rng.Float64()*120, 5+rng.Float64()*120
		return b(x, y, x+w, y+h)
	}
	for i := range n {
		img := Image{ID: 100 + 3*i, Width: 640, Height: 480}
		for range rng.IntN(5) {
			o := obj(rng.IntN(3), box())
			img.Objects = append(img.Objects, o)
			if rng.Float64() < 0.8 {
				j := o.Box
				for c := range j {
					j[c] += rng.NormFloat64() * 4
				}
				class := o.ClassID
				if rng.Float64() < 0.15 {
					class = (class + 1) % 3
				}
				dets[img.ID] = append(dets[img.ID], det(class, math.Round(rng.Float64()*10)/10, j))
			}
		}
		for range rng.IntN(3) {
			dets[img.ID] = append(dets[img.ID], det(rng.IntN(3), math.Round(rng.Float64()*10)/10, box()))
		}
		ds.Images = append(ds.Images, img)
	}
	return ds, dets
}

// The fast resample score (matches pooled per draw) equals Evaluate's
// summary on a dataset made of the drawn images with ascending IDs —
// also with images drawn twice and the identity draw.
func TestResampleScoreMatchesEvaluate(t *testing.T) {
	ds, dets := randomScene(5, 30)
	m, err := matchAll(ds, dets)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for trial := range 8 {
		draws := make([]int, len(ds.Images))
		for j := range draws {
			if trial == 0 {
				draws[j] = j
			} else {
				draws[j] = rng.IntN(len(draws))
			}
		}
		rs := &Dataset{Names: ds.Names}
		ev := map[int][]Detection{}
		for j, i := range draws {
			img := ds.Images[i]
			ev[j+1] = dets[img.ID]
			img.ID = j + 1
			rs.Images = append(rs.Images, img)
		}
		e := NewEvaluator(rs)
		for id, d := range ev {
			if err := e.Add(id, d); err != nil {
				t.Fatal(err)
			}
		}
		want := e.Evaluate().Summary
		ap, ap50 := m.score(draws)
		if math.Abs(ap-want.AP) > 1e-12 || math.Abs(ap50-want.AP50) > 1e-12 {
			t.Errorf("trial %d: score %.6f / %.6f, Evaluate %.6f / %.6f", trial, ap, ap50, want.AP, want.AP50)
		}
	}
	if ap, ap50 := (&matches{classes: 3, byImage: [][]*imgEval{make([]*imgEval, 3)}}).score([]int{0}); ap != -1 || ap50 != -1 {
		t.Errorf("no ground truth: %g / %g, want -1 / -1", ap, ap50)
	}
}

func TestBootstrapDelta(t *testing.T) {
	ctx := context.Background()
	ds, dets := randomScene(7, 40)
	same, err := BootstrapDelta(ctx, ds, dets, dets, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	if same.Resamples != 200 || same.AP != [2]float64{} || same.AP50 != [2]float64{} {
		t.Errorf("a model against itself: %+v, want every interval [0, 0]", same)
	}
	// worse: every detection on half the images moved 40 px off its
	// object — a clearly worse model.
	worse := map[int][]Detection{}
	for i, img := range ds.Images {
		for _, d := range dets[img.ID] {
			if i%2 == 0 {
				d.Box[0] += 40 // off target
			}
			worse[img.ID] = append(worse[img.ID], d)
		}
	}
	d1, err := BootstrapDelta(ctx, ds, dets, worse, 300, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !(d1.AP[0] < d1.AP[1] && d1.AP[1] < 0 && d1.AP50[1] < 0) {
		t.Errorf("a clearly worse model: %+v, want intervals below 0", d1)
	}
	d2, err := BootstrapDelta(ctx, ds, dets, worse, 300, 3)
	if err != nil {
		t.Fatal(err)
	}
	if *d2 != *d1 {
		t.Errorf("same seed, different intervals: %+v and %+v", d1, d2)
	}
	rev, err := BootstrapDelta(ctx, ds, worse, dets, 300, 3)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rev.AP[0]+d1.AP[1]) > 1e-12 || math.Abs(rev.AP[1]+d1.AP[0]) > 1e-12 {
		t.Errorf("swapped models: %v, want the negated %v", rev.AP, d1.AP)
	}
	// Centre: the full data's delta lies inside its own interval.
	full := func(d map[int][]Detection) float64 {
		e := NewEvaluator(ds)
		for id, x := range d {
			if err := e.Add(id, x); err != nil {
				t.Fatal(err)
			}
		}
		return e.Evaluate().Summary.AP
	}
	if delta := full(worse) - full(dets); delta < d1.AP[0] || delta > d1.AP[1] {
		t.Errorf("the full data's delta %.4f lies outside its interval %v", delta, d1.AP)
	}
}

// The fewest resamples allowed (2) work, and the second model's detections
// are checked like the first's.
func TestBootstrapDeltaEdges(t *testing.T) {
	ds, dets := randomScene(7, 5)
	if d, err := BootstrapDelta(context.Background(), ds, dets, dets, 2, 1); err != nil || d.Resamples != 2 {
		t.Errorf("2 resamples: %+v, %v", d, err)
	}
	bad := map[int][]Detection{7: {det(0, 1, b(0, 0, 1, 1))}}
	if d, err := BootstrapDelta(context.Background(), ds, dets, bad, 10, 1); err == nil || d != nil || !strings.Contains(err.Error(), "second model: add detections: image id 7") {
		t.Errorf("second model with an unknown image: %+v, %v", d, err)
	}
}

func TestBootstrapDeltaErrors(t *testing.T) {
	ds, dets := randomScene(7, 5)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name      string
		ctx       context.Context
		ds        *Dataset
		a         map[int][]Detection
		resamples int
		want      string
	}{
		{"one resample", context.Background(), ds, dets, 1, "1 resamples, need at least 2"},
		{"no images", context.Background(), &Dataset{Names: ds.Names}, dets, 10, "no images"},
		{"unknown image", context.Background(), ds, map[int][]Detection{7: {det(0, 1, b(0, 0, 1, 1))}}, 10, "first model: add detections: image id 7"},
		{"unknown class", context.Background(), ds, map[int][]Detection{ds.Images[0].ID: {det(3, 1, b(0, 0, 1, 1))}}, 10, "first model: add detections for image 100: class id 3"},
		{"cancelled", cancelled, ds, dets, 10, "context canceled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := BootstrapDelta(c.ctx, c.ds, c.a, dets, c.resamples, 1)
			if err == nil || got != nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %+v, %v; want an error containing %q", got, err, c.want)
			}
			if c.name == "cancelled" && !errors.Is(err, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", err)
			}
		})
	}
}

func TestInterval95(t *testing.T) {
	x := make([]float64, 1000)
	for i := range x {
		x[i] = float64(999 - i) // reversed: interval95 sorts
	}
	if got := interval95(x); got != [2]float64{24, 974} {
		t.Errorf("interval of 0..999 = %v, want [24 974] (ranks 25 and 975)", got)
	}
	if got := interval95([]float64{3, 1}); got != [2]float64{1, 3} {
		t.Errorf("interval of {1, 3} = %v", got)
	}
	if got := interval95([]float64{5}); got != [2]float64{5, 5} {
		t.Errorf("interval of {5} = %v", got)
	}
}
