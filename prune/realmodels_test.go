package prune_test

import (
	"bytes"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

var yoloxShape = []int64{1, 3, 416, 416}

// lowest returns the indices of the k smallest scores, sorted.
func lowest(scores []float64, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(x, y int) bool { return scores[idx[x]] < scores[idx[y]] })
	out := slices.Clone(idx[:k])
	slices.Sort(out)
	return out
}

// quarterPlan picks the 25% lowest-L2 channels of every prunable group.
func quarterPlan(t *testing.T, a *prune.Analysis) (map[int][]int, int) {
	t.Helper()
	remove := map[int][]int{}
	total := 0
	for _, g := range a.Groups {
		if !g.Prunable || g.Channels/4 == 0 {
			continue
		}
		imp, err := a.Importance(g.ID, "l2")
		if err != nil {
			t.Fatal(err)
		}
		remove[g.ID] = lowest(imp, g.Channels/4)
		total += g.Channels / 4
	}
	return remove, total
}

func TestYOLOXNano(t *testing.T) {
	m, err := onnx.LoadModel(filepath.Join(testenv.Shared(t, "models"), "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	a := analyze(t, m)
	var table bytes.Buffer
	a.Table(&table)
	t.Logf("yolox_nano_416 groups:\n%s", table.String())

	prunable := 0
	for _, g := range a.Groups {
		if g.Prunable {
			prunable++
		}
	}
	if prunable < 30 {
		t.Errorf("%d prunable groups, want the backbone, neck and head convs (>= 30)", prunable)
	}
	// The prediction convs of all three levels are blocked.
	for _, level := range []string{"0", "1", "2"} {
		for _, head := range []string{"cls_preds", "reg_preds", "obj_preds"} {
			name := "/head/" + head + "." + level + "/Conv"
			found := false
			for _, g := range a.Groups {
				if slices.Contains(g.Producers, name) {
					found = true
					if g.Prunable || !strings.Contains(g.Reason, "/head/") {
						t.Errorf("head conv %s: prunable %v, reason %q", name, g.Prunable, g.Reason)
					}
				}
			}
			if !found {
				t.Errorf("no group for head conv %s", name)
			}
		}
	}

	p0, m0, err := prune.Cost(m, yoloxShape)
	if err != nil {
		t.Fatalf("cost of the full model: %v", err)
	}
	// YOLOX-Nano: 0.91M parameters, 1.08 GFLOPs (= 2·MACs) at 416.
	if p0 < 880_000 || p0 > 940_000 || m0 < 500_000_000 || m0 > 560_000_000 {
		t.Errorf("full model: %d params, %d MACs; want about 0.91M and 0.54G", p0, m0)
	}

	remove, channels := quarterPlan(t, a)
	pruned, err := prune.Apply(m, a, remove)
	if err != nil {
		t.Fatal(err)
	}
	p1, m1, err := prune.Cost(pruned, yoloxShape)
	if err != nil {
		t.Fatalf("cost of the pruned model: %v", err)
	}
	t.Logf("removed %d channels in %d groups: params %d → %d (%.1f%%), MACs %d → %d (%.1f%%)",
		channels, len(remove), p0, p1, 100*float64(p1)/float64(p0), m0, m1, 100*float64(m1)/float64(m0))
	if p1 >= p0 || m1 >= m0 {
		t.Errorf("pruned model is not smaller: params %d → %d, MACs %d → %d", p0, p1, m0, m1)
	}

	in := make([]float32, 3*416*416)
	for i, v := range randomInput(3, len(in)) {
		in[i] = (v + 1) * 127.5 // BGR 0..255, as the model expects
	}
	out := runModel(t, pruned, yoloxShape, in)["output"]
	if !slices.Equal(out.shape, []int64{1, 3549, 85}) {
		t.Fatalf("pruned output shape %v, want [1 3549 85]", out.shape)
	}
	for i, v := range out.data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("pruned output[%d] = %v", i, v)
		}
	}
}

// TestPruneSharedModelsExact makes the 25% lowest-L2 channels of every
// prunable group of every float model in the shared models directory
// exactly zero (filters and biases of the producing and depthwise Convs,
// shift and mean of BatchNormalization), so that they stay zero through
// the activations these models use (SiLU, ReLU, LeakyReLU), and checks
// that removing them changes no output: this checks every cut Apply makes
// on real graphs. Quantised models have no groups and are skipped.
func TestPruneSharedModelsExact(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(testenv.Shared(t, "models"), "*.onnx"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no shared models: %v", err)
	}
	tested := 0
	for _, path := range paths {
		m, err := onnx.LoadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		a := analyze(t, m)
		remove, channels := quarterPlan(t, a)
		if len(remove) == 0 {
			t.Logf("%s: no prunable groups", filepath.Base(path))
			continue
		}
		tested++
		t.Run(filepath.Base(path), func(t *testing.T) {
			zeroed := proto.Clone(m).(*onnxpb.ModelProto)
			for id, idx := range remove {
				g := a.Groups[id]
				for _, name := range slices.Concat(g.Producers, g.Nodes) {
					n := node(t, zeroed, name)
					switch n.GetOpType() {
					case "Conv":
						if d := dims(t, zeroed, n.GetInput()[1]); d[0] != int64(g.Channels) {
							t.Fatalf("group %d: %s has %d rows for %d channels", id, name, d[0], g.Channels)
						}
						silence(t, zeroed, name, idx)
					case "BatchNormalization":
						setRows(t, zeroed, n.GetInput()[2], idx, 0)
						setRows(t, zeroed, n.GetInput()[3], idx, 0)
					}
				}
			}
			var shape []int64
			for _, d := range zeroed.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim() {
				shape = append(shape, max(1, d.GetDimValue()))
			}
			pruned, err := prune.Apply(zeroed, analyze(t, zeroed), remove)
			if err != nil {
				t.Fatal(err)
			}
			n := 1
			for _, d := range shape {
				n *= int(d)
			}
			in := randomInput(4, n)
			for i := range in {
				in[i] *= 3
			}
			sameOutputs(t, runModel(t, pruned, shape, in), runModel(t, zeroed, shape, in), 1e-4)
			t.Logf("removed %d channels in %d groups: outputs unchanged", channels, len(remove))
		})
	}
	if tested == 0 {
		t.Fatal("no shared model has prunable groups")
	}
}
