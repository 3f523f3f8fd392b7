package prune_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// convAScore is a Scorer to which only convA's channels matter: 1, minus
// 0.1 per 8 of its channels removed.
func convAScore(calls *int) prune.Scorer {
	return func(_ context.Context, m *onnxpb.ModelProto) (float64, error) {
		*calls++
		w := onnx.NewGraph(m).Initializer("convA.weight")
		if w == nil {
			return 0, errors.New("no convA.weight")
		}
		return 1 - 0.1*float64(32-w.GetDims()[0])/8, nil
	}
}

// TestPruneSensitivity: each group pruned alone at 25 % and 50 % is scored;
// a flops target is then spent on the group whose pruning costs nothing.
func TestPruneSensitivity(t *testing.T) {
	m := chainModel(t)
	opt := normOptions("flops=0.7")
	calls := 0
	opt.Score = convAScore(&calls)
	var progress [][2]int
	opt.Progress = func(done, total int) { progress = append(progress, [2]int{done, total}) }
	_, rep := runPrune(t, m, nil, opt)
	s := rep.Sensitivity
	if s == nil {
		t.Fatal("no sensitivity in the report")
	}
	ga, gb := groupOf(t, rep, "convA"), groupOf(t, rep, "convB")
	near := func(got []float64, want ...float64) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-9 {
				return false
			}
		}
		return true
	}
	if s.Base != 1 || !slices.Equal(s.Ratios, prune.SensitivityRatios) || !near(s.Loss[ga], 0.1, 0.2) || !near(s.Loss[gb], 0, 0) {
		t.Errorf("sensitivity %+v", s)
	}
	if calls != 5 {
		t.Errorf("scored %d models, want the original and 2 groups × 2 ratios", calls)
	}
	if !slices.Equal(progress, [][2]int{{1, 4}, {2, 4}, {3, 4}, {4, 4}}) {
		t.Errorf("progress %v", progress)
	}
	if _, ok := rep.Plan[ga]; ok || len(rep.Plan[gb]) != 16 {
		t.Errorf("plan %v: want only convB's group, at 50 %%", rep.Plan)
	}

	opt.Score = func(context.Context, *onnxpb.ModelProto) (float64, error) { return 0, errors.New("no labels") }
	if _, _, err := prune.Prune(context.Background(), m, nil, opt); err == nil || !strings.Contains(err.Error(), "sensitivity of the unpruned model: no labels") {
		t.Errorf("failing scorer: %v", err)
	}
	// A scorer that fails on a pruned variant: the error names the group.
	calls = 0
	opt.Score = func(ctx context.Context, m *onnxpb.ModelProto) (float64, error) {
		if calls++; calls > 1 {
			return 0, errors.New("variant unscorable")
		}
		return 1, nil
	}
	if _, _, err := prune.Prune(context.Background(), m, nil, opt); err == nil || !strings.Contains(err.Error(), "sensitivity of group 0: variant unscorable") {
		t.Errorf("scorer failing on a variant: %v", err)
	}
}
