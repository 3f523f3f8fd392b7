package prune

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Internal tests that pin behaviours mutation testing (make mutate) showed
// the other tests did not.

// dropStale removes an original every reader traded for a copy, with its
// graph input entry (IR < 4), unless a graph output still names it.
func TestDropStaleOriginals(t *testing.T) {
	for _, c := range []struct {
		name     string
		outputs  []string
		wantKept bool
	}{
		{"read by no one", []string{"y"}, false},
		{"graph output", []string{"W"}, true},
	} {
		gp := &onnxpb.GraphProto{
			Initializer: []*onnxpb.TensorProto{onnx.Float32Vector("W", []float32{1, 2})},
			Input:       []*onnxpb.ValueInfoProto{refitValueInfo("x", 1, 2, 4, 4), refitValueInfo("W", 2)},
		}
		for _, o := range c.outputs {
			gp.Output = append(gp.Output, refitValueInfo(o))
		}
		ix := indexGraph(gp)
		ix.copied["W"] = true
		ix.dropStale(nil)
		hasInit := slices.ContainsFunc(gp.GetInitializer(), func(t *onnxpb.TensorProto) bool { return t.GetName() == "W" })
		var inputs []string
		for _, vi := range gp.GetInput() {
			inputs = append(inputs, vi.GetName())
		}
		wantInputs := []string{"x"}
		if c.wantKept {
			wantInputs = append(wantInputs, "W")
		}
		if hasInit != c.wantKept || !slices.Equal(inputs, wantInputs) {
			t.Errorf("%s: initializer kept %t, inputs %v; want kept %t, inputs %v", c.name, hasInit, inputs, c.wantKept, wantInputs)
		}
	}
}

// A plan Apply refuses is an error of reached, not a model to measure.
func TestReachedRefusedPlan(t *testing.T) {
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	a, err := Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	p := &planner{a: a, m: m, inShape: []int64{1, 3, 11, 13}, macs0: 1}
	ok, err := p.reached(context.Background(), Target{FLOPs: 0.5}, map[int][]int{99: {0}})
	if err == nil || !strings.Contains(err.Error(), "no group 99") || ok {
		t.Errorf("reached %t, err %v; want Apply's error naming group 99", ok, err)
	}
}

// A group whose share at the threshold rounds to no channel gets no entry
// in the sensitivity family's plan (not an empty one).
func TestSensitivityFamilyNoEmptyEntries(t *testing.T) {
	p := &planner{
		scores: map[int][]float64{0: {0.3, 0.1}, 1: {8, 1, 7, 2, 6, 3, 5, 4}},
		sens:   map[int][]float64{0: {0.1, 0.2}, 1: {0.1, 0.3}},
	}
	family, _ := p.sensitivityFamily([]int{0, 1})
	// Step 1: both groups at 0.25 (loss 0.1); 0.25 of 2 channels is none.
	got := family(1)
	if _, listed := got[0]; listed || len(got) != 1 || !slices.Equal(got[1], []int{1, 3}) {
		t.Errorf("step 1: %v, want only group 1's two lowest [1 3]", got)
	}
}

// One sample per position suffices for the contribution importance and
// the refit; none does not.
func TestValidateSamplesBoundary(t *testing.T) {
	in := refitSliceInputs{make([]float32, 3*8*8)}
	opt := DefaultOptions()
	opt.Target, _ = ParseTarget("ratio=0.25")
	opt.Importance, opt.Refit, opt.InputShape = ImportanceContribution, true, []int64{1, 3, 8, 8}
	opt.Samples = 1
	if err := opt.validate(in); err != nil {
		t.Errorf("samples 1: %v, want valid", err)
	}
	opt.Samples = 0
	if err := opt.validate(in); err == nil || !strings.Contains(err.Error(), "samples 0") {
		t.Errorf("samples 0: err %v, want it refused", err)
	}
}

// Two listed convs reading the same tensor are both sampled from it.
func TestCollectConvSamplesSharedInput(t *testing.T) {
	refitInitORT(t)
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	g := m.GetGraph()
	g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String("C"), OpType: proto.String("Conv"), Input: []string{"r", "wc"}, Output: []string{"yc"}})
	g.Initializer = append(g.Initializer, refitRandomTensor(rand.New(rand.NewPCG(5, 6)), "wc", 2, 3, 1, 1))
	g.Output = append(g.Output, refitValueInfo("yc"))
	in := refitSliceInputs{make([]float32, 3*11*13), make([]float32, 3*11*13)}
	for i := range in[1] {
		in[0][i], in[1][i] = float32(i%5)-2, float32(i%3)
	}
	s, err := CollectConvSamples(context.Background(), m, in, []string{"A", "C"}, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"A", "C"} {
		if n := len(s[name].Pos); n != 2*4 {
			t.Errorf("conv %s: %d samples, want 8 (4 per input)", name, n)
		}
	}
}

// A model ONNX Runtime refuses is an error of the sampling, not a crash.
func TestCollectConvSamplesRefusedModel(t *testing.T) {
	refitInitORT(t)
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	g := m.GetGraph()
	g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String("odd"), OpType: proto.String("NoSuchOp"), Input: []string{"ya"}, Output: []string{"z"}})
	g.Output = append(g.Output, refitValueInfo("z"))
	s, err := CollectConvSamples(context.Background(), m, refitSliceInputs{make([]float32, 3*11*13)}, []string{"A"}, 4, 1)
	if err == nil || !strings.Contains(err.Error(), "onnx runtime session") || s != nil {
		t.Errorf("samples %v, err %v; want ONNX Runtime's refusal", s, err)
	}
}

// A model input with a single channel (or any axis of size 1) is static:
// only a dynamic axis (0 or less) is refused, and only past the batch.
func TestRefitModelInputSizeOne(t *testing.T) {
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	m.Graph.Input[0] = refitValueInfo("x", 1, 1, 1, 8)
	if name, shape, err := refitModelInput(m); err != nil || name != "x" || !slices.Equal(shape, []int64{1, 1, 1, 8}) {
		t.Errorf("input [1 1 1 8]: %q %v %v, want x [1 1 1 8]", name, shape, err)
	}
}

// A conv's input size is fixed by its first sample: a later one of another
// size is an error naming both sizes, and nothing is drawn from it.
func TestRefitSampleInputSizeChange(t *testing.T) {
	c := &refitConv{input: "x", w: []float32{2}, b: []float32{0}, cout: 1, cin: 1, kh: 1, kw: 1,
		strideH: 1, strideW: 1, dilH: 1, dilW: 1, rng: rand.New(rand.NewPCG(1, 2)),
		samples: &ConvSamples{Node: "c", Cin: 1, Kh: 1, Kw: 1, X: mat.NewDense(4, 1, nil), Y: mat.NewDense(4, 1, nil)}}
	if err := c.sample(0, refitActivation{values: make([]float32, 16), shape: []int64{1, 1, 4, 4}}, 2); err != nil {
		t.Fatal(err)
	}
	err := c.sample(1, refitActivation{values: make([]float32, 9), shape: []int64{1, 1, 3, 3}}, 2)
	if err == nil || !strings.Contains(err.Error(), "from 4x4 to 3x3") || len(c.samples.Pos) != 2 {
		t.Errorf("err %v, %d samples; want the size change refused after 2", err, len(c.samples.Pos))
	}
}

// refitPositions draws k distinct sorted positions of n for every k < n
// (down to the first draw from a single candidate, k = n-1), and all n
// plus repeats for k >= n.
func TestRefitPositions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ n, k int }{{4, 3}, {9, 8}, {9, 2}, {16, 1}, {4, 4}, {3, 5}} {
		pos := refitPositions(rng, c.n, c.k)
		if len(pos) != c.k || !slices.IsSorted(pos) || pos[0] < 0 || pos[len(pos)-1] >= c.n {
			t.Errorf("n %d k %d: %v, want %d sorted positions in [0,%d)", c.n, c.k, pos, c.k, c.n)
			continue
		}
		if distinct := len(slices.Compact(slices.Clone(pos))); distinct != min(c.k, c.n) {
			t.Errorf("n %d k %d: %v has %d distinct positions, want %d", c.n, c.k, pos, distinct, min(c.k, c.n))
		}
	}
}

// Two samples are enough for a variance: every channel then contributes;
// one sample gives no contribution at all.
func TestContributionTwoSamples(t *testing.T) {
	refitInitORT(t)
	rng := rand.New(rand.NewPCG(21, 22))
	m := pointwiseChain(rng)
	v := make([]float32, 3*6*6)
	for j := range v {
		v[j] = float32(rng.NormFloat64())
	}
	a, err := Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, perConv := range []int{1, 2} {
		samples, err := CollectConvSamples(context.Background(), m, refitSliceInputs{v}, []string{"B"}, perConv, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Contribution(m, 0, samples)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range got {
			if perConv == 1 && x != 0 || perConv == 2 && !(x > 0) {
				t.Errorf("%d samples: contributions %v, want all %s", perConv, got, map[int]string{1: "0", 2: "> 0"}[perConv])
				break
			}
		}
	}
}

// A model without a graph has no cost, and says so.
func TestCostNoGraph(t *testing.T) {
	if p, m, err := Cost(&onnxpb.ModelProto{}, []int64{1, 3, 8, 8}); err == nil || !strings.Contains(err.Error(), "no graph") || p != 0 || m != 0 {
		t.Errorf("params %d, MACs %d, err %v; want the missing graph named", p, m, err)
	}
}

// A ratio target lists every group it removes a channel of, also when the
// share rounds to a single channel.
func TestRatioPlanSingleChannel(t *testing.T) {
	p := &planner{scores: map[int][]float64{0: {0.4, 0.1, 0.3, 0.2}, 1: {0.5, 0.6}}}
	plan, err := p.plan(context.Background(), Target{Ratio: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || !slices.Equal(plan[0], []int{1}) {
		t.Errorf("ratio 0.25: %v, want group 0's lowest channel [1] only (a quarter of 2 channels is none)", plan)
	}
}
