package eval

import (
	"errors"
	"fmt"
)

// ErrNoReference is returned by Agreement when the reference detections
// have nothing at or above the score that makes them ground truth.
var ErrNoReference = errors.New("no reference detections to compare with")

// Agreement scores the detections got against ref on the same images
// (got[i] and ref[i] are image i's) as COCO AP@[.50:.95], taking ref's
// detections that score at least minScore as the ground truth: 1 when got
// finds the same objects in the same places, and ranks them above what
// ref does not find. It compares a quantized (or pruned) model with its
// FP32 original on unlabelled frames. Class ids must lie in [0, classes).
func Agreement(ref, got [][]Detection, classes int, minScore float64) (float64, error) {
	if len(ref) != len(got) {
		return 0, fmt.Errorf("agreement: %d reference images, %d compared", len(ref), len(got))
	}
	if classes <= 0 {
		return 0, fmt.Errorf("agreement: %d classes", classes)
	}
	ds := &Dataset{Names: make([]string, classes)}
	for i, dets := range ref {
		img := Image{ID: i + 1}
		for _, d := range dets {
			if d.Score < minScore {
				continue
			}
			if d.ClassID < 0 || d.ClassID >= classes {
				return 0, fmt.Errorf("agreement: reference image %d: class id %d is outside the %d classes", i, d.ClassID, classes)
			}
			img.Objects = append(img.Objects, Object{ClassID: d.ClassID, Box: d.Box})
		}
		ds.Images = append(ds.Images, img)
	}
	e := NewEvaluator(ds)
	for i, dets := range got {
		if err := e.Add(i+1, dets); err != nil {
			return 0, fmt.Errorf("agreement: %w", err)
		}
	}
	res := e.Evaluate()
	if res.Objects == 0 {
		return 0, fmt.Errorf("%w (none scores %g or more on %d images)", ErrNoReference, minScore, len(ref))
	}
	return res.Summary.AP, nil
}
