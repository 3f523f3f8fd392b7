package prune

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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
