package eval

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/edgedet/edgedet/internal/labels"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// The COCO 80 -> 91 category id table is 1..90 without the ten ids COCO
// never annotated (from the instances_val2017.json category list: 12
// street sign, 26 hat, 29 shoe, 30 eye glasses, 45 plate, 66 mirror, 68
// window, 69 desk, 71 door, 83 blender).
func TestCategoryIDsAreCOCOsFullTable(t *testing.T) {
	unannotated := []int{12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
	var want []int
	for id := 1; id <= 90; id++ {
		if !slices.Contains(unannotated, id) {
			want = append(want, id)
		}
	}
	if got := CategoryIDs(labels.COCO80[:]); !slices.Equal(got, want) {
		t.Errorf("CategoryIDs(COCO80) =\n%v\nwant\n%v", got, want)
	}
}

// The "segmentation" of a saved annotation is its box as the polygon
// x1,y1 x2,y1 x2,y2 x1,y2.
func TestSaveCOCOJSONSegmentationIsTheBox(t *testing.T) {
	dir := t.TempDir()
	ds := &Dataset{Dir: dir, Names: []string{"cat"}, Images: []Image{{
		ID: 1, Path: filepath.Join(dir, "a.jpg"), Width: 100, Height: 80,
		Objects: []Object{{ClassID: 0, Box: [4]float64{10, 20, 30, 50}}},
	}}}
	out := filepath.Join(dir, "coco")
	if err := SaveCOCOJSON(out, ds, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "instances.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inst struct {
		Annotations []struct {
			BBox         [4]float64   `json:"bbox"`
			Segmentation [][8]float64 `json:"segmentation"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &inst); err != nil {
		t.Fatalf("instances.json: %v", err)
	}
	if len(inst.Annotations) != 1 {
		t.Fatalf("%d annotations, want 1", len(inst.Annotations))
	}
	a := inst.Annotations[0]
	if a.BBox != [4]float64{10, 20, 20, 30} {
		t.Errorf("bbox %v, want [10 20 20 30]", a.BBox)
	}
	want := [8]float64{10, 20, 30, 20, 30, 50, 10, 50}
	if len(a.Segmentation) != 1 || a.Segmentation[0] != want {
		t.Errorf("segmentation %v, want [%v]", a.Segmentation, want)
	}
}

// A numeric file stem of 0 is a valid image id like any other.
func TestLoadYOLODatasetStemZeroIsAnID(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "0.png"), 4, 4)
	writePNG(t, filepath.Join(dir, "7.png"), 4, 4)
	ds, err := LoadYOLODataset(dir, []string{"cat"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, img := range ds.Images {
		ids = append(ids, img.ID)
	}
	if !slices.Equal(ids, []int{0, 7}) {
		t.Errorf("image ids %v, want the stems [0 7]", ids)
	}
}

// A point that cannot be plotted (NaN mAP) is an error naming the model,
// not a crash.
func TestPlotTradeoffRejectsNaN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.png")
	err := PlotTradeoff(path, "t", TradeoffPoint{Name: "good", LatencyMs: 5, MAP: 0.3},
		TradeoffPoint{Name: "broken", LatencyMs: 7, MAP: math.NaN()})
	if err == nil || !strings.Contains(err.Error(), `"broken"`) {
		t.Errorf("PlotTradeoff(NaN mAP) = %v, want an error naming \"broken\"", err)
	}
}

// Agreement's argument checks: a failed call returns 0 with its error;
// one class is enough; a reference detection scoring exactly minScore is
// ground truth; a reference class id outside the classes is an error even
// when other reference objects are fine.
func TestAgreementArguments(t *testing.T) {
	one := [][]Detection{{{ClassID: 0, Score: 0.9, Box: [4]float64{10, 10, 50, 50}}}}
	if a, err := Agreement(one, one, 1, 0.5); err != nil || math.Abs(a-1) > 1e-9 {
		t.Errorf("one class: %v, %v; want 1, nil", a, err)
	}
	if a, err := Agreement(one, [][]Detection{{}, {}}, 1, 0.5); err == nil || a != 0 || !strings.Contains(err.Error(), "1 reference images, 2 compared") {
		t.Errorf("image counts differ: %v, %v; want 0 and an error naming both counts", a, err)
	}
	for _, k := range []int{0, -1} {
		a, err := Agreement(one, one, k, 0.5)
		if err == nil || a != 0 || !strings.Contains(err.Error(), fmt.Sprintf("agreement: %d classes", k)) {
			t.Errorf("%d classes: %v, %v; want 0 and an error naming the class count", k, a, err)
		}
	}
	// Score exactly minScore: ground truth, so a got without it misses it:
	// recall 0.5 at precision 1, which covers 51 of the 101 recall points.
	ref := [][]Detection{{
		{ClassID: 0, Score: 0.9, Box: [4]float64{10, 10, 50, 50}},
		{ClassID: 0, Score: 0.5, Box: [4]float64{100, 100, 150, 150}},
	}}
	if a, err := Agreement(ref, one, 1, 0.5); err != nil || math.Abs(a-51.0/101) > 1e-9 {
		t.Errorf("reference at exactly minScore missed: %v, %v; want 51/101", a, err)
	}
	bad := [][]Detection{{
		{ClassID: 0, Score: 0.9, Box: [4]float64{10, 10, 50, 50}},
		{ClassID: 3, Score: 0.9, Box: [4]float64{100, 100, 150, 150}},
	}}
	a, err := Agreement(bad, one, 3, 0.5)
	if err == nil || a != 0 || !strings.Contains(err.Error(), "reference image 0: class id 3 is outside the 3 classes") {
		t.Errorf("reference class id 3 of 3: %v, %v; want 0 and an error naming it", a, err)
	}
	a, err = Agreement(one, [][]Detection{{{ClassID: 5, Score: 0.9}}}, 3, 0.5)
	if err == nil || a != 0 || !strings.Contains(err.Error(), "class id 5") {
		t.Errorf("compared class id 5 of 3: %v, %v; want 0 and an error naming it", a, err)
	}
	a, err = Agreement([][]Detection{{{ClassID: 0, Score: 0.4}}}, one, 3, 0.5)
	if !errors.Is(err, ErrNoReference) || a != 0 {
		t.Errorf("no reference at minScore: %v, %v; want 0, ErrNoReference", a, err)
	}
	neg := [][]Detection{{{ClassID: -1, Score: 0.9, Box: [4]float64{10, 10, 50, 50}}}}
	if _, err := Agreement(neg, [][]Detection{{}}, 3, 0.5); err == nil || !strings.Contains(err.Error(), "class id -1") {
		t.Errorf("reference class id -1: %v, want an error naming it", err)
	}
}

// Area ranges are pycocotools' areaRng: all [0, 1e5²], small [0, 32²],
// medium [32², 96²], large [96², 1e5²], both ends inclusive. One object
// found by a perfect detection has AP 1 in every range its area is in, and
// -1 (no ground truth in range) in the others.
func TestAreaRangeBounds(t *testing.T) {
	cases := []struct {
		name                string
		box                 [4]float64
		all, sml, med, larg bool
	}{
		{"area 0.5", b(10, 10, 11, 10.5), true, true, false, false},
		{"area 1", b(10, 10, 11, 11), true, true, false, false},
		{"area 1000", b(10, 10, 50, 35), true, true, false, false},
		{"area 1024", b(10, 10, 42, 42), true, true, true, false},
		{"area 1040", b(10, 10, 50, 36), true, false, true, false},
		{"area 9200", b(10, 10, 110, 102), true, false, true, false},
		{"area 9216", b(10, 10, 106, 106), true, false, true, true},
		{"area 9250", b(10, 10, 110, 102.5), true, false, false, true},
		{"area 9400", b(10, 10, 110, 104), true, false, false, true},
		{"area 2e10 (beyond 1e5²)", b(0, 0, 200000, 100000), false, false, false, false},
	}
	for _, c := range cases {
		r := evaluate(t, []string{"a"}, [][]Object{{obj(0, c.box)}}, map[int][]Detection{1: {det(0, 0.9, c.box)}})
		s := r.Summary
		for _, x := range []struct {
			what string
			got  float64
			in   bool
		}{{"AP", s.AP, c.all}, {"APSmall", s.APSmall, c.sml}, {"APMedium", s.APMedium, c.med}, {"APLarge", s.APLarge, c.larg},
			{"AR100", s.AR100, c.all}, {"ARSmall", s.ARSmall, c.sml}, {"ARMedium", s.ARMedium, c.med}, {"ARLarge", s.ARLarge, c.larg}} {
			want := -1.0
			if x.in {
				want = 1
			}
			near(t, c.name+" "+x.what, x.got, want)
		}
	}
}

// Detections has an entry for each image that has detections, and none
// for the others.
func TestDetectionsOnlyImagesWithDetections(t *testing.T) {
	ds := &Dataset{Names: []string{"a"}, Images: []Image{{ID: 4}, {ID: 9}, {ID: 2}}}
	e := NewEvaluator(ds)
	d := det(0, 0.9, medium)
	if err := e.Add(9, []Detection{d}); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(4, nil); err != nil {
		t.Fatal(err)
	}
	got := e.Detections()
	if len(got) != 1 || len(got[9]) != 1 || got[9][0] != d {
		t.Errorf("Detections() = %v, want only image 9 with %v", got, d)
	}
}

// There is one label per number of Summary.Stats.
func TestSummaryLabelsMatchStats(t *testing.T) {
	if len(SummaryLabels) != len(Summary{}.Stats()) {
		t.Fatalf("%d labels for %d stats", len(SummaryLabels), len(Summary{}.Stats()))
	}
	if SummaryLabels[11] != "AR @[ IoU=0.50:0.95 | area= large | maxDets=100 ]" {
		t.Errorf("last label %q", SummaryLabels[11])
	}
}

// MeanPR50 averages the classes with ground truth point by point: a
// perfect class (precision 1 everywhere) and a missed one (0) give 0.5,
// and a class without ground truth is left out.
func TestMeanPR50AveragesClasses(t *testing.T) {
	objects := [][]Object{{obj(0, medium), obj(1, large)}}
	dets := map[int][]Detection{1: {det(0, 0.9, medium), det(2, 0.8, far)}}
	r := evaluate(t, []string{"a", "b", "c"}, objects, dets)
	mean := r.MeanPR50()
	if len(mean) != 101 {
		t.Fatalf("MeanPR50 has %d points, want 101", len(mean))
	}
	for i, v := range mean {
		near(t, fmt.Sprintf("MeanPR50[%d]", i), v, 0.5) // precision is tp/(tp+fp+eps)
	}
	near(t, "AP50", r.Summary.AP50, 0.5)
	if r.Classes[2].PR50 != nil {
		t.Errorf("class without ground truth has a PR curve %v", r.Classes[2].PR50)
	}
	none := evaluate(t, []string{"a"}, [][]Object{nil}, nil)
	if got := none.MeanPR50(); got != nil {
		t.Errorf("MeanPR50 without ground truth = %v, want nil", got)
	}
}

// Boxes of zero width or height overlap nothing, not even an identical
// degenerate box (pycocotools' bbIou is 0 unless both overlaps are > 0),
// so such ground truth cannot be found.
func TestDegenerateBoxesNeverMatch(t *testing.T) {
	for _, box := range [][4]float64{b(10, 10, 10, 50), b(10, 10, 50, 10), b(10, 10, 10, 10)} {
		r := evaluate(t, []string{"a"}, [][]Object{{obj(0, box)}}, map[int][]Detection{1: {det(0, 0.9, box)}})
		near(t, fmt.Sprintf("%v AP", box), r.Summary.AP, 0)
		near(t, fmt.Sprintf("%v AR100", box), r.Summary.AR100, 0)
	}
}

// TestMatchPrefersObjectsInRange with the objects listed the other way
// round: objects outside the area range are moved behind those in it
// before matching, so the order of an image's objects does not matter.
func TestMatchPrefersObjectsInRangeListedLast(t *testing.T) {
	S, M, D := b(0, 0, 30, 30), b(0, 0, 40, 40), b(0, 0, 35, 35)
	r := evaluate(t, []string{"a"}, [][]Object{{obj(0, M), obj(0, S)}}, map[int][]Detection{1: {det(0, 0.9, D)}})
	checkSummary(t, r.Summary, [12]float64{
		0.6 * 51 / 101, 51.0 / 101, 51.0 / 101, 0.5, 0.6, -1,
		0.6 * 0.5, 0.6 * 0.5, 0.6 * 0.5, 0.5, 0.6, -1,
	})
}

// A class's AP50 and PR50 are at IoU 0.50 and its AP75 at 0.75 exactly:
// a detection with IoU 0.52 counts at 0.50 only, one with IoU 0.77 at
// 0.50..0.75 (six thresholds) but not at 0.80. A class without ground
// truth has -1 everywhere.
func TestClassResultThresholds(t *testing.T) {
	gt := b(0, 0, 100, 100)
	cases := []struct {
		det                   [4]float64
		ap, ap50, ap75, ar100 float64
	}{
		{b(0, 0, 100, 52), 0.1, 1, 0, 0.1},
		{b(0, 0, 100, 77), 0.6, 1, 1, 0.6},
	}
	for _, c := range cases {
		r := evaluate(t, []string{"a", "b"}, [][]Object{{obj(0, gt)}}, map[int][]Detection{1: {det(0, 0.9, c.det)}})
		k := r.Classes[0]
		near(t, fmt.Sprintf("%v AP", c.det), k.AP, c.ap)
		near(t, fmt.Sprintf("%v AP50", c.det), k.AP50, c.ap50)
		near(t, fmt.Sprintf("%v AP75", c.det), k.AP75, c.ap75)
		near(t, fmt.Sprintf("%v AR100", c.det), k.AR100, c.ar100)
		if len(k.PR50) != 101 {
			t.Fatalf("%v: PR50 has %d points", c.det, len(k.PR50))
		}
		for i, p := range k.PR50 {
			near(t, fmt.Sprintf("%v PR50[%d]", c.det, i), p, 1)
		}
		none := r.Classes[1]
		for _, v := range []float64{none.AP, none.AP50, none.AP75, none.AR100} {
			if v != -1 {
				t.Errorf("class without ground truth: %+v, want -1s", none)
				break
			}
		}
		if none.PR50 != nil {
			t.Errorf("class without ground truth has PR50 %v", none.PR50)
		}
	}
}

// The precision-recall axes are labelled at 0, 0.1, …, 1 within the
// axis range, ends included.
func TestTenthsTicks(t *testing.T) {
	label := func(lo, hi float64) string {
		var s []string
		for _, tk := range (tenths{}).Ticks(lo, hi) {
			if tk.Label != fmt.Sprintf("%.1f", tk.Value) {
				t.Errorf("tick %g labelled %q", tk.Value, tk.Label)
			}
			s = append(s, tk.Label)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 1.02, "0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0"},
		{0, 5, "0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0"},
		{0.2, 0.5, "0.2 0.3 0.4 0.5"},
		{0.25, 0.45, "0.3 0.4"},
	} {
		if got := label(c.lo, c.hi); got != c.want {
			t.Errorf("Ticks(%g, %g) = %q, want %q", c.lo, c.hi, got, c.want)
		}
	}
}

// PlotPR rejects curves it cannot draw, naming them, and reports a PNG
// it cannot write.
func TestPlotPRErrors(t *testing.T) {
	r := evaluate(t, []string{"a"}, [][]Object{{obj(0, medium)}}, map[int][]Detection{1: {det(0, 0.9, medium)}})
	good := r.Curve("good")
	dir := t.TempDir()
	path := filepath.Join(dir, "pr.png")
	empty := Curve{Name: "empty", Recall: RecallThresholds()}
	short := Curve{Name: "short", Recall: RecallThresholds(), Precision: make([]float64, 100)}
	nan := Curve{Name: "nan", Recall: RecallThresholds(), Precision: make([]float64, 101)}
	nan.Precision[3] = math.NaN()
	for _, c := range []struct {
		curves []Curve
		want   string
	}{
		{nil, "plot precision-recall: no curves"},
		{[]Curve{good, empty}, `plot precision-recall: curve "empty" is empty (no class has ground truth)`},
		{[]Curve{short}, `plot precision-recall: curve "short" has 101 recall and 100 precision points`},
		{[]Curve{good, nan}, `plot precision-recall "nan": `},
	} {
		err := PlotPR(path, c.curves...)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("PlotPR(%d curves) = %v, want an error starting %q", len(c.curves), err, c.want)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a failed PlotPR wrote the file")
	}
	// /dev/full takes the open but fails every write.
	if err := PlotPR("/dev/full", good); err == nil || !strings.HasPrefix(err.Error(), "plot precision-recall /dev/full: ") {
		t.Errorf("PlotPR(/dev/full) = %v, want a write error naming it", err)
	}
	if err := PlotPR(path, good); err != nil {
		t.Errorf("PlotPR(good) = %v", err)
	}
}

// SaveCOCOJSON: file_name is the image path relative to the dataset
// directory (subdirectories included); detection class ids must index the
// classes; values JSON cannot hold and files that cannot be written are
// errors; the files are not executable.
func TestSaveCOCOJSONDetails(t *testing.T) {
	dir := t.TempDir()
	img := Image{ID: 3, Path: filepath.Join(dir, "images", "val", "x.jpg"), Width: 64, Height: 48,
		Objects: []Object{{ClassID: 1, Box: [4]float64{1, 2, 11, 22}}}}
	ds := &Dataset{Dir: dir, Names: []string{"cat", "dog"}, Images: []Image{img}}
	out := filepath.Join(dir, "coco")
	if err := SaveCOCOJSON(out, ds, map[int][]Detection{3: {det(1, 0.5, b(1, 2, 11, 22))}}); err != nil {
		t.Fatal(err)
	}
	var inst struct {
		Images []struct {
			FileName string `json:"file_name"`
		} `json:"images"`
	}
	data, err := os.ReadFile(filepath.Join(out, "instances.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &inst); err != nil {
		t.Fatal(err)
	}
	if len(inst.Images) != 1 || inst.Images[0].FileName != "images/val/x.jpg" {
		t.Errorf("images %+v, want file_name images/val/x.jpg", inst.Images)
	}
	for _, f := range []string{"instances.json", "predictions.json"} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o111 != 0 {
			t.Errorf("%s has mode %v, want no execute bits", f, st.Mode().Perm())
		}
	}

	for _, c := range []struct {
		d    Detection
		want string
	}{
		{det(2, 0.5, b(1, 2, 11, 22)), "save coco json: image 3: class id 2 is outside the dataset's 2 classes"},
		{det(-1, 0.5, b(1, 2, 11, 22)), "save coco json: image 3: class id -1 is outside the dataset's 2 classes"},
		{det(0, math.NaN(), b(1, 2, 11, 22)), "save coco json predictions.json: "},
	} {
		err := SaveCOCOJSON(filepath.Join(dir, "bad"), ds, map[int][]Detection{3: {c.d}})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("SaveCOCOJSON(%+v) = %v, want an error starting %q", c.d, err, c.want)
		}
	}
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "predictions.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SaveCOCOJSON(blocked, ds, nil); err == nil || !strings.Contains(err.Error(), "predictions.json") {
		t.Errorf("SaveCOCOJSON with a directory in the way of predictions.json = %v, want an error naming it", err)
	}
}

// Image ids are the file stems only when every stem is a distinct,
// non-negative decimal number; otherwise the 1-based file-name order.
func TestLoadYOLODatasetIDs(t *testing.T) {
	for _, c := range []struct {
		files []string
		want  []int
	}{
		{[]string{"5.png", "12.png"}, []int{12, 5}}, // file-name order: "12" < "5"
		{[]string{"5.png", "cat.png"}, []int{1, 2}},
		{[]string{"07.png", "7.jpg"}, []int{1, 2}}, // both are 7
		{[]string{"-3.png", "4.png"}, []int{1, 2}},
	} {
		dir := t.TempDir()
		for _, f := range c.files {
			writePNG(t, filepath.Join(dir, f), 4, 4)
		}
		ds, err := LoadYOLODataset(dir, []string{"cat"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, img := range ds.Images {
			ids = append(ids, img.ID)
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%q: ids %v, want %v", c.files, ids, c.want)
		}
	}
}

// In the Ultralytics layout only image files under images/ are images:
// other files, and directories whatever their name, are skipped; upper
// case extensions count.
func TestLoadUltralyticsSkipsNonImages(t *testing.T) {
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "images", "val", "a.png"), 100, 50)
	writePNG(t, filepath.Join(root, "images", "val", "B.PNG"), 10, 10)
	writeFile(t, filepath.Join(root, "images", "val", "notes.txt"), "not an image")
	if err := os.MkdirAll(filepath.Join(root, "images", "old.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadYOLODataset(root, []string{"cat"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range ds.Images {
		names = append(names, filepath.Base(img.Path))
	}
	if !slices.Equal(names, []string{"B.PNG", "a.png"}) {
		t.Errorf("images %q, want [B.PNG a.png]", names)
	}
	// The flat layout skips them too.
	flat := t.TempDir()
	writePNG(t, filepath.Join(flat, "a.png"), 100, 50)
	writeFile(t, filepath.Join(flat, "a.txt"), "")
	if err := os.MkdirAll(filepath.Join(flat, "dir.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	ds, err = LoadYOLODataset(flat, []string{"cat"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Images) != 1 || filepath.Base(ds.Images[0].Path) != "a.png" || len(ds.MissingLabels) != 0 {
		t.Errorf("flat: %d images (%+v), missing %v; want a.png with its (empty) labels", len(ds.Images), ds.Images, ds.MissingLabels)
	}
}

// A file with an image extension that is not an image fails the load,
// naming the file and wrapping image.ErrFormat.
func TestLoadYOLODatasetNotAnImage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.jpg")
	writeFile(t, path, "plain text, not a JPEG")
	_, err := LoadYOLODataset(dir, []string{"cat"})
	if !errors.Is(err, image.ErrFormat) || !strings.Contains(err.Error(), "read image size of "+path) {
		t.Errorf("LoadYOLODataset(text file named .jpg) = %v, want image.ErrFormat naming %s", err, path)
	}
}

// writeBMP writes a 24-bit BMP header (and no pixels) of w x h: enough
// for image.DecodeConfig, which takes a zero size without complaint.
func writeBMP(t *testing.T, path string, w, h int32) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("BM")
	for _, v := range []any{uint32(54), uint32(0), uint32(54), uint32(40), w, h, uint16(1), uint16(24), [24]byte{}} {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, path, b.String())
}

// An image whose header gives a zero width or height fails the load,
// naming the file and the size; 1x1 is fine.
func TestLoadYOLODatasetZeroSizeImage(t *testing.T) {
	for _, c := range []struct {
		w, h int32
		want string
	}{{0, 5, "header says 0x5"}, {5, 0, "header says 5x0"}, {0, 0, "header says 0x0"}} {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.bmp")
		writeBMP(t, path, c.w, c.h)
		_, err := LoadYOLODataset(dir, []string{"cat"})
		if err == nil || err.Error() != "read image size of "+path+": "+c.want {
			t.Errorf("%dx%d BMP: %v, want %q", c.w, c.h, err, c.want)
		}
	}
	dir := t.TempDir()
	writeBMP(t, filepath.Join(dir, "a.bmp"), 1, 1)
	ds, err := LoadYOLODataset(dir, []string{"cat"})
	if err != nil || ds.Images[0].Width != 1 || ds.Images[0].Height != 1 {
		t.Errorf("1x1 BMP: %v", err)
	}
}

// Label files may be up to 16 MiB (README, "Limits"): exactly 16 MiB
// loads, one byte more is refused.
func TestLabelFileLimitIs16MiB(t *testing.T) {
	const mib16 = 16 << 20
	line := "0 0.5 0.5 0.1 0.1"
	for _, c := range []struct {
		size int
		ok   bool
	}{{mib16, true}, {mib16 + 1, false}} {
		dir := t.TempDir()
		writePNG(t, filepath.Join(dir, "x.png"), 20, 20)
		// One line padded with blanks: cheap to parse.
		writeFile(t, filepath.Join(dir, "x.txt"), line+strings.Repeat(" ", c.size-len(line)-1)+"\n")
		ds, err := LoadYOLODataset(dir, []string{"cat"})
		if c.ok && (err != nil || ds.NumObjects() != 1) {
			t.Errorf("%d-byte label file: %v, want it loaded", c.size, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "too large")) {
			t.Errorf("%d-byte label file: %v, want a too-large error", c.size, err)
		}
	}
}

// Label lines with NaN or infinite coordinates are "not a number", and a
// class out of range names the valid ids.
func TestParseLabelsMessages(t *testing.T) {
	for _, c := range []struct {
		line, want string
	}{
		{"0 nan 0.5 0.1 0.1", `x.txt:1: cx "nan" is not a number`},
		{"0 0.5 NaN 0.1 0.1", `x.txt:1: cy "NaN" is not a number`},
		{"0 0.5 0.5 inf 0.1", `x.txt:1: w "inf" is not a number`},
		{"0 0.5 0.5 0.1 -Inf", `x.txt:1: h "-Inf" is not a number`},
		{"0 0.5 0.5 0.1 -0.1", `x.txt:1: h -0.1 is outside 0..1 (coordinates are normalised by the image size)`},
		{"2 0.5 0.5 0.1 0.1", `x.txt:1: class id out of range: class 2, the names have 2 classes (0..1)`},
		{"-1 0.5 0.5 0.1 0.1", `x.txt:1: class id out of range: class -1, the names have 2 classes (0..1)`},
	} {
		_, err := parseLabels([]byte(c.line+"\n"), "x.txt", 20, 20, 2)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.line, err, c.want)
		}
	}
}

// A PNG that cannot be created is an error wrapping the cause.
func TestPlotPRMissingDirectory(t *testing.T) {
	r := evaluate(t, []string{"a"}, [][]Object{{obj(0, medium)}}, map[int][]Detection{1: {det(0, 0.9, medium)}})
	path := filepath.Join(t.TempDir(), "no", "pr.png")
	if err := PlotPR(path, r.Curve("x")); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "plot precision-recall: ") {
		t.Errorf("PlotPR into a missing directory = %v, want a \"plot precision-recall\" error wrapping fs.ErrNotExist", err)
	}
}

// One model is enough for a trade-off plot.
func TestPlotTradeoffOnePoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.png")
	if err := PlotTradeoff(path, "one", TradeoffPoint{Name: "fp32", LatencyMs: 28, MAP: 0.325}); err != nil {
		t.Fatalf("PlotTradeoff(one point) = %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("plot not written: %v", err)
	}
}

// Split clamps n to 0..len (Split(0) and Split(-3) give an empty first
// part), and subsets keep exactly their own images' missing labels.
func TestSplitClampsAndKeepsMissingLabels(t *testing.T) {
	ds := &Dataset{Names: []string{"a"}, Images: []Image{{ID: 1, Path: "a"}, {ID: 2, Path: "b"}, {ID: 3, Path: "c"}}, MissingLabels: []string{"b"}}
	for _, n := range []int{0, -3} {
		first, rest := ds.Split(n)
		if len(first.Images) != 0 || len(rest.Images) != 3 {
			t.Errorf("Split(%d): %d and %d images, want 0 and 3", n, len(first.Images), len(rest.Images))
		}
	}
	first, rest := ds.Split(1)
	if len(first.MissingLabels) != 0 || !slices.Equal(rest.MissingLabels, []string{"b"}) {
		t.Errorf("Split(1): missing labels %q and %q, want none and [b]", first.MissingLabels, rest.MissingLabels)
	}
	even, odd := ds.Halves()
	if len(even.MissingLabels) != 0 || !slices.Equal(odd.MissingLabels, []string{"b"}) {
		t.Errorf("Halves: missing labels %q and %q, want none and [b]", even.MissingLabels, odd.MissingLabels)
	}
}

// IsCOCO80 needs exactly the 80 names: a prefix or one more is not COCO.
func TestIsCOCO80Length(t *testing.T) {
	if IsCOCO80(labels.COCO80[:3]) || IsCOCO80(nil) {
		t.Error("a prefix of the COCO names is COCO80")
	}
	if IsCOCO80(append(slices.Clone(labels.COCO80[:]), "extra")) {
		t.Error("81 names are COCO80")
	}
	if !slices.Equal(CategoryIDs(labels.COCO80[:3]), []int{1, 2, 3}) {
		t.Errorf("CategoryIDs of 3 names = %v, want 1..3", CategoryIDs(labels.COCO80[:3]))
	}
}

// SaveCOCOJSON creates its directory readable and searchable by all,
// as far as the umask allows (0755 &^ umask).
func TestSaveCOCOJSONDirMode(t *testing.T) {
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	dir := filepath.Join(t.TempDir(), "coco")
	if err := SaveCOCOJSON(dir, &Dataset{Names: []string{"a"}}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := fs.FileMode(0o755) &^ fs.FileMode(umask); st.Mode().Perm() != want {
		t.Errorf("directory mode %v, want %v", st.Mode().Perm(), want)
	}
}
