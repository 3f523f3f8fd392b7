package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
