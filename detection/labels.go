package detection

import (
	"fmt"
	"maps"
	"slices"

	"github.com/edgedet/edgedet/internal/labels"
)

// ClassLabels returns the class names of a model whose output scores nc
// classes (0 when the layout does not say, as with end2end): the spec's
// Labels, else the names in its LabelsFile, else the 80 COCO names when nc
// is 80 or unknown, which coco then reports. When nc is known the names
// must number nc.
func (s Spec) ClassLabels(nc int) (names []string, coco bool, err error) {
	names = s.Labels
	if names == nil && s.LabelsFile != "" {
		if names, err = labels.Load(s.LabelsFile); err != nil {
			return nil, false, err
		}
	}
	if names == nil && (nc == len(labels.COCO80) || nc == 0) {
		names, coco = labels.COCO80, true
	}
	if nc != 0 && len(names) != nc {
		return nil, false, fmt.Errorf("%d labels for %d classes; set labels or labels_file", len(names), nc)
	}
	return names, coco, nil
}

// NewFilter builds the Filter for a model with these class labels: every
// class needs at least threshold, a label in minScores its own minimum
// instead, and when allow is not empty only its labels are kept. A label
// in allow or minScores that the model does not have is an error naming
// it. MinArea is left 0: it counts frame pixels, which the caller knows.
func NewFilter(labels []string, threshold float32, allow []string, minScores map[string]float32) (Filter, error) {
	index := make(map[string]int, len(labels))
	for i, l := range labels {
		index[l] = i
	}
	f := Filter{MinScore: make(map[int]float32, len(labels))}
	if len(allow) > 0 {
		f.Allow = map[int]bool{}
		for _, l := range allow {
			id, ok := index[l]
			if !ok {
				return Filter{}, fmt.Errorf("allow_labels: %q is not a label of the model", l)
			}
			f.Allow[id] = true
		}
	}
	for i := range labels {
		f.MinScore[i] = threshold
	}
	for _, l := range slices.Sorted(maps.Keys(minScores)) {
		id, ok := index[l]
		if !ok {
			return Filter{}, fmt.Errorf("min_scores: %q is not a label of the model", l)
		}
		f.MinScore[id] = minScores[l]
	}
	return f, nil
}
