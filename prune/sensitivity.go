package prune

import (
	"context"
	"fmt"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// SensitivityRatios are the shares of a group the sensitivity analysis
// removes, alone, to see what each costs.
var SensitivityRatios = []float64{0.25, 0.5}

// Scorer measures a model's accuracy for the sensitivity analysis, higher
// is better (cmd/edgedet: COCO mAP@0.5:0.95 on a few labelled images).
type Scorer func(ctx context.Context, m *onnxpb.ModelProto) (float64, error)

// Sensitivity is what pruning each group alone costs.
type Sensitivity struct {
	// Base is the unpruned model's score.
	Base float64
	// Ratios are the shares removed (SensitivityRatios).
	Ratios []float64
	// Loss is, per group ID, Base minus the score with that group's
	// lowest-scoring share Ratios[i] removed (0 where that removes nothing).
	Loss map[int][]float64
}

// sensitivity prunes each group alone at each SensitivityRatios share (its
// lowest-scoring channels) and scores the result. progress, if set, is
// called after each variant.
func sensitivity(ctx context.Context, a *Analysis, m *onnxpb.ModelProto, scores map[int][]float64,
	score Scorer, progress func(done, total int)) (*Sensitivity, error) {
	base, err := score(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("sensitivity of the unpruned model: %w", err)
	}
	ids := sortedKeys(scores)
	s := &Sensitivity{Base: base, Ratios: SensitivityRatios, Loss: map[int][]float64{}}
	done, total := 0, len(ids)*len(SensitivityRatios)
	for _, id := range ids {
		for _, r := range SensitivityRatios {
			loss := 0.0
			if plan := lowestShare(scores[id], r); len(plan) > 0 {
				p, err := Apply(m, a, map[int][]int{id: plan})
				if err != nil {
					return nil, err
				}
				v, err := score(ctx, p)
				if err != nil {
					return nil, fmt.Errorf("sensitivity of group %d: %w", id, err)
				}
				loss = base - v
			}
			s.Loss[id] = append(s.Loss[id], loss)
			if done++; progress != nil {
				progress(done, total)
			}
		}
	}
	return s, nil
}
