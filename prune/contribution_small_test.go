package prune

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// pointwiseChain is x[1,3,6,6] → 1×1 conv "A" (4 channels) → 1×1 conv "B"
// (2 channels) → y: group 0 is A's four channels, read by B.
func pointwiseChain(rng *rand.Rand) *onnxpb.ModelProto {
	conv := func(name, in, out, w, b string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String("Conv"), Input: []string{in, w, b}, Output: []string{out}}
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("pointwise"),
			Node: []*onnxpb.NodeProto{conv("A", "x", "a", "wa", "ba"), conv("B", "a", "y", "wb", "bb")},
			Initializer: []*onnxpb.TensorProto{
				refitRandomTensor(rng, "wa", 4, 3, 1, 1), refitRandomTensor(rng, "ba", 4),
				refitRandomTensor(rng, "wb", 2, 4, 1, 1), refitRandomTensor(rng, "bb", 2),
			},
			Input:  []*onnxpb.ValueInfoProto{refitValueInfo("x", 1, 3, 6, 6)},
			Output: []*onnxpb.ValueInfoProto{refitValueInfo("y", 1, 2, 6, 6)},
		},
	}
}

// TestContributionPointwise: for 1×1 consumers a channel's contribution is
// Σ_o w_oc²·var(x_c) over the sum of the output variances, from the
// samples.
func TestContributionPointwise(t *testing.T) {
	refitInitORT(t)
	rng := rand.New(rand.NewPCG(21, 22))
	m := pointwiseChain(rng)
	var in refitSliceInputs
	for range 3 {
		v := make([]float32, 3*6*6)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		in = append(in, v)
	}
	a, err := Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Groups) == 0 || a.Groups[0].Channels != 4 || !a.Groups[0].Prunable {
		t.Fatalf("groups %+v, want A's 4 prunable channels first", a.Groups)
	}
	samples, err := CollectConvSamples(context.Background(), m, in, []string{"B"}, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Contribution(m, 0, samples)
	if err != nil {
		t.Fatal(err)
	}
	s := samples["B"]
	w, _ := onnx.TensorFloats(onnx.NewGraph(m).Initializer("wb"))
	var total float64
	for o := range 2 {
		total += stat.Variance(mat.Col(nil, o, s.Y), nil)
	}
	for c := range 4 {
		vx := stat.Variance(mat.Col(nil, c, s.X), nil)
		want := (float64(w[c])*float64(w[c]) + float64(w[4+c])*float64(w[4+c])) * vx / total
		if math.Abs(got[c]-want) > 1e-9*max(1, want) {
			t.Errorf("channel %d: contribution %g, want %g", c, got[c], want)
		}
	}

	oneInput := proto.Clone(m).(*onnxpb.ModelProto)
	oneInput.Graph.Node[1].Input = oneInput.Graph.Node[1].Input[:1]
	for _, c := range []struct {
		name    string
		g       int
		m       *onnxpb.ModelProto
		samples map[string]*ConvSamples
		want    string
	}{
		{"negative group", -1, m, samples, "contribution: no group -1"},
		{"group past the end", len(a.Groups), m, samples, "no group"},
		{"no samples", 0, m, map[string]*ConvSamples{}, "contribution of group 0: no samples of consumer B"},
		{"consumer gone", 0, &onnxpb.ModelProto{Graph: &onnxpb.GraphProto{}}, samples, "consumer B not in the model"},
		{"consumer without weight", 0, oneInput, samples, "consumer B not in the model"},
		{"other samples", 0, m, map[string]*ConvSamples{"B": {Node: "B", Cin: 5, Kh: 1, Kw: 1, X: s.X, Y: s.Y}}, "consumer B does not match its samples"},
	} {
		if _, err := a.Contribution(c.m, c.g, c.samples); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	// A consumer whose outputs never vary adds nothing to any channel.
	flat := *s
	flat.Y = mat.NewDense(s.Y.RawMatrix().Rows, 2, nil)
	if got, err := a.Contribution(m, 0, map[string]*ConvSamples{"B": &flat}); err != nil || got[0] != 0 || got[3] != 0 {
		t.Errorf("constant consumer outputs: %v, %v; want zeros", got, err)
	}
}

// TestSetConvParams: re-fitted weights and bias replace the node's; a
// conv without a bias gets one; sizes that do not match are errors naming
// the node and tensor.
func TestSetConvParams(t *testing.T) {
	m := pointwiseChain(rand.New(rand.NewPCG(23, 24)))
	g := onnx.NewGraph(m)
	a := m.Graph.Node[0]
	w := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if err := setConvParams(m, g, a, w, []float32{-1, -2, -3, -4}); err != nil {
		t.Fatal(err)
	}
	if got, _ := onnx.TensorFloats(g.Initializer("wa")); !slices.Equal(got, w) {
		t.Errorf("weights %v", got)
	}
	if got, _ := onnx.TensorFloats(g.Initializer("ba")); !slices.Equal(got, []float32{-1, -2, -3, -4}) {
		t.Errorf("bias %v", got)
	}
	for _, c := range []struct {
		name string
		n    *onnxpb.NodeProto
		w, b []float32
		want string
	}{
		{"no node", nil, w, nil, "convolution missing from the pruned model"},
		{"weights", a, w[:11], nil, `reconstruction of A: weight "wa" does not match the re-fitted 11 values`},
		{"bias", a, w, []float32{1}, `reconstruction of A: bias "ba" does not match`},
	} {
		if err := setConvParams(m, g, c.n, c.w, c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	b := m.Graph.Node[1]
	b.Input = append(b.Input[:2], "")
	if err := setConvParams(m, onnx.NewGraph(m), b, make([]float32, 8), []float32{0.5, 0.25}); err != nil {
		t.Fatal(err)
	}
	if len(b.Input) != 3 || b.Input[2] != "B.refit_bias" {
		t.Fatalf("inputs %v, want a new bias B.refit_bias", b.Input)
	}
	if got, _ := onnx.TensorFloats(onnx.NewGraph(m).Initializer("B.refit_bias")); !slices.Equal(got, []float32{0.5, 0.25}) {
		t.Errorf("new bias %v", got)
	}
}

// TestWeightsAndBiasOf: a conv's weights and bias as the pruned model
// holds them; zeros for a conv without a bias (or one that cannot be
// read), nil weights for a node that is not there.
func TestWeightsAndBiasOf(t *testing.T) {
	m := pointwiseChain(rand.New(rand.NewPCG(25, 26)))
	g := onnx.NewGraph(m)
	wantW, _ := onnx.TensorFloats(g.Initializer("wa"))
	wantB, _ := onnx.TensorFloats(g.Initializer("ba"))
	if got := weightsOf(m, "A"); !slices.Equal(got, wantW) {
		t.Errorf("weights of A: %v, want %v", got, wantW)
	}
	if got := biasOf(m, "A", 4); !slices.Equal(got, wantB) {
		t.Errorf("bias of A: %v, want %v", got, wantB)
	}
	if got := weightsOf(m, "nope"); got != nil {
		t.Errorf("weights of a missing node: %v", got)
	}
	m.Graph.Node[1].Input = m.Graph.Node[1].Input[:2]
	if got := biasOf(m, "B", 2); !slices.Equal(got, []float32{0, 0}) {
		t.Errorf("bias of B without one: %v, want zeros", got)
	}
	m.Graph.Node[0].Input[2] = "x" // not an initializer
	if got := biasOf(m, "A", 4); !slices.Equal(got, make([]float32, 4)) {
		t.Errorf("unreadable bias of A: %v, want zeros", got)
	}
}
