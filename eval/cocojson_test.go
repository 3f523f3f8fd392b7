package eval

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/edgedet/edgedet/internal/labels"
)

func TestCategoryIDs(t *testing.T) {
	darknet, err := labels.Load(shared(t, "datasets", "coco128", "coco.names"))
	if err != nil {
		t.Fatal(err)
	}
	ultra, err := labels.Load(shared(t, "models", "coco80_ultralytics.names"))
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range [][]string{darknet, ultra, labels.COCO80} {
		if !IsCOCO80(names) {
			t.Fatalf("IsCOCO80(%q…) = false", names[:5])
		}
		ids := CategoryIDs(names)
		// person 1, bicycle 2, dog (index 16) 18, bowl (45) 51, toothbrush (79) 90.
		if ids[0] != 1 || ids[1] != 2 || ids[16] != 18 || ids[45] != 51 || ids[79] != 90 {
			t.Errorf("COCO ids %v", ids)
		}
	}
	if ids := CategoryIDs([]string{"cat", "dog"}); !slices.Equal(ids, []int{1, 2}) {
		t.Errorf("custom classes: %v, want 1-based", ids)
	}
	swapped := slices.Clone(labels.COCO80)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	if IsCOCO80(swapped) {
		t.Error("COCO names in another order count as COCO")
	}
	if CanonicalName("TVMonitor") != "tv" || CanonicalName("potted_plant") != "potted plant" || CanonicalName("Motorbike") != "motorcycle" {
		t.Error("CanonicalName does not fold darknet spellings")
	}
}

type instancesFile struct {
	Images []struct {
		ID       int    `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	} `json:"images"`
	Annotations []struct {
		ID         int        `json:"id"`
		ImageID    int        `json:"image_id"`
		CategoryID int        `json:"category_id"`
		BBox       [4]float64 `json:"bbox"`
		Area       float64    `json:"area"`
		IsCrowd    *int       `json:"iscrowd"`
	} `json:"annotations"`
	Categories []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"categories"`
}

type resultEntry struct {
	ImageID    int        `json:"image_id"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Score      float64    `json:"score"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestSaveCOCOJSON(t *testing.T) {
	ds := coco128(t)
	// Detections: every ground-truth box shifted by 2 px with a made-up
	// score, plus one dog in image 9.
	e := NewEvaluator(ds)
	for i, img := range ds.Images {
		var dets []Detection
		for j, o := range img.Objects {
			bx := o.Box
			dets = append(dets, Detection{ClassID: o.ClassID, Score: 1 / float64(2+i+j),
				Box: [4]float64{bx[0] + 2, bx[1], bx[2] + 2, bx[3]}})
		}
		if img.ID == 9 {
			dets = append(dets, Detection{ClassID: 16, Score: 0.25, Box: [4]float64{10, 20, 110, 70}})
		}
		if err := e.Add(img.ID, dets); err != nil {
			t.Fatal(err)
		}
	}
	want := e.Evaluate()
	dir := filepath.Join(t.TempDir(), "coco")
	if err := SaveCOCOJSON(dir, ds, e.Detections()); err != nil {
		t.Fatal(err)
	}

	var inst instancesFile
	readJSON(t, filepath.Join(dir, "instances.json"), &inst)
	if len(inst.Images) != 100 || len(inst.Annotations) != 741 || len(inst.Categories) != 80 {
		t.Fatalf("instances.json: %d images, %d annotations, %d categories", len(inst.Images), len(inst.Annotations), len(inst.Categories))
	}
	if im := inst.Images[0]; im.ID != 9 || im.FileName != "000000000009.jpg" || im.Width != 640 || im.Height != 480 {
		t.Errorf("first image %+v", im)
	}
	if c := inst.Categories[16]; c.ID != 18 || c.Name != "dog" {
		t.Errorf("category 16 = %+v, want dog with id 18", c)
	}
	if c := inst.Categories[3]; c.ID != 4 || c.Name != "motorcycle" {
		t.Errorf("category 3 = %+v, want COCO's spelling motorcycle (coco.names says motorbike)", c)
	}
	// The bowl of TestLoadCOCO128: x1,y1,x2,y2 = 1.08, 187.69008,
	// 612.66976, 473.53008 -> [x, y, w, h] = [1.08, 187.69008, 611.58976,
	// 285.84], area = 611.58976 × 285.84; bowl is COCO category 51.
	a := inst.Annotations[0]
	wantBox := [4]float64{1.08, 187.69008, 611.58976, 285.84}
	for i := range wantBox {
		if math.Abs(a.BBox[i]-wantBox[i]) > 1e-9 {
			t.Fatalf("first annotation bbox %v, want %v", a.BBox, wantBox)
		}
	}
	if a.ID != 1 || a.ImageID != 9 || a.CategoryID != 51 || math.Abs(a.Area-611.58976*285.84) > 1e-6 || a.IsCrowd == nil || *a.IsCrowd != 0 {
		t.Errorf("first annotation %+v", a)
	}
	ids := map[int]bool{}
	for _, an := range inst.Annotations {
		if ids[an.ID] || an.ID < 1 {
			t.Fatalf("annotation id %d repeated or < 1", an.ID)
		}
		ids[an.ID] = true
	}

	var res []resultEntry
	readJSON(t, filepath.Join(dir, "predictions.json"), &res)
	if len(res) != 742 {
		t.Fatalf("predictions.json has %d results, want 742", len(res))
	}
	dog := false
	for _, r := range res {
		if r.ImageID == 9 && r.CategoryID == 18 && r.BBox == [4]float64{10, 20, 100, 50} && r.Score == 0.25 {
			dog = true
		}
	}
	if !dog {
		t.Error("the dog (class 16) at 10,20,110,70 is not in predictions.json as category 18, bbox [10,20,100,50]")
	}

	// Reading the files back and evaluating gives the same numbers: the
	// JSON holds exactly what the Evaluator scored.
	cat := map[int]int{}
	for k, id := range CategoryIDs(ds.Names) {
		cat[id] = k
	}
	back := map[int][]Detection{}
	for _, r := range res {
		bb := r.BBox
		back[r.ImageID] = append(back[r.ImageID], Detection{ClassID: cat[r.CategoryID], Score: r.Score,
			Box: [4]float64{bb[0], bb[1], bb[0] + bb[2], bb[1] + bb[3]}})
	}
	e2 := NewEvaluator(ds)
	for id, d := range back {
		if err := e2.Add(id, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := e2.Evaluate().Summary; got != want.Summary {
		t.Errorf("after a JSON round trip: %+v\nbefore: %+v", got, want.Summary)
	}
	if err := SaveCOCOJSON(dir, ds, map[int][]Detection{12345: nil}); err == nil {
		t.Error("SaveCOCOJSON accepted detections for an image not in the dataset")
	}
}

func TestGroundTruthAsDetectionsOnCOCO128(t *testing.T) {
	// Every object detected exactly: all AP and AR@100 are 1 (AR@1 and
	// AR@10 are not: images hold several objects of a class).
	ds := coco128(t)
	e := NewEvaluator(ds)
	for _, img := range ds.Images {
		var dets []Detection
		for j, o := range img.Objects {
			dets = append(dets, Detection{ClassID: o.ClassID, Score: 1 - float64(j)/1000, Box: o.Box})
		}
		if err := e.Add(img.ID, dets); err != nil {
			t.Fatal(err)
		}
	}
	r := e.Evaluate()
	s := r.Summary
	for i, v := range []float64{s.AP, s.AP50, s.AP75, s.APSmall, s.APMedium, s.APLarge, s.AR100, s.ARSmall, s.ARMedium, s.ARLarge} {
		if v != 1 {
			t.Errorf("stat %d = %v, want 1", i, v)
		}
	}
	if s.AR1 >= 1 || s.AR1 <= 0 {
		t.Errorf("AR1 = %v, want in (0,1)", s.AR1)
	}
	// 69 distinct class ids in the 100 label files (the README's 71 is
	// for all 128 images).
	if n := len(r.WithGT()); n != 69 {
		t.Errorf("%d classes with ground truth, want 69", n)
	}
}

func TestPlotPR(t *testing.T) {
	r := evaluate(t, []string{"a"}, [][]Object{{obj(0, medium), obj(0, large)}},
		map[int][]Detection{1: {det(0, 0.9, medium), det(0, 0.8, far), det(0, 0.7, large)}})
	perfect := evaluate(t, []string{"a"}, [][]Object{{obj(0, medium)}}, map[int][]Detection{1: {det(0, 0.9, medium)}})
	path := filepath.Join(t.TempDir(), "pr.png")
	if err := PlotPR(path, r.Curve("model-a"), perfect.Curve("model-b")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if cfg.Width != PlotWidth || cfg.Height != PlotHeight {
		t.Errorf("PNG is %dx%d, want %dx%d", cfg.Width, cfg.Height, PlotWidth, PlotHeight)
	}
	if err := PlotPR(path); err == nil {
		t.Error("PlotPR with no curves succeeded")
	}
	if err := PlotPR(filepath.Join(t.TempDir(), "no", "dir", "pr.png"), r.Curve("x")); err == nil {
		t.Error("PlotPR into a missing directory succeeded")
	}
}
