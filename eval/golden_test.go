package eval_test

// This file checks the Evaluator on real detections against a reference
// implementation of COCOeval written here, independently of package eval:
// it uses none of eval's code, only its exported API for the system under
// test. It is derived from pycocotools' documented algorithm
// (pycocotools/cocoeval.py: Params.setDetParams, evaluate, computeIoU,
// evaluateImg, accumulate, summarize, and maskApi.c's bbIou for boxes),
// followed step by step and kept deliberately plain: no sorting tricks, no
// shared buffers, numpy's operations spelled out. pycocotools itself cannot
// be installed here (no PyPI), nor numpy.
//
// The golden file testdata/yolox_nano_416_coco128_first12.json holds the
// detections of yolox_nano_416 on the first 12 coco128 images in COCO
// results format (written by `edgedet eval --score 0.02 --save-json`;
// boxes rounded to 0.01 px and scores to 0.001, which makes some scores
// tie, as real results do). The ground truth is read here from the
// dataset's YOLO labels, converted as Ultralytics' xywhn2xyxy does.

import (
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/internal/labels"
)

const goldenResults = "testdata/yolox_nano_416_coco128_first12.json"

// goldenStats is what refCOCOEval gives for the golden file (printed by
// this test with -v), pycocotools' stats order: AP, AP50, AP75, AP
// small/medium/large, AR 1/10/100, AR small/medium/large.
var goldenStats = [12]float64{
	0.4972987060610884, 0.7289197967415788, 0.5058462989156056, 0.07414741474147402,
	0.10200377180575244, 0.712024202420239, 0.3915079365079365, 0.5334788359788359,
	0.5368121693121692, 0.10576923076923078, 0.12785714285714284, 0.7355555555555556,
}

// refAnn is a ground-truth object or a detection as pycocotools holds it.
type refAnn struct {
	image, cat int
	box        [4]float64 // x, y, w, h
	area       float64
	score      float64 // detections only
}

// coco91 is COCO's category id of each of the 80 classes (the 2017
// annotations' ids; 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83 are unused).
var coco91 = [80]int{
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
	46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
	67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
}

// npLinspace is numpy.linspace(start, stop, n) as numpy computes it:
// arange(n)*step + start, step = (stop-start)/(n-1), the last value stop.
func npLinspace(start, stop float64, n int) []float64 {
	step := (stop - start) / float64(n-1)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[n-1] = stop
	return out
}

// refBBIoU is maskApi.c's bbIou for one detection and one non-crowd
// ground truth (the data has no crowd objects: YOLO labels carry no
// iscrowd flag, so every object is iscrowd 0 and pycocotools' crowd branch,
// where the union is the detection's area alone, never applies).
func refBBIoU(d, g [4]float64) float64 {
	w := math.Min(d[0]+d[2], g[0]+g[2]) - math.Max(d[0], g[0])
	if w <= 0 {
		return 0
	}
	h := math.Min(d[1]+d[3], g[1]+g[3]) - math.Max(d[1], g[1])
	if h <= 0 {
		return 0
	}
	i := w * h
	return i / (d[2]*d[3] + g[2]*g[3] - i)
}

// refEvalImg is evaluateImg's result for one image, category and area range.
type refEvalImg struct {
	dtScores  []float64
	dtMatched [][]bool // [iou threshold][detection]: dtMatches != 0
	dtIgnore  [][]bool
	gtIgnore  []bool
}

// refCOCOEval runs COCOeval(gt, dt, "bbox") with default parameters on
// imgIDs and catIDs and returns summarize()'s stats.
func refCOCOEval(imgIDs, catIDs []int, gts, dts []refAnn) [12]float64 {
	iouThrs := npLinspace(0.5, 0.95, 10)
	recThrs := npLinspace(0, 1, 101)
	maxDets := []int{1, 10, 100}
	areaRng := [][2]float64{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}
	imgIDs = slices.Sorted(slices.Values(imgIDs)) // p.imgIds = sorted(...)
	catIDs = slices.Sorted(slices.Values(catIDs))
	T, R, K, A, M := len(iouThrs), len(recThrs), len(catIDs), len(areaRng), len(maxDets)

	type key struct{ img, cat int }
	gtBy, dtBy := map[key][]refAnn{}, map[key][]refAnn{}
	for _, g := range gts {
		gtBy[key{g.image, g.cat}] = append(gtBy[key{g.image, g.cat}], g)
	}
	for _, d := range dts {
		dtBy[key{d.image, d.cat}] = append(dtBy[key{d.image, d.cat}], d)
	}
	// np.argsort(-scores, kind='mergesort'): a stable sort by descending score.
	byScore := func(ds []refAnn) []refAnn {
		out := slices.Clone(ds)
		slices.SortStableFunc(out, func(a, b refAnn) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return 0
		})
		return out
	}

	// evaluateImg(imgId, catId, aRng, maxDets[-1]); nil is pycocotools' None.
	evaluateImg := func(img, cat int, rng [2]float64) *refEvalImg {
		gt, dt := gtBy[key{img, cat}], byScore(dtBy[key{img, cat}])
		if len(gt) == 0 && len(dt) == 0 {
			return nil
		}
		dt = dt[:min(len(dt), maxDets[M-1])] // computeIoU's truncation
		// gt["_ignore"], then gt sorted with the ignored last (stable).
		var order []int
		for pass := 0; pass < 2; pass++ {
			for g := range gt {
				ig := gt[g].area < rng[0] || gt[g].area > rng[1]
				if ig == (pass == 1) {
					order = append(order, g)
				}
			}
		}
		G, D := len(gt), len(dt)
		e := &refEvalImg{gtIgnore: make([]bool, G)}
		for i, g := range order {
			e.gtIgnore[i] = gt[g].area < rng[0] || gt[g].area > rng[1]
		}
		ious := make([][]float64, D)
		for d := range dt {
			e.dtScores = append(e.dtScores, dt[d].score)
			ious[d] = make([]float64, G)
			for i, g := range order {
				ious[d][i] = refBBIoU(dt[d].box, gt[g].box)
			}
		}
		for _, thr := range iouThrs {
			gtm := make([]bool, G)
			dtm, dtIg := make([]bool, D), make([]bool, D)
			for d := range dt {
				iou := math.Min(thr, 1-1e-10)
				m := -1
				for g := range G {
					if gtm[g] { // taken, and not a crowd
						continue
					}
					if m > -1 && !e.gtIgnore[m] && e.gtIgnore[g] {
						break
					}
					if ious[d][g] < iou {
						continue
					}
					iou, m = ious[d][g], g
				}
				if m == -1 {
					continue
				}
				dtIg[d], dtm[d], gtm[m] = e.gtIgnore[m], true, true
			}
			for d := range dt {
				if !dtm[d] && (dt[d].area < rng[0] || dt[d].area > rng[1]) {
					dtIg[d] = true
				}
			}
			e.dtMatched = append(e.dtMatched, dtm)
			e.dtIgnore = append(e.dtIgnore, dtIg)
		}
		return e
	}

	// evaluate(): evalImgs for every category, area range and image.
	evalImgs := make([][][]*refEvalImg, K) // [k][a][image]
	for k, cat := range catIDs {
		evalImgs[k] = make([][]*refEvalImg, A)
		for a, rng := range areaRng {
			for _, img := range imgIDs {
				evalImgs[k][a] = append(evalImgs[k][a], evaluateImg(img, cat, rng))
			}
		}
	}

	// accumulate(): -1 where undefined.
	precision := make([]float64, T*R*K*A*M) // [t][r][k][a][m]
	recall := make([]float64, T*K*A*M)      // [t][k][a][m]
	for i := range precision {
		precision[i] = -1
	}
	for i := range recall {
		recall[i] = -1
	}
	pAt := func(t, r, k, a, m int) *float64 { return &precision[(((t*R+r)*K+k)*A+a)*M+m] }
	rAt := func(t, k, a, m int) *float64 { return &recall[((t*K+k)*A+a)*M+m] }
	for k := range K {
		for a := range A {
			for m, maxDet := range maxDets {
				var E []*refEvalImg
				for _, e := range evalImgs[k][a] {
					if e != nil {
						E = append(E, e)
					}
				}
				if len(E) == 0 {
					continue
				}
				// Concatenate the first maxDet detections of each image
				// (image order), then a stable sort by descending score.
				type col struct {
					e *refEvalImg
					d int
				}
				var cols []col
				npig := 0
				for _, e := range E {
					for d := 0; d < len(e.dtScores) && d < maxDet; d++ {
						cols = append(cols, col{e, d})
					}
					for _, ig := range e.gtIgnore {
						if !ig {
							npig++
						}
					}
				}
				if npig == 0 {
					continue
				}
				slices.SortStableFunc(cols, func(x, y col) int {
					sx, sy := x.e.dtScores[x.d], y.e.dtScores[y.d]
					switch {
					case sx > sy:
						return -1
					case sx < sy:
						return 1
					}
					return 0
				})
				nd := len(cols)
				for t := range T {
					tp, fp := make([]float64, nd), make([]float64, nd)
					var tpSum, fpSum float64
					for i, c := range cols {
						if !c.e.dtIgnore[t][c.d] {
							if c.e.dtMatched[t][c.d] {
								tpSum++
							} else {
								fpSum++
							}
						}
						tp[i], fp[i] = tpSum, fpSum
					}
					rc, pr := make([]float64, nd), make([]float64, nd)
					for i := range nd {
						rc[i] = tp[i] / float64(npig)
						pr[i] = tp[i] / (fp[i] + tp[i] + 2.220446049250313e-16) // np.spacing(1)
					}
					if nd > 0 {
						*rAt(t, k, a, m) = rc[nd-1]
					} else {
						*rAt(t, k, a, m) = 0
					}
					for i := nd - 1; i > 0; i-- {
						if pr[i] > pr[i-1] {
							pr[i-1] = pr[i]
						}
					}
					// np.searchsorted(rc, recThrs, side='left'): the first
					// index with rc[i] >= r; past the end stops the loop
					// (the IndexError pycocotools catches), leaving zeros.
					for r, thr := range recThrs {
						pi := 0
						for pi < nd && rc[pi] < thr {
							pi++
						}
						if pi == nd {
							for ; r < R; r++ {
								*pAt(t, r, k, a, m) = 0
							}
							break
						}
						*pAt(t, r, k, a, m) = pr[pi]
					}
				}
			}
		}
	}

	// summarize(): the mean of the entries > -1, or -1.
	meanOf := func(vals []float64) float64 {
		sum, n := 0.0, 0
		for _, v := range vals {
			if v > -1 {
				sum += v
				n++
			}
		}
		if n == 0 {
			return -1
		}
		return sum / float64(n)
	}
	ap := func(iouThr float64, a, m int) float64 { // iouThr < 0: all thresholds
		var vals []float64
		for t := range T {
			if iouThr >= 0 && iouThrs[t] != iouThr {
				continue
			}
			for r := range R {
				for k := range K {
					vals = append(vals, *pAt(t, r, k, a, m))
				}
			}
		}
		return meanOf(vals)
	}
	ar := func(a, m int) float64 {
		var vals []float64
		for t := range T {
			for k := range K {
				vals = append(vals, *rAt(t, k, a, m))
			}
		}
		return meanOf(vals)
	}
	return [12]float64{
		ap(-1, 0, 2), ap(0.5, 0, 2), ap(0.75, 0, 2), ap(-1, 1, 2), ap(-1, 2, 2), ap(-1, 3, 2),
		ar(0, 0), ar(0, 1), ar(0, 2), ar(1, 2), ar(2, 2), ar(3, 2),
	}
}

// sharedPath is a path inside ../shared (or $EDGEDET_SHARED).
func sharedPath(t testing.TB, elem ...string) string {
	t.Helper()
	dir := os.Getenv("EDGEDET_SHARED")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "shared")
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing: %v (the checkout needs ../shared beside it, or set EDGEDET_SHARED)", err)
	}
	return p
}

type goldenResult struct {
	ImageID    int        `json:"image_id"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Score      float64    `json:"score"`
}

// refGroundTruth reads the YOLO labels of the images with these ids
// (coco128 file stems) as COCO annotations: x1 = W*(cx - w/2) and so on
// (Ultralytics' xywhn2xyxy), area = w*h, category COCO's id.
func refGroundTruth(t *testing.T, dir string, ids []int) []refAnn {
	t.Helper()
	var gts []refAnn
	for _, id := range ids {
		stem := filepath.Join(dir, fmt.Sprintf("%012d", id))
		f, err := os.Open(stem + ".jpg")
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s.jpg: %v", stem, err)
		}
		W, H := float64(cfg.Width), float64(cfg.Height)
		data, err := os.ReadFile(stem + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			fs := strings.Fields(line)
			if len(fs) == 0 {
				continue
			}
			var v [5]float64
			for i := range v {
				if v[i], err = strconv.ParseFloat(fs[i], 64); err != nil {
					t.Fatalf("%s.txt: %q: %v", stem, line, err)
				}
			}
			x1, y1 := W*(v[1]-v[3]/2), H*(v[2]-v[4]/2)
			x2, y2 := W*(v[1]+v[3]/2), H*(v[2]+v[4]/2)
			box := [4]float64{x1, y1, x2 - x1, y2 - y1}
			gts = append(gts, refAnn{image: id, cat: coco91[int(v[0])], box: box, area: box[2] * box[3]})
		}
	}
	return gts
}

// TestEvaluatorMatchesReferenceOnRealDetections scores the golden results
// with the Evaluator and with refCOCOEval: all twelve numbers must agree,
// and equal the pinned goldenStats.
func TestEvaluatorMatchesReferenceOnRealDetections(t *testing.T) {
	raw, err := os.ReadFile(goldenResults)
	if err != nil {
		t.Fatal(err)
	}
	var results []goldenResult
	if err := json.Unmarshal(raw, &results); err != nil {
		t.Fatalf("%s: %v", goldenResults, err)
	}
	src := sharedPath(t, "datasets", "coco128", "train")
	var ids []int
	var dts []refAnn
	for _, r := range results {
		if !slices.Contains(ids, r.ImageID) {
			ids = append(ids, r.ImageID)
		}
		dts = append(dts, refAnn{image: r.ImageID, cat: r.CategoryID, box: r.BBox, area: r.BBox[2] * r.BBox[3], score: r.Score})
	}
	if len(ids) != 12 || len(results) < 200 {
		t.Fatalf("%s: %d detections on %d images, want > 200 on 12", goldenResults, len(results), len(ids))
	}
	want := refCOCOEval(ids, coco91[:], refGroundTruth(t, src, ids), dts)
	t.Logf("reference stats: %#v", want)
	for i := range want {
		if math.Abs(want[i]-goldenStats[i]) > 1e-12 {
			t.Errorf("reference %s = %.16g, pinned %.16g", eval.SummaryLabels[i], want[i], goldenStats[i])
		}
	}

	// The system under test: the same 12 images and labels in a dataset
	// directory, the golden detections added by class.
	dir := t.TempDir()
	for _, id := range ids {
		for _, ext := range []string{".jpg", ".txt"} {
			name := fmt.Sprintf("%012d%s", id, ext)
			data, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	names, err := labels.Load(sharedPath(t, "datasets", "coco128", "coco.names"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := eval.LoadYOLODataset(dir, names)
	if err != nil {
		t.Fatal(err)
	}
	classOf := map[int]int{}
	for k, c := range eval.CategoryIDs(names) {
		classOf[c] = k
	}
	e := eval.NewEvaluator(ds)
	for _, r := range results {
		k, ok := classOf[r.CategoryID]
		if !ok {
			t.Fatalf("category %d is not a COCO class", r.CategoryID)
		}
		b := r.BBox
		if err := e.Add(r.ImageID, []eval.Detection{{ClassID: k, Score: r.Score, Box: [4]float64{b[0], b[1], b[0] + b[2], b[1] + b[3]}}}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.Evaluate().Summary.Stats()
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("%s = %.12f, reference %.12f", eval.SummaryLabels[i], got[i], want[i])
		}
	}
}
