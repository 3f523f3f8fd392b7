package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// DeltaInterval is how sure a comparison of two models on one dataset is:
// the 95 % intervals of the differences (second − first) of mAP@.5:.95
// and mAP@.5 over bootstrap resamples of the images. The images, not the
// objects, are resampled, and both models are scored on the same
// resample (a paired bootstrap): what varies is which pictures the
// comparison happened to be made on. An interval that contains 0 says
// the dataset cannot tell the two models apart.
type DeltaInterval struct {
	Resamples int        `json:"resamples"`
	AP        [2]float64 `json:"ap"`
	AP50      [2]float64 `json:"ap50"`
}

// BootstrapDelta draws resamples sets of len(ds.Images) images with
// replacement (reproducibly from seed), scores a's and b's detections
// (by image ID, as Evaluator.Detections returns them) on each, and returns
// the 2.5th and 97.5th percentiles of the differences b − a. An image
// drawn twice counts twice. Each image is matched to its ground truth
// once; a resample only pools the matches of its draws (pycocotools'
// accumulate), so a thousand resamples cost about as much as a few
// evaluations. It uses all CPUs and stops when ctx is cancelled.
func BootstrapDelta(ctx context.Context, ds *Dataset, a, b map[int][]Detection, resamples int, seed uint64) (*DeltaInterval, error) {
	switch {
	case resamples < 2:
		return nil, fmt.Errorf("bootstrap: %d resamples, need at least 2", resamples)
	case len(ds.Images) == 0:
		return nil, errors.New("bootstrap: the dataset has no images")
	}
	ma, err := matchAll(ds, a)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: first model: %w", err)
	}
	mb, err := matchAll(ds, b)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: second model: %w", err)
	}
	dAP := make([]float64, resamples)
	dAP50 := make([]float64, resamples)
	workers := min(runtime.GOMAXPROCS(0), resamples)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			draws := make([]int, len(ds.Images))
			for i := w; i < resamples; i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				for j := range draws {
					draws[j] = rng.IntN(len(draws))
				}
				apA, ap50A := ma.score(draws)
				apB, ap50B := mb.score(draws)
				dAP[i], dAP50[i] = apB-apA, ap50B-ap50A
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return &DeltaInterval{Resamples: resamples, AP: interval95(dAP), AP50: interval95(dAP50)}, nil
}

// matches are one model's per-image matches to the ground truth in the
// area range "all": byImage[i][k] for image position i and class k (nil
// when the image has neither ground truth nor detections of the class).
type matches struct {
	classes int
	byImage [][]*imgEval
}

// matchAll matches dets (by image ID) to ds's ground truth, image by image
// and class by class, as Evaluate does.
func matchAll(ds *Dataset, dets map[int][]Detection) (*matches, error) {
	e := NewEvaluator(ds)
	for id, d := range dets {
		if err := e.Add(id, d); err != nil {
			return nil, err
		}
	}
	m := &matches{classes: len(ds.Names), byImage: make([][]*imgEval, len(ds.Images))}
	for i := range ds.Images {
		m.byImage[i] = make([]*imgEval, m.classes)
		for k := range m.classes {
			if gt, dt := e.classBoxes(i, k); len(gt) > 0 || len(dt) > 0 {
				m.byImage[i][k] = matchImage(gt, dt)[areaAll]
			}
		}
	}
	return m, nil
}

// score is mAP@.5:.95 and mAP@.5 (area all, 100 detections) of the images
// at positions draws, in that order — what Evaluate's summary gives for a
// dataset of those images with ascending IDs; -1 without ground truth.
func (m *matches) score(draws []int) (ap, ap50 float64) {
	var sum, sum50 float64
	var n, n50 int
	evals := make([]*imgEval, 0, len(draws))
	for k := range m.classes {
		evals = evals[:0]
		for _, i := range draws {
			if e := m.byImage[i][k]; e != nil {
				evals = append(evals, e)
			}
		}
		accumulate(evals, maxDets[m100], func(t int, q []float64, _ float64) {
			for _, v := range q {
				sum += v
				n++
				if t == 0 {
					sum50 += v
					n50++
				}
			}
		})
	}
	if n == 0 {
		return -1, -1
	}
	return sum / float64(n), sum50 / float64(n50)
}

// interval95 is the 2.5th and 97.5th percentile of x (nearest rank: the
// ⌈p·n⌉-th smallest, which for 0 < p < 1 is always one of x); it sorts x,
// which must not be empty.
func interval95(x []float64) [2]float64 {
	slices.Sort(x)
	rank := func(p float64) float64 { return x[int(math.Ceil(p*float64(len(x))))-1] }
	return [2]float64{rank(0.025), rank(0.975)}
}
