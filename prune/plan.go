package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// MaxGroupShare caps how much of one group a flops or latency target may
// remove.
const MaxGroupShare = 0.5

// ErrUnreachable is returned when a flops or latency target cannot be met
// by pruning at most MaxGroupShare of each prunable group.
var ErrUnreachable = errors.New("not reachable")

// channelAlign is the multiple a pruned group's remaining channels are
// rounded up to (groups of at least 2× as many channels): ONNX Runtime's
// CPU kernels work in blocks of 8 (and 16 with AVX-512), and an odd
// channel count made pruned yolox_nano slower here, not faster.
const channelAlign = 8

// uniformSteps is the number of uniform shares (0, 0.5 %, ...,
// MaxGroupShare) the uniform family offers.
const uniformSteps = 100

// planner chooses the channels to remove for a target.
type planner struct {
	a       *Analysis
	m       *onnxpb.ModelProto // the analysed (BN-folded) model
	orig    *onnxpb.ModelProto // the model as given, for latency
	scores  map[int][]float64  // per group, per channel: low = remove first
	global  bool               // scores are comparable across groups (contribution)
	sens    map[int][]float64  // per group, score lost at SensitivityRatios (nil: no analysis)
	inShape []int64
	macs0   int64
	open    latency.Open // for a latency target
	status  io.Writer
}

// plan returns the channels to remove. Ratio: the lowest-scoring share of
// every group. FLOPs and Latency: a family of plans that prune more and
// more — groups by their measured score loss (with the sensitivity
// analysis), else the lowest-scoring channels of the whole model
// (comparable scores), else a uniform share — searched by bisection for the
// least pruning that reaches the target (multiply-adds by Cost, latency
// measured against the original).
func (p *planner) plan(ctx context.Context, t Target) (map[int][]int, error) {
	if t.Ratio > 0 {
		plan := map[int][]int{}
		for id, sc := range p.scores {
			if idx := lowestShare(sc, t.Ratio); len(idx) > 0 {
				plan[id] = idx
			}
		}
		return plan, nil
	}
	family, steps := p.family()
	lo, hi := 0, steps
	var best map[int][]int
	for lo < hi {
		mid := (lo + hi) / 2
		plan := family(mid)
		ok, err := p.reached(ctx, t, plan)
		if err != nil {
			return nil, err
		}
		if ok {
			best, hi = plan, mid
		} else {
			lo = mid + 1
		}
	}
	if best == nil {
		if ok, err := p.reached(ctx, t, family(steps)); err != nil || !ok {
			return nil, fmt.Errorf("%w by pruning at most %.0f %% of each prunable group", ErrUnreachable, 100*MaxGroupShare)
		}
		best = family(steps)
	}
	return best, nil
}

// reached tells whether plan meets a flops or latency target.
func (p *planner) reached(ctx context.Context, t Target, plan map[int][]int) (bool, error) {
	pm, err := Apply(p.m, p.a, plan)
	if err != nil {
		return false, err
	}
	if t.FLOPs > 0 {
		_, macs, err := Cost(pm, p.inShape)
		return float64(macs) <= t.FLOPs*float64(p.macs0), err
	}
	l0, l1, err := latency.PairedModels(ctx, p.open, p.orig, pm, "original", "pruned model")
	if err != nil {
		return false, err
	}
	ratio := float64(l1) / float64(l0)
	fmt.Fprintf(p.status, "prune: candidate at %.1f %% of the latency\n", 100*ratio)
	return ratio <= t.Latency, nil
}

// family returns plans indexed 0..steps, pruning more as the index grows.
func (p *planner) family() (func(int) map[int][]int, int) {
	ids := sortedKeys(p.scores)
	switch {
	case p.sens != nil:
		return p.sensitivityFamily(ids)
	case p.global:
		return p.globalFamily(ids)
	}
	return func(k int) map[int][]int {
		plan := map[int][]int{}
		for _, id := range ids {
			if idx := lowestShare(p.scores[id], MaxGroupShare*float64(k)/uniformSteps); len(idx) > 0 {
				plan[id] = idx
			}
		}
		return plan
	}, uniformSteps
}

// sensitivityFamily thresholds the measured loss: at step k each group is
// pruned at the largest ratio whose loss is within the k-th smallest loss.
func (p *planner) sensitivityFamily(ids []int) (func(int) map[int][]int, int) {
	var losses []float64
	for _, id := range ids {
		losses = append(losses, p.sens[id]...)
	}
	slices.Sort(losses)
	losses = slices.Compact(losses)
	return func(k int) map[int][]int {
		plan := map[int][]int{}
		if k == 0 {
			return plan
		}
		tau := losses[min(k, len(losses))-1]
		for _, id := range ids {
			share := 0.0
			for i, r := range SensitivityRatios {
				if p.sens[id][i] <= tau && r <= MaxGroupShare {
					share = r
				}
			}
			if idx := lowestShare(p.scores[id], share); share > 0 && len(idx) > 0 {
				plan[id] = idx
			}
		}
		return plan
	}, len(losses)
}

// globalFamily removes the k lowest-scoring channels of the whole model,
// at most MaxGroupShare of any group.
func (p *planner) globalFamily(ids []int) (func(int) map[int][]int, int) {
	type ch struct {
		group, idx int
		score      float64
	}
	var all []ch
	for _, id := range ids {
		for i, v := range p.scores[id] {
			all = append(all, ch{id, i, v})
		}
	}
	slices.SortStableFunc(all, func(x, y ch) int { return cmp.Compare(x.score, y.score) })
	return func(k int) map[int][]int {
		plan := map[int][]int{}
		for _, c := range all {
			if k == 0 {
				break
			}
			if float64(len(plan[c.group])+1) > MaxGroupShare*float64(len(p.scores[c.group])) {
				continue
			}
			plan[c.group] = append(plan[c.group], c.idx)
			k--
		}
		channels := map[int]int{}
		for id := range plan {
			channels[id] = len(p.scores[id])
		}
		return sortPlan(plan, channels)
	}, len(all)
}

// sortPlan aligns each group's removal (given lowest score first; channels
// groups[id] in the group) so the remaining count is a multiple of
// channelAlign, and sorts the indices.
func sortPlan(plan map[int][]int, channels map[int]int) map[int][]int {
	for id, idx := range plan {
		if c := channels[id]; c >= 2*channelAlign {
			kept := (c - len(idx) + channelAlign - 1) / channelAlign * channelAlign
			idx = idx[:c-kept]
		}
		if len(idx) == 0 {
			delete(plan, id)
			continue
		}
		slices.Sort(idx)
		plan[id] = idx
	}
	return plan
}

// lowestShare is the lowest-scoring share r of a group's channels, the
// remaining count aligned to channelAlign, sorted.
func lowestShare(scores []float64, r float64) []int {
	idx := keptChannels(len(scores), nil)
	slices.SortStableFunc(idx, func(x, y int) int { return cmp.Compare(scores[x], scores[y]) })
	n := min(int(r*float64(len(idx))), len(idx)-1)
	plan := sortPlan(map[int][]int{0: slices.Clone(idx[:max(n, 0)])}, map[int]int{0: len(scores)})
	return plan[0]
}

// keptChannels are the indices 0..n-1 not in removed (sorted).
func keptChannels(n int, removed []int) []int {
	kept := make([]int, 0, n-len(removed))
	for i := range n {
		if _, found := slices.BinarySearch(removed, i); !found {
			kept = append(kept, i)
		}
	}
	return kept
}

func sortedKeys[V any](m map[int]V) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
