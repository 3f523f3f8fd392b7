package motion

import (
	"image"
	"slices"
	"testing"

	"gocv.io/x/gocv"
)

// scene is a synthetic camera stream: a still photo with, on some frames,
// a crop of another photo pasted at a moving position.
type scene struct {
	frames []gocv.Mat
	truth  []image.Rectangle // where the object is; empty when absent
}

// buildScene renders n frames of size w×h: background photo bgName, the
// object (objSize square) where at says, then edit (may be nil) and
// sensor noise (sigma 3).
func buildScene(t testing.TB, n, w, h int, bgName string, objSize int,
	at func(i int) (image.Point, bool), edit func(i int, f *gocv.Mat)) scene {
	t.Helper()
	bg := photo(t, bgName, w, h)
	obj := sprite(t, image.Pt(objSize, objSize))
	var s scene
	for i := range n {
		f := bg.Clone()
		closeMat(t, &f)
		var truth image.Rectangle
		if p, ok := at(i); ok {
			paste(t, &f, obj, p)
			truth = image.Rectangle{Min: p, Max: p.Add(image.Pt(objSize, objSize))}
		}
		if edit != nil {
			edit(i, &f)
		}
		addNoise(t, &f, 3)
		s.frames = append(s.frames, f)
		s.truth = append(s.truth, truth)
	}
	return s
}

// result is what Detect reported for one frame.
type result struct {
	boxes       []image.Rectangle
	calibrating bool
}

// run feeds frames to d and records each result.
func run(d *Detector, frames []gocv.Mat) []result {
	out := make([]result, len(frames))
	var boxes []image.Rectangle
	for i, f := range frames {
		boxes = d.Detect(f, boxes)
		out[i] = result{boxes: slices.Clone(boxes), calibrating: d.Calibrating()}
	}
	return out
}

// fit returns the best IoU of truth with the motion boxes merged with pad
// 8 (how tightly one box frames the object).
func fit(boxes []image.Rectangle, truth image.Rectangle) float64 {
	_, score := best(MergeBoxes(slices.Clone(boxes), 8), truth)
	return score
}

// covered returns the fraction of truth's pixels inside some box once the
// boxes are merged with pad, as for region crops: how much of the object
// the detector will look at.
func covered(boxes []image.Rectangle, truth image.Rectangle, pad int) float64 {
	if truth.Empty() {
		return 0
	}
	boxes = MergeBoxes(slices.Clone(boxes), pad)
	n := 0
	for y := truth.Min.Y; y < truth.Max.Y; y++ {
		for x := truth.Min.X; x < truth.Max.X; x++ {
			if inAny(boxes, image.Pt(x, y)) {
				n++
			}
		}
	}
	return float64(n) / float64(area(truth))
}

// inAny reports whether p is in some box of boxes.
func inAny(boxes []image.Rectangle, p image.Point) bool {
	for _, b := range boxes {
		if p.In(b) {
			return true
		}
	}
	return false
}

// strays counts the boxes that do not overlap truth (all of them when
// truth is empty).
func strays(boxes []image.Rectangle, truth image.Rectangle) int {
	n := 0
	for _, b := range boxes {
		if truth.Empty() || !b.Overlaps(truth) {
			n++
		}
	}
	return n
}

// TestMovingObject: a still scene, then an object moving across it, then
// the still scene again, through MJPG compression and sensor noise. Motion
// is reported exactly where and when the object moves: tight boxes (IoU
// >= 0.5 after merging) on every moving frame, no box elsewhere, none on
// still frames — not even right after the object leaves, because the
// background never learned the moving object (no ghost trail).
func TestMovingObject(t *testing.T) {
	s := buildScene(t, 80, 640, 360, "horses.jpg", 64, func(i int) (image.Point, bool) {
		return image.Pt(40+13*(i-20), 100+3*(i-20)), i >= 20 && i < 60
	}, nil)
	frames := throughClip(t, s.frames)
	d := newDetector(t, Config{})
	res := run(d, frames)

	if !res[0].calibrating || len(res[0].boxes) != 0 {
		t.Fatalf("frame 0: calibrating %v, boxes %v; want the background taken and no boxes", res[0].calibrating, res[0].boxes)
	}
	missed := 0
	for i, r := range res[1:] {
		i++
		if r.calibrating {
			t.Errorf("frame %d: calibrating", i)
		}
		if s.truth[i].Empty() {
			if len(r.boxes) != 0 {
				t.Errorf("frame %d: nothing moves, got boxes %v", i, r.boxes)
			}
			continue
		}
		if n := strays(r.boxes, s.truth[i]); n != 0 {
			t.Errorf("frame %d: %d boxes away from the object at %v: %v", i, n, s.truth[i], r.boxes)
		}
		if iou, cov := fit(r.boxes, s.truth[i]), covered(r.boxes, s.truth[i], 8); iou < 0.5 || cov < 0.9 {
			missed++
			t.Logf("frame %d: object %v, boxes %v: best IoU %.2f, %.0f %% covered", i, s.truth[i], r.boxes, iou, 100*cov)
		}
	}
	if missed > 2 {
		t.Errorf("%d of 40 moving frames without a box fitting the object, want at most 2", missed)
	}
}

// TestStoppedObject: an object that moves in and stops is reported while
// the background learns it, then no longer: with learning_rate 0.1 it is
// still reported 3 frames after stopping and gone within 30.
func TestStoppedObject(t *testing.T) {
	const stop = 15
	s := buildScene(t, stop+40, 640, 360, "eagle.jpg", 64, func(i int) (image.Point, bool) {
		i = min(i, stop)
		return image.Pt(100+15*i, 200), i >= 5
	}, nil)
	res := run(newDetector(t, Config{LearningRate: 0.1}), s.frames)
	for i := stop; i <= stop+3; i++ {
		if cov := covered(res[i].boxes, s.truth[i], 16); cov < 0.5 {
			t.Errorf("frame %d, %d after stopping: object %v %.0f %% covered by boxes %v", i, i-stop, s.truth[i], 100*cov, res[i].boxes)
		}
	}
	for i := stop + 30; i < len(res); i++ {
		if len(res[i].boxes) != 0 {
			t.Errorf("frame %d, %d after stopping: boxes %v, want the object absorbed", i, i-stop, res[i].boxes)
		}
	}
}

// TestBrightnessStep: the lights change (darker by half, or brighter by 60
// grey levels) on a still scene. The step frame resets the background
// (Calibrating, no boxes) instead of reporting motion everywhere; at most
// two frames around it report anything; an object that then enters is
// detected as usual: a box fitting it (IoU >= 0.5) holding 80 % of it (the
// darkest rows of the object at half brightness fall below the threshold),
// nothing elsewhere.
func TestBrightnessStep(t *testing.T) {
	for _, c := range []struct {
		name        string
		alpha, beta float32
	}{{"darker", 0.5, 0}, {"brighter", 1, 60}} {
		t.Run(c.name, func(t *testing.T) {
			const step, enter = 20, 35
			s := buildScene(t, 60, 640, 360, "horses.jpg", 64, func(i int) (image.Point, bool) {
				return image.Pt(60+9*(i-enter), 200-2*(i-enter)), i >= enter
			}, func(i int, f *gocv.Mat) {
				if i >= step {
					f.ConvertToWithParams(f, gocv.MatTypeCV8UC3, c.alpha, c.beta)
				}
			})
			res := run(newDetector(t, Config{}), s.frames)

			if !res[step].calibrating || len(res[step].boxes) != 0 {
				t.Fatalf("step frame %d: calibrating %v, boxes %v; want calibrating and no boxes", step, res[step].calibrating, res[step].boxes)
			}
			noisy := 0
			for i := 1; i < enter; i++ {
				if i != step && res[i].calibrating {
					t.Errorf("frame %d: calibrating, want only the step frame %d", i, step)
				}
				if len(res[i].boxes) > 0 {
					noisy++
					t.Logf("frame %d: still scene, boxes %v", i, res[i].boxes)
				}
			}
			if noisy > 2 {
				t.Errorf("%d still frames around the step report motion, want at most 2", noisy)
			}
			missed := 0
			for i := enter; i < len(res); i++ {
				if res[i].calibrating {
					t.Errorf("frame %d: calibrating", i)
				}
				iou, cov := fit(res[i].boxes, s.truth[i]), covered(res[i].boxes, s.truth[i], 16)
				if iou < 0.5 || cov < 0.8 || strays(res[i].boxes, s.truth[i]) > 0 {
					missed++
					t.Logf("frame %d: object %v, boxes %v: best IoU %.2f, %.0f %% covered", i, s.truth[i], res[i].boxes, iou, 100*cov)
				}
			}
			if missed > 2 {
				t.Errorf("after the step, %d of %d frames with the moving object detected badly, want at most 2", missed, len(res)-enter)
			}
		})
	}
}

// TestObjectAcrossBrightnessStep: an object moves through a brightness
// step that halves the brightness (and so the contrast). The reset
// background holds the object where it stood, so a ghost is reported there
// for a while, but the object stays inside the (merged) motion boxes: at
// least half of it on every frame but the one after the step, at least 80
// % on all but 3 (half the contrast splits the object into fragments, some
// below the threshold). The ghost costs the detector a look; the object is
// not lost.
func TestObjectAcrossBrightnessStep(t *testing.T) {
	const step = 30
	s := buildScene(t, 60, 640, 360, "horses.jpg", 64, func(i int) (image.Point, bool) {
		return image.Pt(40+9*i, 120+i), true
	}, func(i int, f *gocv.Mat) {
		if i >= step {
			f.ConvertToWithParams(f, gocv.MatTypeCV8UC3, 0.5, 0)
		}
	})
	res := run(newDetector(t, Config{}), s.frames)
	if !res[step].calibrating || len(res[step].boxes) != 0 {
		t.Fatalf("step frame %d: calibrating %v, boxes %v; want calibrating and no boxes", step, res[step].calibrating, res[step].boxes)
	}
	partly := 0
	for i := 1; i < len(res); i++ {
		if i == step || i == step+1 { // the frame after the step may see the object only in part
			continue
		}
		cov := covered(res[i].boxes, s.truth[i], 16)
		if cov < 0.5 {
			t.Errorf("frame %d: object %v only %.0f %% covered by boxes %v", i, s.truth[i], 100*cov, res[i].boxes)
		}
		if cov < 0.8 {
			partly++
			t.Logf("frame %d: object %v %.0f %% covered by boxes %v", i, s.truth[i], 100*cov, res[i].boxes)
		}
	}
	if partly > 3 {
		t.Errorf("%d frames with the object less than 80 %% covered, want at most 3", partly)
	}
}

// TestMask: a rectangle flickering black/white every frame is reported as
// motion, unless a mask polygon covers it (its corners exactly on the
// rectangle's): then nothing is reported there, while an object moving
// elsewhere still is. Unmasked, the flicker shows on every white frame:
// the background took the black of frame 0 and never learns pixels that
// change every frame.
func TestMask(t *testing.T) {
	flicker := image.Rect(420, 30, 560, 110)
	s := buildScene(t, 40, 640, 360, "horses.jpg", 64, func(i int) (image.Point, bool) {
		return image.Pt(20+6*i, 230+i), true
	}, func(i int, f *gocv.Mat) {
		fill(f, flicker, float64(255*(i%2)))
	})
	frames := throughClip(t, s.frames)

	t.Run("unmasked", func(t *testing.T) {
		res := run(newDetector(t, Config{}), frames)
		for i := 1; i < len(res); i += 2 {
			if covered(res[i].boxes, flicker, 8) < 0.9 {
				t.Errorf("frame %d: white flicker at %v not reported, boxes %v", i, flicker, res[i].boxes)
			}
		}
	})
	t.Run("masked", func(t *testing.T) {
		mask := []Point{{420, 30}, {559, 30}, {559, 109}, {420, 109}}
		res := run(newDetector(t, Config{Masks: [][]Point{mask}}), frames)
		missed := 0
		for i := 1; i < len(res); i++ {
			if anyOverlaps(res[i].boxes, flicker) {
				t.Errorf("frame %d: boxes %v overlap the masked flicker at %v", i, res[i].boxes, flicker)
			}
			if covered(res[i].boxes, s.truth[i], 16) < 0.9 {
				missed++
				t.Logf("frame %d: object %v, boxes %v", i, s.truth[i], res[i].boxes)
			}
		}
		if missed > 1 {
			t.Errorf("with the mask, %d of %d frames miss the moving object, want at most 1", missed, len(res)-1)
		}
	})
}

// TestFrameSizeChange: the stream switches from 640x360 to 1280x720 and
// back. Each switch rebuilds the state (that frame starts a new
// background: Calibrating, no boxes) and detection carries on in the new
// frame's pixels.
func TestFrameSizeChange(t *testing.T) {
	pos := func(i int) (image.Point, bool) { return image.Pt(30+8*i, 80+2*i), true }
	small := buildScene(t, 60, 640, 360, "giraffe.jpg", 64, pos, nil)
	large := buildScene(t, 60, 1280, 720, "giraffe.jpg", 128, func(i int) (image.Point, bool) {
		p, ok := pos(i)
		return p.Mul(2), ok
	}, nil)
	var frames []gocv.Mat
	var truth []image.Rectangle
	for i := range 60 {
		s := small
		if i >= 20 && i < 40 {
			s = large
		}
		frames = append(frames, s.frames[i])
		truth = append(truth, s.truth[i])
	}
	res := run(newDetector(t, Config{}), frames)
	for i, r := range res {
		switch i {
		case 0, 20, 40:
			if !r.calibrating || len(r.boxes) != 0 {
				t.Errorf("frame %d (size %dx%d): calibrating %v, boxes %v; want a new background",
					i, frames[i].Cols(), frames[i].Rows(), r.calibrating, r.boxes)
			}
			continue
		}
		bounds := image.Rect(0, 0, frames[i].Cols(), frames[i].Rows())
		for _, b := range r.boxes {
			if !b.In(bounds) || b.Empty() {
				t.Errorf("frame %d: box %v outside the %v frame", i, b, bounds)
			}
		}
		if cov := covered(r.boxes, truth[i], 16); cov < 0.9 {
			t.Errorf("frame %d: object %v only %.0f %% covered by boxes %v", i, truth[i], 100*cov, r.boxes)
		}
	}
}

// TestFrameKinds: grey and BGRA frames work like BGR ones; empty frames,
// unsupported types and a closed Detector give no boxes (and an
// unsupported frame leaves the state alone).
func TestFrameKinds(t *testing.T) {
	s := buildScene(t, 12, 320, 240, "person.jpg", 48, func(i int) (image.Point, bool) {
		return image.Pt(20+15*i, 100), true
	}, nil)
	for _, k := range []struct {
		name string
		code gocv.ColorConversionCode
	}{{"grey", gocv.ColorBGRToGray}, {"bgra", gocv.ColorBGRToBGRA}} {
		t.Run(k.name, func(t *testing.T) {
			conv := make([]gocv.Mat, len(s.frames))
			for i, f := range s.frames {
				conv[i] = gocv.NewMat()
				closeMat(t, &conv[i])
				gocv.CvtColor(f, &conv[i], k.code)
			}
			res := run(newDetector(t, Config{}), conv)
			for i := 1; i < len(res); i++ {
				if cov := covered(res[i].boxes, s.truth[i], 16); cov < 0.9 {
					t.Errorf("frame %d: object %v only %.0f %% covered by boxes %v", i, s.truth[i], 100*cov, res[i].boxes)
				}
			}
		})
	}

	d := newDetector(t, Config{})
	boxes := make([]image.Rectangle, 3, 8)
	d.Detect(s.frames[0], nil)
	empty := gocv.NewMat()
	defer empty.Close()
	if got := d.Detect(empty, boxes); len(got) != 0 || d.Calibrating() {
		t.Errorf("empty frame: boxes %v, calibrating %v", got, d.Calibrating())
	}
	float := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV32FC3)
	defer float.Close()
	if got := d.Detect(float, boxes); len(got) != 0 || d.Calibrating() {
		t.Errorf("CV_32FC3 frame: boxes %v, calibrating %v", got, d.Calibrating())
	}
	// The unsupported frame did not disturb the background: motion
	// against frame 0 is still found.
	if got := d.Detect(s.frames[5], boxes); len(got) == 0 {
		t.Error("no motion after an unsupported frame")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := d.Detect(s.frames[6], boxes); len(got) != 0 {
		t.Errorf("Detect after Close: %v", got)
	}
	var nilDet *Detector
	if err := nilDet.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

// TestMinArea: an object smaller than min_area (in frame pixels) is not
// reported; the default (0.05 % of the frame) reports it.
func TestMinArea(t *testing.T) {
	s := buildScene(t, 10, 640, 360, "horses.jpg", 24, func(i int) (image.Point, bool) {
		return image.Pt(100+20*i, 150), true
	}, nil)
	for i, r := range run(newDetector(t, Config{MinArea: 5000}), s.frames) {
		if len(r.boxes) != 0 {
			t.Errorf("min_area 5000: frame %d: a 24x24 object gives boxes %v", i, r.boxes)
		}
	}
	res := run(newDetector(t, Config{}), s.frames)
	for i := 1; i < len(res); i++ {
		if !anyOverlaps(res[i].boxes, s.truth[i]) {
			t.Errorf("default min_area: frame %d: 24x24 object at %v not reported: %v", i, s.truth[i], res[i].boxes)
		}
	}
}

// steadyFrames returns three frames of size w×h: the empty scene, to feed
// first (it becomes the background), then two with the object at two
// places, to feed alternately: every one of those has motion (the
// background never learns pixels that change every frame), the frame size
// never changes.
func steadyFrames(t testing.TB, w, h int) (empty gocv.Mat, moving [2]gocv.Mat) {
	t.Helper()
	obj := h / 6
	s := buildScene(t, 3, w, h, "horses.jpg", obj, func(i int) (image.Point, bool) {
		return image.Pt(w/8+i*obj/2, h/3), i > 0
	}, nil)
	return s.frames[0], [2]gocv.Mat{s.frames[1], s.frames[2]}
}

// steadyConfig has a mask, so the masked path is measured too.
var steadyConfig = Config{Masks: [][]Point{{{0, 0}, {300, 0}, {300, 40}, {0, 40}}}}

// TestDetectAllocs: in steady state Detect makes no Go heap allocations
// (the contour loop included). With -tags matprofile, creating a Mat
// allocates (its stack is recorded), so this also proves no Mat is made
// per frame; TestMatsPerCycle checks they are all freed.
func TestDetectAllocs(t *testing.T) {
	empty, frames := steadyFrames(t, 1280, 720)
	d := newDetector(t, steadyConfig)
	boxes := make([]image.Rectangle, 0, 64)
	d.Detect(empty, boxes)
	for i := range 4 {
		boxes = d.Detect(frames[i%2], boxes)
	}
	if len(boxes) == 0 {
		t.Fatal("no motion in the steady frames: the contour loop is not measured")
	}
	i := 0
	withMotion := 0
	if n := testing.AllocsPerRun(100, func() {
		i++
		boxes = d.Detect(frames[i%2], boxes)
		if len(boxes) > 0 {
			withMotion++
		}
	}); n != 0 {
		t.Fatalf("Detect makes %v allocations per frame in steady state, want 0", n)
	}
	if withMotion != 101 { // AllocsPerRun adds a warm-up run
		t.Fatalf("%d of 101 measured frames had motion, want all", withMotion)
	}
}

// BenchmarkDetect1080p: one 1920x1080 BGR frame per op, an object moving
// between two places (so motion is found every frame), with a mask.
func BenchmarkDetect1080p(b *testing.B) {
	empty, frames := steadyFrames(b, 1920, 1080)
	d := newDetector(b, steadyConfig)
	boxes := make([]image.Rectangle, 0, 64)
	d.Detect(empty, boxes)
	b.ReportAllocs()
	withMotion, n := 0, 0
	for b.Loop() {
		boxes = d.Detect(frames[n%2], boxes)
		n++
		if len(boxes) > 0 {
			withMotion++
		}
	}
	if withMotion != n {
		b.Fatalf("%d of %d frames had motion, want all", withMotion, n)
	}
}
