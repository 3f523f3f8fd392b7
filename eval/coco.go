package eval

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Detection is one detected object of an image.
type Detection struct {
	ClassID int
	Score   float64
	// Box is x1, y1, x2, y2 in image pixels.
	Box [4]float64
}

// COCO evaluation parameters, as pycocotools' Params.setDetParams.
const (
	numIoU    = 10  // IoU thresholds 0.50:0.05:0.95
	numRecall = 101 // recall thresholds 0:0.01:1
	numArea   = 4   // all, small, medium, large
	numMaxDet = 3   // 1, 10, 100 detections per image and class
)

// Area range indices.
const (
	areaAll = iota
	areaSmall
	areaMedium
	areaLarge
)

var (
	iouThresholds    = linspace(0.5, 0.95, numIoU)
	recallThresholds = linspace(0, 1, numRecall)
	// areaRanges bound box areas in pixels²; both ends are inclusive, so an
	// area of exactly 32² is both small and medium, as in pycocotools.
	areaRanges = [numArea][2]float64{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}
	maxDets    = [numMaxDet]int{1, 10, 100}
)

// eps is numpy's spacing(1), which pycocotools adds to the precision's
// denominator.
const eps = 2.220446049250313e-16

// linspace reproduces numpy.linspace(start, stop, n) bit for bit:
// start + i*step with step = (stop-start)/(n-1), the last value set to stop.
// pycocotools' thresholds are made this way, so 0.9 is 0.8999999999999999.
func linspace(start, stop float64, n int) []float64 {
	step := (stop - start) / float64(n-1)
	v := make([]float64, n)
	for i := range v {
		// The conversion rounds the product before the add, as numpy
		// does: without it Go may fuse them into one multiply-add (arm64
		// does), which gave 0.79999999999999993 for 0.8.
		v[i] = float64(float64(i)*step) + start
	}
	v[n-1] = stop
	return v
}

// IoUThresholds returns the ten IoU thresholds 0.50, 0.55, …, 0.95.
func IoUThresholds() []float64 { return slices.Clone(iouThresholds) }

// RecallThresholds returns the 101 recall points 0, 0.01, …, 1 at which
// precision is sampled.
func RecallThresholds() []float64 { return slices.Clone(recallThresholds) }

// Evaluator collects the detections of a dataset's images and scores them
// against its ground truth with the algorithm of pycocotools' COCOeval for
// boxes (iouType "bbox", default parameters):
//
//   - per image and class, detections are sorted by score (stable, so ties
//     keep the order they were added in) and at most 100 are kept; the
//     maxDets limits 1, 10, 100 apply per image *and class*, as in
//     pycocotools, not per image across classes;
//   - IoU is intersection over union of [x,y,w,h] boxes with no +1 pixel;
//   - at each IoU threshold 0.50:0.05:0.95, each detection in score order
//     takes the unmatched ground truth with the highest IoU ≥ threshold,
//     preferring objects inside the area range over those outside it;
//   - ground truth outside the area range is ignored, as are detections
//     matched to it and unmatched detections whose own area is outside it;
//   - precision is made monotone from the right and read at recall
//     0:0.01:1 (numpy searchsorted 'left'); points beyond the highest
//     recall reached count as 0;
//   - classes with no ground truth (in the area range) are -1 and left
//     out of every mean.
//
// Ground-truth area is the box area w*h: YOLO labels have no segmentation,
// whereas COCO's own annotations use the mask area, which is smaller. So the
// small/medium/large split (and only it) can differ from a run against the
// official COCO JSON. There are no crowd annotations.
//
// An Evaluator is not safe for concurrent use.
type Evaluator struct {
	ds    *Dataset
	index map[int]int   // image ID -> position in ds.Images
	dets  [][]Detection // per image position, in the order added
}

// NewEvaluator returns an Evaluator for ds's images and classes.
func NewEvaluator(ds *Dataset) *Evaluator {
	e := &Evaluator{ds: ds, index: make(map[int]int, len(ds.Images)), dets: make([][]Detection, len(ds.Images))}
	for i, img := range ds.Images {
		e.index[img.ID] = i
	}
	return e
}

// Add records detections of the image with this ID (Image.ID). It may be
// called more than once per image; detections are appended.
func (e *Evaluator) Add(imageID int, dets []Detection) error {
	i, ok := e.index[imageID]
	if !ok {
		return fmt.Errorf("add detections: image id %d is not in the dataset", imageID)
	}
	for _, d := range dets {
		if d.ClassID < 0 || d.ClassID >= len(e.ds.Names) {
			return fmt.Errorf("add detections for image %d: class id %d is outside the dataset's %d classes", imageID, d.ClassID, len(e.ds.Names))
		}
	}
	e.dets[i] = append(e.dets[i], dets...)
	return nil
}

// Detections returns every detection added so far, by image ID.
func (e *Evaluator) Detections() map[int][]Detection {
	m := make(map[int][]Detection, len(e.dets))
	for i, d := range e.dets {
		if len(d) > 0 {
			m[e.ds.Images[i].ID] = d
		}
	}
	return m
}

// Summary holds the twelve numbers of COCOeval.summarize(), in its order.
// A value is -1 when no class has ground truth in that setting.
type Summary struct {
	AP       float64 `json:"ap"`        // IoU 0.50:0.95, all areas, 100 dets
	AP50     float64 `json:"ap50"`      // IoU 0.50
	AP75     float64 `json:"ap75"`      // IoU 0.75
	APSmall  float64 `json:"ap_small"`  // area < 32²
	APMedium float64 `json:"ap_medium"` // 32² .. 96²
	APLarge  float64 `json:"ap_large"`  // > 96²
	AR1      float64 `json:"ar1"`       // recall, 1 det per image and class
	AR10     float64 `json:"ar10"`
	AR100    float64 `json:"ar100"`
	ARSmall  float64 `json:"ar_small"`
	ARMedium float64 `json:"ar_medium"`
	ARLarge  float64 `json:"ar_large"`
}

// SummaryLabels describe the Stats in pycocotools' words.
var SummaryLabels = [12]string{
	"AP @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
	"AP @[ IoU=0.50      | area=   all | maxDets=100 ]",
	"AP @[ IoU=0.75      | area=   all | maxDets=100 ]",
	"AP @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
	"AP @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
	"AP @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
	"AR @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
	"AR @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
	"AR @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
	"AR @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
	"AR @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
	"AR @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
}

// Stats returns the summary as pycocotools' stats array.
func (s Summary) Stats() [12]float64 {
	return [12]float64{s.AP, s.AP50, s.AP75, s.APSmall, s.APMedium, s.APLarge,
		s.AR1, s.AR10, s.AR100, s.ARSmall, s.ARMedium, s.ARLarge}
}

// ClassResult is one class's accuracy (all areas, 100 detections).
type ClassResult struct {
	ClassID    int    `json:"class_id"`
	Name       string `json:"name"`
	GT         int    `json:"gt"`         // ground-truth objects
	Detections int    `json:"detections"` // detections added
	// AP, AP50, AP75 and AR100 are -1 when the class has no ground truth.
	AP    float64 `json:"ap"`
	AP50  float64 `json:"ap50"`
	AP75  float64 `json:"ap75"`
	AR100 float64 `json:"ar100"`
	// PR50 is the interpolated precision at the 101 RecallThresholds at
	// IoU 0.5; nil when the class has no ground truth.
	PR50 []float64 `json:"-"`
}

// Result is the outcome of Evaluate.
type Result struct {
	Summary    Summary
	Classes    []ClassResult // indexed by class id, every class
	Images     int
	Objects    int
	Detections int
}

// WithGT returns the classes that have ground truth, by class id.
func (r *Result) WithGT() []ClassResult {
	var out []ClassResult
	for _, c := range r.Classes {
		if c.GT > 0 {
			out = append(out, c)
		}
	}
	return out
}

// MeanPR50 is the precision at the 101 RecallThresholds at IoU 0.5,
// averaged over the classes with ground truth (nil when there are none).
// Its mean is Summary.AP50.
func (r *Result) MeanPR50() []float64 {
	var sum []float64
	n := 0
	for _, c := range r.Classes {
		if c.PR50 == nil {
			continue
		}
		if sum == nil {
			sum = make([]float64, numRecall)
		}
		for i, p := range c.PR50 {
			sum[i] += p
		}
		n++
	}
	for i := range sum {
		sum[i] /= float64(n)
	}
	return sum
}

// xywh is a box as pycocotools holds it.
type xywh struct{ x, y, w, h float64 }

func toXYWH(b [4]float64) xywh { return xywh{b[0], b[1], b[2] - b[0], b[3] - b[1]} }

func (b xywh) area() float64 { return b.w * b.h }

// iou is pycocotools' bbIou for a non-crowd ground truth g.
func iou(d, g xywh) float64 {
	w := math.Min(d.x+d.w, g.x+g.w) - math.Max(d.x, g.x)
	if w <= 0 {
		return 0
	}
	h := math.Min(d.y+d.h, g.y+g.h) - math.Max(d.y, g.y)
	if h <= 0 {
		return 0
	}
	i := w * h
	return i / (d.area() + g.area() - i)
}

// imgEval is pycocotools' evaluateImg result for one image, class and area
// range: detections in score order (at most 100).
type imgEval struct {
	scores   []float64
	matched  [numIoU][]bool // dtMatches != 0
	dtIgnore [numIoU][]bool
	gtIgnore []bool
}

// scored is a detection of one image and class, in pycocotools' terms.
type scored struct {
	score float64
	box   xywh
}

// evaluateImg matches detections (sorted by score, truncated) to ground
// truth within one area range.
func evaluateImg(gt []xywh, dt []scored, ious [][]float64, rng [2]float64) *imgEval {
	G, D := len(gt), len(dt)
	ignored := func(area float64) bool { return area < rng[0] || area > rng[1] }
	// Ground truth outside the range goes last (stable).
	gtIg := make([]bool, G)
	for g := range gt {
		gtIg[g] = ignored(gt[g].area())
	}
	gtind := make([]int, G)
	for g := range gtind {
		gtind[g] = g
	}
	slices.SortStableFunc(gtind, func(a, b int) int {
		return cmp.Compare(b2i(gtIg[a]), b2i(gtIg[b]))
	})
	ev := &imgEval{scores: make([]float64, D), gtIgnore: make([]bool, G)}
	for g, i := range gtind {
		ev.gtIgnore[g] = gtIg[i]
	}
	for d := range dt {
		ev.scores[d] = dt[d].score
	}
	for t, thr := range iouThresholds {
		gtm := make([]bool, G)
		ev.matched[t] = make([]bool, D)
		ev.dtIgnore[t] = make([]bool, D)
		for d := range dt {
			best := math.Min(thr, 1-1e-10)
			m := -1
			for g, gi := range gtind {
				if gtm[g] { // no crowd: a matched object is taken
					continue
				}
				// Matched to an object in range: stop at the ignored ones.
				if m > -1 && !ev.gtIgnore[m] && ev.gtIgnore[g] {
					break
				}
				if ious[d][gi] < best {
					continue
				}
				best = ious[d][gi]
				m = g
			}
			if m == -1 {
				continue
			}
			ev.dtIgnore[t][d] = ev.gtIgnore[m]
			ev.matched[t][d] = true
			gtm[m] = true
		}
		for d := range dt {
			if !ev.matched[t][d] && ignored(dt[d].box.area()) {
				ev.dtIgnore[t][d] = true
			}
		}
	}
	return ev
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Evaluate scores the detections added so far. It can be called again
// after more are added.
func (e *Evaluator) Evaluate() *Result {
	K := len(e.ds.Names)
	res := &Result{Classes: make([]ClassResult, K), Images: len(e.ds.Images)}
	order := e.imageOrder()
	tab := newPRTable(K)
	for k := range K {
		cr := &res.Classes[k]
		cr.ClassID, cr.Name = k, e.ds.Names[k]
		e.evaluateClass(k, order, tab, cr)
	}
	for _, c := range res.Classes {
		res.Objects += c.GT
		res.Detections += c.Detections
	}
	res.Summary = tab.summary()
	for k := range res.Classes {
		tab.summarizeClass(k, &res.Classes[k])
	}
	return res
}

// imageOrder returns the dataset's image indices in ascending id order, the
// order pycocotools visits them in; it matters for ties of equal scores
// across images.
func (e *Evaluator) imageOrder() []int {
	order := make([]int, len(e.ds.Images))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(e.ds.Images[a].ID, e.ds.Images[b].ID) })
	return order
}

// evaluateClass matches class k's detections to its ground truth on every
// image (in order), counting both in cr, and accumulates the matches into
// tab for every area range and maxDets.
func (e *Evaluator) evaluateClass(k int, order []int, tab *prTable, cr *ClassResult) {
	var evals [numArea][]*imgEval
	for _, i := range order {
		gt, dt := e.classBoxes(i, k)
		cr.GT += len(gt)
		cr.Detections += len(dt)
		if len(gt) == 0 && len(dt) == 0 {
			continue
		}
		for a, ev := range matchImage(gt, dt) {
			evals[a] = append(evals[a], ev)
		}
	}
	for a := range numArea {
		for m, maxDet := range maxDets {
			accumulate(evals[a], maxDet, func(t int, q []float64, rc float64) {
				tab.recall[tab.rIdx(t, k, a, m)] = rc
				for r, v := range q {
					tab.precision[tab.pIdx(t, r, k, a, m)] = v
				}
			})
		}
	}
}

// classBoxes returns image i's ground truth and detections of class k.
func (e *Evaluator) classBoxes(i, k int) ([]xywh, []scored) {
	var gt []xywh
	for _, o := range e.ds.Images[i].Objects {
		if o.ClassID == k {
			gt = append(gt, toXYWH(o.Box))
		}
	}
	var dt []scored
	for _, d := range e.dets[i] {
		if d.ClassID == k {
			dt = append(dt, scored{d.Score, toXYWH(d.Box)})
		}
	}
	return gt, dt
}

// matchImage sorts one image's detections of a class by score (stable),
// keeps the best maxDets of them and matches them to the ground truth in
// each area range.
func matchImage(gt []xywh, dt []scored) [numArea]*imgEval {
	slices.SortStableFunc(dt, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	dt = dt[:min(len(dt), maxDets[numMaxDet-1])]
	ious := make([][]float64, len(dt))
	for d := range dt {
		ious[d] = make([]float64, len(gt))
		for g := range gt {
			ious[d][g] = iou(dt[d].box, gt[g])
		}
	}
	var evals [numArea]*imgEval
	for a, rng := range areaRanges {
		evals[a] = evaluateImg(gt, dt, ious, rng)
	}
	return evals
}

// accumulate is pycocotools' accumulate for one class, area range and
// maxDets: it pools the per-image results (in image-id order), sorts the
// detections by score and calls set with the sampled precision and the
// final recall at each IoU threshold. It calls nothing (leaving -1) when no
// image has this class or no ground truth is in range.
func accumulate(evals []*imgEval, maxDet int, set func(t int, q []float64, recall float64)) {
	if len(evals) == 0 {
		return
	}
	type ref struct {
		e *imgEval
		d int
	}
	var refs []ref
	npig := 0
	for _, e := range evals {
		for d := range min(maxDet, len(e.scores)) {
			refs = append(refs, ref{e, d})
		}
		for _, ig := range e.gtIgnore {
			if !ig {
				npig++
			}
		}
	}
	if npig == 0 {
		return
	}
	// numpy argsort(-scores, kind='mergesort') is stable.
	slices.SortStableFunc(refs, func(a, b ref) int { return cmp.Compare(b.e.scores[b.d], a.e.scores[a.d]) })
	nd := len(refs)
	rc := make([]float64, nd)
	pr := make([]float64, nd)
	q := make([]float64, numRecall)
	for t := range numIoU {
		tp, fp := 0.0, 0.0
		for i, r := range refs {
			if !r.e.dtIgnore[t][r.d] {
				if r.e.matched[t][r.d] {
					tp++
				} else {
					fp++
				}
			}
			rc[i] = tp / float64(npig)
			pr[i] = tp / (fp + tp + eps)
		}
		final := 0.0
		if nd > 0 {
			final = rc[nd-1]
		}
		// Make precision monotone: each point takes the best to its right.
		for i := nd - 1; i > 0; i-- {
			if pr[i] > pr[i-1] {
				pr[i-1] = pr[i]
			}
		}
		clear(q)
		for ri, thr := range recallThresholds {
			pi := sort.SearchFloat64s(rc, thr) // first rc[pi] >= thr
			if pi >= nd {
				break // unreachable recall: precision 0
			}
			q[ri] = pr[pi]
		}
		set(t, q, final)
	}
}
