package prune

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// TestContribution: on yolox_nano_416 and real frames, a group's channel
// contributions are non-negative shares of its consumers' output variance,
// and a channel whose consumer weights are zeroed contributes nothing while
// the others keep theirs.
func TestContribution(t *testing.T) {
	refitInitORT(t)
	m, err := onnx.LoadModel(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.FoldBatchNorm(m); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(testenv.Shared(t, "datasets", "coco128", "train"), "*.jpg"))
	sort.Strings(files)
	spec := detection.Spec{Format: detection.FormatYOLOX, InputWidth: 416, InputHeight: 416}.WithDefaults()
	inputs := refitNewImageInputs(t, spec, files[:8])
	a, err := Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	// The first prunable group of 32..128 channels with one producer.
	var g *Group
	for i := range a.Groups {
		c := &a.Groups[i]
		if c.Prunable && c.Channels >= 32 && c.Channels <= 128 && len(c.Producers) == 1 {
			g = c
			break
		}
	}
	if g == nil {
		t.Fatal("no suitable group")
	}
	all := make([]int, g.Channels)
	for i := range all {
		all[i] = i
	}
	cols, err := a.RemovedInputs(map[int][]int{g.ID: all})
	if err != nil {
		t.Fatal(err)
	}
	var convs []string
	for c := range cols {
		convs = append(convs, c)
	}
	slices.Sort(convs)
	samples, err := CollectConvSamples(context.Background(), m, inputs, convs, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	c0, err := a.Contribution(m, g.ID, samples)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range c0 {
		if v < 0 {
			t.Fatalf("negative contribution %v", c0)
		}
		sum += v
	}
	t.Logf("group %d (%d channels, %d consumers): contributions sum %.3f, max %.3f", g.ID, g.Channels, len(convs), sum, slices.Max(c0))
	if sum <= 0 {
		t.Fatal("all contributions zero")
	}
	// Zero consumer weights of the most contributing channel: it then adds nothing.
	top := slices.Index(c0, slices.Max(c0))
	graph := onnx.NewGraph(m)
	for conv, idx := range cols {
		n := nodeByName(m, conv)
		wt := graph.Initializer(n.GetInput()[1])
		w, _ := onnx.TensorFloats(wt)
		s := samples[conv]
		_, cout := s.Y.Dims()
		k := s.Kh * s.Kw
		for j, col := range idx {
			if j%g.Channels != top {
				continue
			}
			for o := range cout {
				clear(w[(o*s.Cin+col)*k : (o*s.Cin+col+1)*k])
			}
		}
		onnx.SetTensorFloats(wt, w)
	}
	c1, err := a.Contribution(m, g.ID, samples)
	if err != nil {
		t.Fatal(err)
	}
	if c1[top] != 0 {
		t.Errorf("channel %d with zeroed consumer weights contributes %g", top, c1[top])
	}
	for i := range c0 {
		if i != top && c1[i] != c0[i] {
			t.Errorf("channel %d changed: %g -> %g", i, c0[i], c1[i])
		}
	}
}
