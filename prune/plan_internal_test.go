package prune

import (
	"slices"
	"testing"
)

// TestLowestShare: the lowest-scoring share, the remaining count rounded up
// to channelAlign for groups of 16 channels or more, never the whole group.
func TestLowestShare(t *testing.T) {
	scores := make([]float64, 32)
	for i := range scores {
		scores[i] = float64((i * 7) % 32) // a permutation of 0..31
	}
	lowest := func(n int) []int {
		idx := keptChannels(32, nil)
		slices.SortFunc(idx, func(x, y int) int { return int(scores[x] - scores[y]) })
		idx = slices.Clone(idx[:n])
		slices.Sort(idx)
		return idx
	}
	for _, c := range []struct {
		r    float64
		want int
	}{{0, 0}, {0.2, 0}, {0.25, 8}, {0.3, 8}, {0.5, 16}, {0.99, 24}} {
		if got := lowestShare(scores, c.r); !slices.Equal(got, lowest(c.want)) {
			t.Errorf("share %g: %v, want the %d lowest %v", c.r, got, c.want, lowest(c.want))
		}
	}
	small := []float64{5, 1, 4, 2, 3, 0}
	if got := lowestShare(small, 0.5); !slices.Equal(got, []int{1, 3, 5}) {
		t.Errorf("6 channels, share 0.5: %v", got)
	}
	if got := lowestShare(small, 1); len(got) != 5 {
		t.Errorf("share 1 removed %d of 6 channels, want 5", len(got))
	}
}

// TestGlobalFamily: step k removes the k lowest channels of the whole model
// (aligned), at most MaxGroupShare of any group, more as k grows.
func TestGlobalFamily(t *testing.T) {
	p := &planner{scores: map[int][]float64{
		0: {0.1, 0.2, 0.3, 0.4, 5, 6, 7, 8}, // small group: no alignment
		1: make([]float64, 16),
	}}
	for i := range p.scores[1] {
		p.scores[1][i] = 1 + float64(i)
	}
	family, steps := p.globalFamily([]int{0, 1})
	if steps != 24 {
		t.Errorf("%d steps, want one per channel", steps)
	}
	// family picks it for comparable (global) scores, else the uniform one.
	if _, n := (&planner{scores: p.scores, global: true}).family(); n != 24 {
		t.Errorf("global scores: family of %d steps, want 24", n)
	}
	uniform, n := (&planner{scores: p.scores}).family()
	if n != uniformSteps {
		t.Errorf("per-group scores: family of %d steps, want %d", n, uniformSteps)
	}
	// Step 1 (0.5 %) removes no channel of these groups: no entry at all.
	if got := uniform(1); len(got) != 0 {
		t.Errorf("uniform step 1: %v, want no group listed", got)
	}
	if got := uniform(uniformSteps); len(got[0]) != 4 || len(got[1]) != 8 {
		t.Errorf("uniform last step: %v, want half of each group", got)
	}
	if got := family(3); !slices.Equal(got[0], []int{0, 1, 2}) || len(got[1]) != 0 {
		t.Errorf("step 3: %v", got)
	}
	// Step 12: group 0 capped at 4; group 1 gets the other 8 (aligned: 8).
	got := family(12)
	if !slices.Equal(got[0], []int{0, 1, 2, 3}) || !slices.Equal(got[1], []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("step 12: %v", got)
	}
	prev := 0
	for k := range steps + 1 {
		n := 0
		for id, idx := range family(k) {
			n += len(idx)
			if 2*len(idx) > len(p.scores[id]) {
				t.Errorf("step %d: group %d lost %d of %d", k, id, len(idx), len(p.scores[id]))
			}
		}
		if n < prev {
			t.Errorf("step %d removes %d channels, step %d removed %d", k, n, k-1, prev)
		}
		prev = n
	}
}
