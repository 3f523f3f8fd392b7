package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgedet/edgedet/internal/labels"
)

// coco80To91 maps the 80-class index to COCO's category id (1..90 with gaps:
// the 2014 paper listed 91 categories, 11 of which were never annotated).
var coco80To91 = [80]int{
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
	46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
	67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
}

// darknetSpelling maps the darknet coco.names spellings that differ from
// COCO's own to COCO's.
var darknetSpelling = map[string]string{
	"motorbike":   "motorcycle",
	"aeroplane":   "airplane",
	"sofa":        "couch",
	"pottedplant": "potted plant",
	"diningtable": "dining table",
	"tvmonitor":   "tv",
}

// CanonicalName folds a class name for comparison: lower case, darknet
// spellings mapped to COCO's (motorbike -> motorcycle, tvmonitor -> tv …),
// and underscores and hyphens read as spaces.
func CanonicalName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.NewReplacer("_", " ", "-", " ").Replace(s)
	if c, ok := darknetSpelling[strings.ReplaceAll(s, " ", "")]; ok {
		return c
	}
	return s
}

// IsCOCO80 reports whether names are the 80 COCO classes in COCO order, in
// COCO's, Ultralytics' or darknet's spelling.
func IsCOCO80(names []string) bool {
	if len(names) != len(labels.COCO80) {
		return false
	}
	for i, n := range names {
		if CanonicalName(n) != labels.COCO80[i] {
			return false
		}
	}
	return true
}

// CategoryIDs returns the COCO JSON category id of each class: COCO's own
// ids (person 1, dog 18, toothbrush 90) when names are the 80 COCO classes
// (see IsCOCO80), as Ultralytics' save_json does, so predictions can be
// scored against the official annotations; else 1..len(names).
func CategoryIDs(names []string) []int {
	ids := make([]int, len(names))
	coco := IsCOCO80(names)
	for i := range ids {
		if coco {
			ids[i] = coco80To91[i]
		} else {
			ids[i] = i + 1
		}
	}
	return ids
}

type cocoImage struct {
	ID       int    `json:"id"`
	FileName string `json:"file_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
}

type cocoAnnotation struct {
	ID           int          `json:"id"`
	ImageID      int          `json:"image_id"`
	CategoryID   int          `json:"category_id"`
	BBox         [4]float64   `json:"bbox"`
	Area         float64      `json:"area"`
	IsCrowd      int          `json:"iscrowd"`
	Segmentation [][8]float64 `json:"segmentation"`
}

type cocoCategory struct {
	ID            int    `json:"id"`
	Name          string `json:"name"`
	Supercategory string `json:"supercategory"`
}

type cocoInstances struct {
	Info        map[string]string `json:"info"`
	Licenses    []any             `json:"licenses"`
	Images      []cocoImage       `json:"images"`
	Annotations []cocoAnnotation  `json:"annotations"`
	Categories  []cocoCategory    `json:"categories"`
}

type cocoResult struct {
	ImageID    int        `json:"image_id"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Score      float64    `json:"score"`
}

// SaveCOCOJSON writes ds's ground truth as dir/instances.json (COCO
// "instances" format) and dets (by Image.ID, e.g. Evaluator.Detections) as
// dir/predictions.json (COCO results format), creating dir. pycocotools
// loads them with COCO("instances.json").loadRes("predictions.json") and
// COCOeval(gt, dt, "bbox") reproduces Evaluator's numbers.
//
//   - Boxes are [x, y, w, h] in pixels, unrounded; area is w*h (there is
//     no segmentation, so "segmentation" is the box as a polygon); iscrowd 0.
//   - Image ids are Image.ID (COCO's ids for COCO file names); file_name is
//     the path relative to ds.Dir.
//   - Category ids are CategoryIDs(ds.Names); with the COCO classes the
//     category names are COCO's spelling.
//
// pycocotools' loadRes cannot load an empty results list; predictions.json
// is "[]" when there are no detections.
func SaveCOCOJSON(dir string, ds *Dataset, dets map[int][]Detection) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save coco json: %w", err)
	}
	catIDs := CategoryIDs(ds.Names)
	coco := IsCOCO80(ds.Names)
	inst := cocoInstances{
		Info:        map[string]string{"description": "edgedet eval ground truth from YOLO labels in " + ds.Dir},
		Licenses:    []any{},
		Images:      make([]cocoImage, 0, len(ds.Images)),
		Annotations: make([]cocoAnnotation, 0, ds.NumObjects()),
		Categories:  make([]cocoCategory, len(ds.Names)),
	}
	for k, n := range ds.Names {
		if coco {
			n = labels.COCO80[k]
		}
		inst.Categories[k] = cocoCategory{ID: catIDs[k], Name: n, Supercategory: "none"}
	}
	for _, img := range ds.Images {
		name, err := filepath.Rel(ds.Dir, img.Path)
		if err != nil {
			name = filepath.Base(img.Path)
		}
		inst.Images = append(inst.Images, cocoImage{ID: img.ID, FileName: filepath.ToSlash(name), Width: img.Width, Height: img.Height})
		for _, o := range img.Objects {
			b := toXYWH(o.Box)
			x1, y1, x2, y2 := o.Box[0], o.Box[1], o.Box[2], o.Box[3]
			inst.Annotations = append(inst.Annotations, cocoAnnotation{
				ID: len(inst.Annotations) + 1, ImageID: img.ID, CategoryID: catIDs[o.ClassID],
				BBox: [4]float64{b.x, b.y, b.w, b.h}, Area: b.area(),
				Segmentation: [][8]float64{{x1, y1, x2, y1, x2, y2, x1, y2}},
			})
		}
	}
	known := make(map[int]bool, len(ds.Images))
	for _, img := range ds.Images {
		known[img.ID] = true
	}
	for id := range dets {
		if !known[id] {
			return fmt.Errorf("save coco json: detections for image id %d, which is not in the dataset", id)
		}
	}
	results := []cocoResult{}
	for _, img := range ds.Images {
		for _, d := range dets[img.ID] {
			if d.ClassID < 0 || d.ClassID >= len(catIDs) {
				return fmt.Errorf("save coco json: image %d: class id %d is outside the dataset's %d classes", img.ID, d.ClassID, len(catIDs))
			}
			b := toXYWH(d.Box)
			results = append(results, cocoResult{ImageID: img.ID, CategoryID: catIDs[d.ClassID], BBox: [4]float64{b.x, b.y, b.w, b.h}, Score: d.Score})
		}
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"instances.json", inst}, {"predictions.json", results}} {
		data, err := json.Marshal(f.v)
		if err != nil {
			return fmt.Errorf("save coco json %s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("save coco json: %w", err)
		}
	}
	return nil
}
