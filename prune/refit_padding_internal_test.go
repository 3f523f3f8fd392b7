package prune

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestRefitCollectPadding samples every output position (borders
// included) of Convs whose padding is odd or implicit — SAME_UPPER and
// SAME_LOWER with an odd total, VALID, explicit uneven pads with dilation
// and strides — and checks each sample against ONNX Runtime's output.
func TestRefitCollectPadding(t *testing.T) {
	refitInitORT(t)
	rng := rand.New(rand.NewPCG(13, 14))
	str := func(name, v string) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
	}
	conv := func(name string, w string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String("Conv"),
			Input: []string{"x", w}, Output: []string{name + "_out"}, Attribute: attrs}
	}
	names := []string{"U", "L", "V", "D"}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("padding"),
			Node: []*onnxpb.NodeProto{
				conv("U", "w22", str("auto_pad", "SAME_UPPER")),
				conv("L", "w24", str("auto_pad", "SAME_LOWER"), refitIntsAttr("strides", 2, 2)),
				conv("V", "w33", str("auto_pad", "VALID"), refitIntsAttr("strides", 2, 1)),
				conv("D", "w33", refitIntsAttr("pads", 2, 1, 0, 3), refitIntsAttr("dilations", 2, 3), refitIntsAttr("strides", 1, 2)),
			},
			Initializer: []*onnxpb.TensorProto{
				refitRandomTensor(rng, "w22", 2, 3, 2, 2), refitRandomTensor(rng, "w24", 3, 3, 2, 4),
				refitRandomTensor(rng, "w33", 2, 3, 3, 3),
			},
			Input: []*onnxpb.ValueInfoProto{refitValueInfo("x", 1, 3, 9, 10)},
			Output: []*onnxpb.ValueInfoProto{refitValueInfo("U_out"), refitValueInfo("L_out"),
				refitValueInfo("V_out"), refitValueInfo("D_out")},
		},
	}
	var in refitSliceInputs
	for range 2 {
		v := make([]float32, 3*9*10)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		in = append(in, v)
	}
	samples, err := CollectConvSamples(context.Background(), m, in, names, 90, 5) // 90 = the largest output map
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != len(names) {
		t.Fatalf("%d convs sampled, want %d", len(samples), len(names))
	}
	refitCheckAgainstORT(t, m, in, samples, 1e-5)
}

// TestRefitCollectErrors: a cancelled context stops sampling, and a Conv
// on the model input whose kernel does not fit the image is an error (ONNX
// Runtime's, which refuses to run the model before any sample is drawn).
func TestRefitCollectErrors(t *testing.T) {
	refitInitORT(t)
	rng := rand.New(rand.NewPCG(15, 16))
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("errors"),
			Node: []*onnxpb.NodeProto{
				{Name: proto.String("ok"), OpType: proto.String("Conv"), Input: []string{"x", "w1"}, Output: []string{"ok_out"}},
				{Name: proto.String("big"), OpType: proto.String("Conv"), Input: []string{"x", "w5"}, Output: []string{"big_out"}},
			},
			Initializer: []*onnxpb.TensorProto{refitRandomTensor(rng, "w1", 2, 3, 1, 1), refitRandomTensor(rng, "w5", 2, 3, 5, 5)},
			Input:       []*onnxpb.ValueInfoProto{refitValueInfo("x", 1, 3, 4, 4)},
			Output:      []*onnxpb.ValueInfoProto{refitValueInfo("ok_out")},
		},
	}
	in := refitSliceInputs{make([]float32, 3*4*4)}
	good := proto.Clone(m).(*onnxpb.ModelProto)
	good.Graph.Node = good.Graph.Node[:1]
	if s, err := CollectConvSamples(context.Background(), good, in, []string{"ok"}, 4, 1); err != nil || len(s["ok"].Pos) != 4 {
		t.Fatalf("without the big conv: %v, %v", s, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := CollectConvSamples(ctx, good, in, []string{"ok"}, 4, 1); !errors.Is(err, context.Canceled) || s != nil {
		t.Errorf("cancelled: %v, %v; want the context's error", s, err)
	}
	if s, err := CollectConvSamples(context.Background(), m, in, []string{"big"}, 4, 1); err == nil || s != nil ||
		!strings.Contains(err.Error(), "run model") {
		t.Errorf("kernel larger than the image: %v, %v", s, err)
	}
}

// TestRefitSetInputSize: the output size follows the padding rules, an
// output of no rows or columns is an error, and the size is fixed by the
// first input.
func TestRefitSetInputSize(t *testing.T) {
	newConv := func(k int, autoPad string) *refitConv {
		return &refitConv{kh: k, kw: k, strideH: 1, strideW: 1, dilH: 1, dilW: 1, autoPad: autoPad,
			samples: &ConvSamples{Node: "c"}}
	}
	c := newConv(4, "")
	if err := c.setInputSize(4, 5); err != nil || c.outH != 1 || c.outW != 2 {
		t.Errorf("4×4 kernel on 4×5: out %dx%d, %v; want 1x2", c.outH, c.outW, err)
	}
	if err := c.setInputSize(4, 5); err != nil {
		t.Errorf("same size again: %v", err)
	}
	if err := c.setInputSize(5, 5); err == nil || !strings.Contains(err.Error(), "input size changed from 4x5 to 5x5") {
		t.Errorf("new size: %v", err)
	}
	for _, hw := range [][2]int{{4, 5}, {5, 4}, {3, 3}} {
		c := newConv(5, "")
		if err := c.setInputSize(hw[0], hw[1]); err == nil || !strings.Contains(err.Error(), "gives an empty output") {
			t.Errorf("5×5 kernel on %dx%d: out %dx%d, %v; want an error", hw[0], hw[1], c.outH, c.outW, err)
		}
	}
	c = newConv(2, "SAME_UPPER")
	if err := c.setInputSize(3, 3); err != nil || c.outH != 3 || c.outW != 3 || c.padT != 0 || c.padB != 1 {
		t.Errorf("SAME_UPPER 2×2 on 3×3: out %dx%d, pads %d/%d, %v", c.outH, c.outW, c.padT, c.padB, err)
	}
}
