package eval

import (
	"math"
	"testing"
)

// The expected values below are worked out by hand from pycocotools'
// rules. Reminders used throughout:
//
//   - precision is sampled at the 101 recall points r = 0, 0.01, …, 1: at
//     each r it is the (right-to-left maximum) precision of the first
//     detection in score order whose cumulative recall is ≥ r, or 0 when
//     recall never reaches r;
//   - AP is the mean of those 101 samples (and of the 10 IoU thresholds,
//     and of the classes with ground truth);
//   - AR is the final recall, averaged the same way.

func b(x1, y1, x2, y2 float64) [4]float64 { return [4]float64{x1, y1, x2, y2} }

func obj(class int, box [4]float64) Object { return Object{ClassID: class, Box: box} }

func det(class int, score float64, box [4]float64) Detection {
	return Detection{ClassID: class, Score: score, Box: box}
}

// evaluate builds an in-memory dataset (image i has ID i+1) and scores dets
// (by image ID).
func evaluate(t *testing.T, names []string, objects [][]Object, dets map[int][]Detection) *Result {
	t.Helper()
	ds := &Dataset{Names: names}
	for i, o := range objects {
		ds.Images = append(ds.Images, Image{ID: i + 1, Width: 640, Height: 480, Objects: o})
	}
	e := NewEvaluator(ds)
	for id, d := range dets {
		if err := e.Add(id, d); err != nil {
			t.Fatal(err)
		}
	}
	return e.Evaluate()
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if !(math.Abs(got-want) <= 1e-12) { // a NaN fails too
		t.Errorf("%s = %.15g, want %.15g", what, got, want)
	}
}

func checkSummary(t *testing.T, got Summary, want [12]float64) {
	t.Helper()
	g := got.Stats()
	for i := range want {
		near(t, SummaryLabels[i], g[i], want[i])
	}
}

var (
	small  = b(10, 10, 30, 30)     // 20×20 = 400 px² < 32²
	medium = b(100, 100, 150, 150) // 50×50 = 2500 px²
	large  = b(300, 200, 500, 400) // 200×200 = 40000 px² > 96²
	far    = b(600, 440, 620, 460) // overlaps nothing above
)

func TestThresholdsMatchNumpy(t *testing.T) {
	// numpy.linspace(.5, .95, 10): 0.9 comes out as 0.8999999999999999.
	want := []float64{0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95}
	for i, v := range IoUThresholds() {
		if v != want[i] {
			t.Errorf("IoU threshold %d = %.17g, want %.17g", i, v, want[i])
		}
	}
	r := RecallThresholds()
	if len(r) != 101 || r[0] != 0 || r[50] != 0.5 || r[100] != 1 || r[7] != 7*0.01 {
		t.Errorf("recall thresholds %v", r)
	}
}

func TestIoUHasNoPlusOne(t *testing.T) {
	// 10×10 boxes offset by 5 in x: intersection 5×10 = 50, union 150.
	// With the old "+1 pixel" convention it would be 66/154.
	near(t, "iou", iou(toXYWH(b(0, 0, 10, 10)), toXYWH(b(5, 0, 15, 10))), 50.0/150)
	near(t, "touching", iou(toXYWH(b(0, 0, 10, 10)), toXYWH(b(10, 0, 20, 10))), 0)
}

func TestPerfectDetections(t *testing.T) {
	// One object of each size and class per image, each found exactly:
	// every detection is a TP at every IoU, precision 1 up to recall 1, so
	// every defined number is 1. Class 2 has no ground truth and no
	// detections and is left out.
	objects := [][]Object{
		{obj(0, small), obj(1, large)},
		{obj(0, medium), obj(1, small)},
		{obj(1, medium)},
	}
	dets := map[int][]Detection{
		1: {det(0, 0.9, small), det(1, 0.8, large)},
		2: {det(0, 0.7, medium), det(1, 0.6, small)},
		3: {det(1, 0.5, medium)},
	}
	r := evaluate(t, []string{"a", "b", "c"}, objects, dets)
	checkSummary(t, r.Summary, [12]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	for k, c := range r.Classes[:2] {
		near(t, c.Name+" AP", c.AP, 1)
		near(t, c.Name+" AP50", c.AP50, 1)
		if c.GT != []int{2, 3}[k] || len(c.PR50) != 101 || c.PR50[100] != 1 {
			t.Errorf("class %s: gt %d, PR50 %v", c.Name, c.GT, c.PR50)
		}
	}
	if c := r.Classes[2]; c.AP != -1 || c.AP50 != -1 || c.PR50 != nil {
		t.Errorf("class without ground truth: %+v, want -1 and no curve", c)
	}
	if r.Objects != 5 || r.Detections != 5 || r.Images != 3 {
		t.Errorf("counts: %d objects, %d detections, %d images", r.Objects, r.Detections, r.Images)
	}
}

func TestFalsePositiveScoredBelowAllTPs(t *testing.T) {
	// Two objects found (0.9, 0.8), then an FP at 0.3. In score order
	// recall is 1/2, 1, 1 and precision 1, 1, 2/3. For every recall
	// point r ≤ 1 the first detection reaching r is a TP with precision 1
	// (the FP only comes after recall 1 is reached), so all 101 samples
	// are 1: AP = 1. AR is 1 too.
	objects := [][]Object{{obj(0, medium), obj(0, large)}}
	dets := map[int][]Detection{1: {det(0, 0.9, medium), det(0, 0.8, large), det(0, 0.3, far)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, 1)
	near(t, "AP50", r.Summary.AP50, 1)
	near(t, "AR100", r.Summary.AR100, 1)
}

func TestFalsePositiveScoredAboveAllTPs(t *testing.T) {
	// FP 0.95, then TPs 0.9 and 0.8. Cumulative TP 0,1,2 and FP 1,1,1:
	// recall 0, 1/2, 1; precision 0, 1/2, 2/3. Right-to-left maximum:
	// 2/3, 2/3, 2/3. Every sample is 2/3: AP = 2/3 at every IoU.
	objects := [][]Object{{obj(0, medium), obj(0, large)}}
	dets := map[int][]Detection{1: {det(0, 0.95, far), det(0, 0.9, medium), det(0, 0.8, large)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, 2.0/3)
	near(t, "AP50", r.Summary.AP50, 2.0/3)
	near(t, "AR100", r.Summary.AR100, 1)
	// AR1: at most one detection per image and class, the FP: recall 0.
	near(t, "AR1", r.Summary.AR1, 0)
}

func TestFalsePositiveBetweenTPs(t *testing.T) {
	// TP 0.9, FP 0.8, TP 0.7: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3;
	// monotone 1, 2/3, 2/3. Recall points 0..0.50 (51 of them) first
	// reach recall at detection 1 (precision 1); 0.51..1 (50) at detection
	// 3 (2/3). AP = (51·1 + 50·2/3)/101 = 253/303.
	objects := [][]Object{{obj(0, medium), obj(0, large)}}
	dets := map[int][]Detection{1: {det(0, 0.9, medium), det(0, 0.8, far), det(0, 0.7, large)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, 253.0/303)
	near(t, "AP50", r.Classes[0].AP50, 253.0/303)
}

func TestMissedObject(t *testing.T) {
	// Two objects, one found. Recall reaches 1/2 with precision 1: the 51
	// points r = 0..0.50 are 1, the 50 above are 0. AP = 51/101, AR = 1/2.
	objects := [][]Object{{obj(0, medium)}, {obj(0, large)}}
	dets := map[int][]Detection{2: {det(0, 0.9, large)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, 51.0/101)
	near(t, "AP75", r.Summary.AP75, 51.0/101)
	near(t, "AR100", r.Summary.AR100, 0.5)
	// Only the large object is in the large range, and it is found; the
	// medium range holds only the missed one.
	near(t, "APLarge", r.Summary.APLarge, 1)
	near(t, "APMedium", r.Summary.APMedium, 0)
	near(t, "APSmall", r.Summary.APSmall, -1)
}

func TestDuplicateDetectionIsFalsePositive(t *testing.T) {
	// Image 1: one object and two identical boxes on it (0.9, 0.8);
	// image 2: one object found at 0.7. The object is taken by the 0.9
	// box, so the 0.8 duplicate is an FP: TP, FP, TP — the same sequence
	// as TestFalsePositiveBetweenTPs, AP = 253/303. (Were the duplicate
	// matched again, recall would exceed 1.)
	objects := [][]Object{{obj(0, medium)}, {obj(0, large)}}
	dets := map[int][]Detection{
		1: {det(0, 0.9, medium), det(0, 0.8, medium)},
		2: {det(0, 0.7, large)},
	}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, 253.0/303)
	near(t, "AR100", r.Summary.AR100, 1)
}

func TestClassMixUp(t *testing.T) {
	// Class 0's object is detected with the right box but as class 1;
	// class 2's object is found correctly. Class 0: ground truth, no
	// detections: AP 0. Class 1: a detection but no ground truth: -1,
	// left out of the mean (not a zero). Class 2: AP 1. mAP = (0+1)/2.
	objects := [][]Object{{obj(0, medium), obj(2, large)}}
	dets := map[int][]Detection{1: {det(1, 0.9, medium), det(2, 0.8, large)}}
	r := evaluate(t, []string{"a", "b", "c"}, objects, dets)
	near(t, "AP", r.Summary.AP, 0.5)
	near(t, "AP50", r.Summary.AP50, 0.5)
	near(t, "AR100", r.Summary.AR100, 0.5)
	near(t, "class a AP", r.Classes[0].AP, 0)
	near(t, "class b AP", r.Classes[1].AP, -1)
	near(t, "class c AP", r.Classes[2].AP, 1)
	if r.Classes[1].Detections != 1 || r.Classes[1].GT != 0 {
		t.Errorf("class b: %+v", r.Classes[1])
	}
}

func TestIoUBetweenThresholds(t *testing.T) {
	// Object 0..100 × 0..100, detection 0..72 × 0..100: IoU 7200/10000 =
	// 0.72. It is a TP at 0.50 0.55 0.60 0.65 0.70 (AP 1 each) and an FP
	// with the object missed at 0.75 … 0.95 (AP 0 each): AP = 5/10,
	// AP50 = 1, AP75 = 0, AR = 5/10.
	gt := b(0, 0, 100, 100)
	r := evaluate(t, []string{"a"}, [][]Object{{obj(0, gt)}}, map[int][]Detection{1: {det(0, 0.9, b(0, 0, 72, 100))}})
	near(t, "AP", r.Summary.AP, 0.5)
	near(t, "AP50", r.Summary.AP50, 1)
	near(t, "AP75", r.Summary.AP75, 0)
	near(t, "AR100", r.Summary.AR100, 0.5)

	// IoU exactly 0.75 matches at 0.75 too (IoU ≥ threshold): 6 of 10.
	r = evaluate(t, []string{"a"}, [][]Object{{obj(0, gt)}}, map[int][]Detection{1: {det(0, 0.9, b(0, 0, 75, 100))}})
	near(t, "AP at IoU 0.75", r.Summary.AP, 0.6)
	near(t, "AP75 at IoU 0.75", r.Summary.AP75, 1)
}

func TestAreaRanges(t *testing.T) {
	// One class: small object missed, medium and large found.
	//  all:    recall 1/3, 2/3 at precision 1: points 0..0.66 (67) are 1,
	//          AP = 67/101; AR = 2/3.
	//  small:  the medium and large objects are ignored, and so are the
	//          detections matched to them; nothing is left but the missed
	//          small object: AP 0, AR 0.
	//  medium: the one medium object is found; the large box matches an
	//          ignored object and is ignored: AP 1, AR 1. Large likewise.
	objects := [][]Object{{obj(0, small), obj(0, medium), obj(0, large)}}
	dets := map[int][]Detection{1: {det(0, 0.9, medium), det(0, 0.8, large)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	checkSummary(t, r.Summary, [12]float64{
		67.0 / 101, 67.0 / 101, 67.0 / 101, 0, 1, 1,
		1.0 / 3, 2.0 / 3, 2.0 / 3, 0, 1, 1,
	})
}

func TestAreaBoundaryAndIgnoredFalsePositive(t *testing.T) {
	// A 32×32 object (area exactly 32² = 1024) is in both the small and
	// the medium range (bounds are inclusive). It is found at 0.8; a large
	// FP that overlaps nothing scores 0.9.
	//  all:    FP, TP: precision 0, 1/2 -> monotone 1/2, 1/2: AP 1/2.
	//  small, medium: the FP is unmatched and its area (200² = 40000) is
	//          outside the range, so it is ignored: AP 1.
	//  large:  no object in range: -1.
	edge := b(200, 200, 232, 232)
	objects := [][]Object{{obj(0, edge)}}
	dets := map[int][]Detection{1: {det(0, 0.9, b(400, 0, 600, 200)), det(0, 0.8, edge)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	checkSummary(t, r.Summary, [12]float64{
		0.5, 0.5, 0.5, 1, 1, -1,
		0, 1, 1, 1, 1, -1, // AR1: the single kept box is the FP
	})
}

func TestImageWithoutGroundTruth(t *testing.T) {
	// Image 1's object is found at 0.8. Image 2 has no objects but a
	// detection at 0.9: an FP ranked first. FP, TP -> AP 1/2 (as above).
	// Image 3 has neither and changes nothing.
	objects := [][]Object{{obj(0, medium)}, nil, nil}
	dets := map[int][]Detection{1: {det(0, 0.8, medium)}, 2: {det(0, 0.9, medium)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, 0.5)
	near(t, "AR100", r.Summary.AR100, 1)
}

func TestMaxDets(t *testing.T) {
	// Three objects of one class in one image, all found (0.9, 0.8, 0.7).
	// AR1 keeps only the best box per image and class: recall 1/3. AR10
	// and AR100 keep all three: 1.
	objects := [][]Object{{obj(0, small), obj(0, medium), obj(0, large)}}
	dets := map[int][]Detection{1: {det(0, 0.9, small), det(0, 0.8, medium), det(0, 0.7, large)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AR1", r.Summary.AR1, 1.0/3)
	near(t, "AR10", r.Summary.AR10, 1)
	near(t, "AP", r.Summary.AP, 1)

	// Class 0: 100 FPs scored above the one correct box, which is 101st
	// and cut by maxDets 100: AP 0, AR 0. Class 1: its one box is kept,
	// because the limit is per image *and class* (pycocotools): AP 1.
	objects = [][]Object{{obj(0, large), obj(1, medium)}}
	var ds []Detection
	for i := range 100 {
		ds = append(ds, det(0, 0.5+float64(i)/1000, b(0, 0, 10, 10)))
	}
	ds = append(ds, det(0, 0.1, large), det(1, 0.05, medium))
	r = evaluate(t, []string{"a", "b"}, objects, map[int][]Detection{1: ds})
	near(t, "class a AP", r.Classes[0].AP, 0)
	near(t, "class a AR", r.Classes[0].AR100, 0)
	near(t, "class b AP", r.Classes[1].AP, 1)
	near(t, "mAP", r.Summary.AP, 0.5)
}

func TestGreedyMatchingInScoreOrder(t *testing.T) {
	// Two overlapping objects A (0..100) and B (50..150) on the x axis,
	// both 100 tall. Detection D1 (0.9) is 30..130: IoU with A is
	// 70·100/(100·100+100·100−70·100) = 7000/13000 ≈ 0.538, with B
	// 8000/12000 ≈ 0.667: it takes B, the best. D2 (0.8) is 0..100 = A
	// exactly: IoU 1 with A. Both are TPs at 0.50..0.65 (4 thresholds);
	// at 0.70 and above D1 matches nothing (FP) and D2 still takes A:
	// TP after an FP -> recall 0, 1/2; precision 0, 1/2 -> AP = 51·(1/2)/101.
	// AP = (4·1 + 6·(51/202))/10.
	A, B := b(0, 0, 100, 100), b(50, 0, 150, 100)
	objects := [][]Object{{obj(0, A), obj(0, B)}}
	dets := map[int][]Detection{1: {det(0, 0.9, b(30, 0, 130, 100)), det(0, 0.8, A)}}
	r := evaluate(t, []string{"a"}, objects, dets)
	near(t, "AP", r.Summary.AP, (4+6*51.0/202)/10)
	near(t, "AP50", r.Summary.AP50, 1)
}

func TestEvaluatorRejectsUnknownIDs(t *testing.T) {
	ds := &Dataset{Names: []string{"a"}, Images: []Image{{ID: 7, Width: 10, Height: 10}}}
	e := NewEvaluator(ds)
	if err := e.Add(8, nil); err == nil {
		t.Error("Add accepted an image id not in the dataset")
	}
	if err := e.Add(7, []Detection{det(1, 0.5, small)}); err == nil {
		t.Error("Add accepted class 1 with one class")
	}
	if err := e.Add(7, []Detection{det(0, 0.5, small)}); err != nil {
		t.Fatal(err)
	}
	if got := e.Detections(); len(got) != 1 || len(got[7]) != 1 {
		t.Errorf("Detections() = %v", got)
	}
}

func TestMatchPrefersObjectsInRange(t *testing.T) {
	// S = 0..30² (900 px², small) and M = 0..40² (1600 px², medium) nest;
	// one detection D = 0..35² (1225 px²) overlaps S with IoU 900/1225 ≈
	// 0.735 and M with IoU 1225/1600 ≈ 0.766.
	//  all:    D takes M, the better IoU, at 0.50..0.75 (6 thresholds) and
	//          S is missed: AP 51/101 there, 0 at 0.80..0.95.
	//  small:  M is ignored. D holds S (in range) and stops at the ignored
	//          objects, so it is S's TP at 0.50..0.70 (5 thresholds):
	//          AP 1 there. At 0.75 only M qualifies: D is ignored with it and
	//          S is missed; above, D is unmatched and, at 1225 px², outside
	//          the range, so ignored: AP 0. APSmall = 5/10.
	//  medium: S is ignored; D takes M at 0.50..0.75 (AP 1), is an FP
	//          above (AP 0): 6/10.
	//  large:  nothing in range: -1.
	S, M, D := b(0, 0, 30, 30), b(0, 0, 40, 40), b(0, 0, 35, 35)
	r := evaluate(t, []string{"a"}, [][]Object{{obj(0, S), obj(0, M)}}, map[int][]Detection{1: {det(0, 0.9, D)}})
	checkSummary(t, r.Summary, [12]float64{
		0.6 * 51 / 101, 51.0 / 101, 51.0 / 101, 0.5, 0.6, -1,
		0.6 * 0.5, 0.6 * 0.5, 0.6 * 0.5, 0.5, 0.6, -1,
	})
}
