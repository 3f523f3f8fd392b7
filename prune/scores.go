package prune

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Channel importance measures (Options.Importance).
const (
	// ImportanceContribution is the share of its consumers' output variance
	// a channel carries on calibration inputs (Analysis.Contribution):
	// comparable across groups, so a flops or latency target is spent where
	// it hurts least.
	ImportanceContribution = "contribution"
	// ImportanceL1 and ImportanceL2 are norms of the filters producing a
	// channel (Analysis.Importance).
	ImportanceL1 = "l1"
	ImportanceL2 = "l2"
)

// channelScores ranks every prunable group's channels: by contribution
// (sampled consumer activations of the unpruned model m) or filter norm.
func channelScores(ctx context.Context, a *Analysis, m *onnxpb.ModelProto, importance string,
	inputs onnx.Inputs, perImage int, status io.Writer) (map[int][]float64, error) {
	var samples map[string]*ConvSamples
	if importance == ImportanceContribution {
		all := map[int][]int{}
		for _, g := range a.Groups {
			if g.Prunable {
				all[g.ID] = keptChannels(g.Channels, nil)
			}
		}
		cols, err := a.RemovedInputs(all)
		if err != nil {
			return nil, err
		}
		convs := sortedNames(cols)
		fmt.Fprintf(status, "prune: measuring channel contributions at %d convolutions on %d calibration frames\n", len(convs), inputs.Len())
		if samples, err = CollectConvSamples(ctx, m, inputs, convs, perImage, 2); err != nil {
			return nil, fmt.Errorf("channel contributions: %w", err)
		}
	}
	scores := map[int][]float64{}
	for _, g := range a.Groups {
		if !g.Prunable {
			continue
		}
		var imp []float64
		var err error
		if samples != nil {
			imp, err = a.Contribution(m, g.ID, samples)
		} else {
			imp, err = a.Importance(g.ID, importance)
		}
		if err != nil {
			return nil, err
		}
		scores[g.ID] = imp
	}
	if len(scores) == 0 {
		return nil, errors.New("no prunable channel group in this model")
	}
	return scores, nil
}
