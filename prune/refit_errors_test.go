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

// TestRefitParseConvErrors: every Conv the sampler cannot handle is
// refused with an error naming the node and what is wrong with it.
func TestRefitParseConvErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	attrS := func(name, v string) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
	}
	for _, c := range []struct {
		name  string
		edit  func(n *onnxpb.NodeProto, g *onnxpb.GraphProto)
		want  string
		valid bool
	}{
		{"valid", func(*onnxpb.NodeProto, *onnxpb.GraphProto) {}, "", true},
		{"ai.onnx domain", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Domain = proto.String("ai.onnx") }, "", true},
		{"other domain", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Domain = proto.String("com.example") }, `node "A" is Conv, not Conv`, false},
		{"no weight", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Input = n.Input[:1] }, `conv "A" has 1 inputs and 1 outputs`, false},
		{"no output", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Output = nil }, `conv "A" has 3 inputs and 0 outputs`, false},
		{"weight not initializer", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Input[1] = "x" }, `conv "A": weight "x" is not an initializer`, false},
		{"1-D weight", func(_ *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			g.Initializer[0] = refitRandomTensor(rng, "wa", 4, 3, 3)
		},
			`conv "A": weight "wa" has dims [4 3 3]: only 2-D convs are supported`, false},
		{"empty weight", func(_ *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			g.Initializer[0] = onnx.Float32Tensor("wa", []int64{4, 0, 3, 2}, nil)
		}, `conv "A": weight "wa" has dims [4 0 3 2]`, false},
		{"int weight", func(_ *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			g.Initializer[0] = onnx.NewInitializer("wa", onnxpb.TensorProto_INT64, []int64{4, 3, 3, 2}, make([]byte, 8*72))
		}, `conv "A" weight:`, false},
		{"bias not initializer", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Input[2] = "x" }, `conv "A": bias "x" is not an initializer`, false},
		{"short bias", func(_ *onnxpb.NodeProto, g *onnxpb.GraphProto) { g.Initializer[1] = refitRandomTensor(rng, "ba", 3) },
			`conv "A": bias has 3 values for 4 output channels`, false},
		{"int bias", func(_ *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			g.Initializer[1] = onnx.NewInitializer("ba", onnxpb.TensorProto_INT64, []int64{4}, make([]byte, 32))
		}, `conv "A" bias:`, false},
		{"kernel_shape length", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("kernel_shape", 3)) },
			`conv "A": attribute kernel_shape has 1 values, want 2`, false},
		{"kernel_shape mismatch", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("kernel_shape", 2, 3)) },
			`conv "A": kernel_shape [2 3] does not match weight dims [4 3 3 2]`, false},
		{"strides length", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("strides", 1, 1, 1)) },
			`attribute strides has 3 values, want 2`, false},
		{"dilations length", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("dilations", 1)) },
			`attribute dilations has 1 values, want 2`, false},
		{"pads length", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("pads", 1, 1)) },
			`attribute pads has 2 values, want 4`, false},
		{"zero stride", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("strides", 1, 0)) },
			`conv "A": strides [1 0], dilations [2 1] must be positive`, false},
		{"zero dilation", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("dilations", 0, 1)) },
			`conv "A": strides [2 1], dilations [0 1] must be positive`, false},
		{"zero dilation across", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, refitIntsAttr("dilations", 1, 0)) },
			`conv "A": strides [2 1], dilations [1 0] must be positive`, false},
		{"zero kernel width", func(_ *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			g.Initializer[0] = onnx.Float32Tensor("wa", []int64{4, 3, 3, 0}, nil)
		}, `conv "A": weight "wa" has dims [4 3 3 0]`, false},
		{"unknown auto_pad", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { setAttr(n, attrS("auto_pad", "SAME")) },
			`conv "A": unknown auto_pad "SAME"`, false},
		{"group 1", func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) {
			setAttr(n, &onnxpb.AttributeProto{Name: proto.String("group"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)})
		}, "", true},
	} {
		m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
		gp := m.GetGraph()
		n := gp.Node[1] // conv A: wa [4 3 3 2], ba, strides 2 1, dilations 2 1, pads 1 0 2 1
		c.edit(n, gp)
		rc, err := refitParseConv(onnx.NewGraph(m), n)
		switch {
		case c.valid && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.valid && (rc.cout != 4 || rc.cin != 3 || rc.kh != 3 || rc.kw != 2 || rc.strideH != 2 || rc.strideW != 1 || rc.dilH != 2 || rc.dilW != 1 ||
			rc.padT != 1 || rc.padL != 0 || rc.padB != 2 || rc.padR != 1 || len(rc.b) != 4 || rc.input != "r"):
			t.Errorf("%s: parsed %+v", c.name, rc)
		case !c.valid && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}

// setAttr replaces n's attribute of a's name, or adds a.
func setAttr(n *onnxpb.NodeProto, a *onnxpb.AttributeProto) {
	for i, old := range n.Attribute {
		if old.GetName() == a.GetName() {
			n.Attribute[i] = a
			return
		}
	}
	n.Attribute = append(n.Attribute, a)
}

// TestRefitParseConvPadding: VALID drops the explicit pads, a Conv
// without a bias gets zero biases.
func TestRefitParseConvPadding(t *testing.T) {
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	n := m.GetGraph().Node[1]
	setAttr(n, &onnxpb.AttributeProto{Name: proto.String("auto_pad"), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte("VALID")})
	n.Input = n.Input[:2]
	rc, err := refitParseConv(onnx.NewGraph(m), n)
	if err != nil {
		t.Fatal(err)
	}
	if rc.padT != 0 || rc.padL != 0 || rc.padB != 0 || rc.padR != 0 || rc.autoPad != "VALID" {
		t.Errorf("VALID: pads %d %d %d %d, auto_pad %q", rc.padT, rc.padL, rc.padB, rc.padR, rc.autoPad)
	}
	if len(rc.b) != 4 || rc.b[0] != 0 || rc.b[3] != 0 {
		t.Errorf("no bias: b = %v, want 4 zeros", rc.b)
	}
}

// TestCollectConvSamplesArguments: bad arguments and models are refused
// before anything runs, with an error that says which.
func TestCollectConvSamplesArguments(t *testing.T) {
	ctx := context.Background()
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	in := refitSliceInputs{make([]float32, 3*11*13)}
	twoInputs := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	twoInputs.Graph.Input = append(twoInputs.Graph.Input, refitValueInfo("y", 1, 3, 8, 8))
	for _, c := range []struct {
		name    string
		m       *onnxpb.ModelProto
		inputs  onnx.Inputs
		convs   []string
		perConv int
		want    string
	}{
		{"perConv 0", m, in, []string{"A"}, 0, "perConv 0 must be > 0"},
		{"perConv negative", m, in, []string{"A"}, -2, "perConv -2 must be > 0"},
		{"no convs", m, in, nil, 5, "no convs listed"},
		{"nil inputs", m, nil, []string{"A"}, 5, "no calibration inputs"},
		{"no inputs", m, refitSliceInputs{}, []string{"A"}, 5, "no calibration inputs"},
		{"two model inputs", twoInputs, in, []string{"A"}, 5, "model has 2 inputs"},
	} {
		if _, err := CollectConvSamples(ctx, c.m, c.inputs, c.convs, c.perConv, 1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}

// TestRefitModelInput: a dynamic batch counts as 1; any other dynamic
// axis, a missing shape or a second input is an error naming the input.
func TestRefitModelInput(t *testing.T) {
	for _, c := range []struct {
		dims  []int64
		shape []int64
		want  string
	}{
		{[]int64{-1, 3, 8, 8}, []int64{1, 3, 8, 8}, ""},
		{[]int64{0, 3, 8, 8}, []int64{1, 3, 8, 8}, ""},
		{[]int64{1, 3, -1, 8}, nil, `model input "x" has a dynamic dimension 2`},
		{[]int64{}, nil, `model input "x" has no shape`},
	} {
		m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
		m.Graph.Input[0] = refitValueInfo("x", c.dims...)
		name, shape, err := refitModelInput(m)
		switch {
		case c.want == "" && (err != nil || name != "x" || !slices.Equal(shape, c.shape)):
			t.Errorf("dims %v: %q %v %v, want x %v", c.dims, name, shape, err, c.shape)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("dims %v: err %v, want %q", c.dims, err, c.want)
		}
	}
	m := refitConvModel(rand.New(rand.NewPCG(3, 4)))
	m.Graph.Input = append(m.Graph.Input, refitValueInfo("y", 1, 3, 8, 8))
	if _, _, err := refitModelInput(m); err == nil || !strings.Contains(err.Error(), "2 inputs") {
		t.Errorf("two inputs: err %v", err)
	}
}

// TestRefitSamePad: SAME padding splits the total ONNX asks for, the odd
// pixel at the end (SAME_UPPER) or the beginning (SAME_LOWER).
func TestRefitSamePad(t *testing.T) {
	for _, c := range []struct {
		in, k, s, d  int
		upper, lower [2]int
	}{
		{10, 3, 2, 1, [2]int{0, 1}, [2]int{1, 0}}, // out 5: total 4·2+2+1−10 = 1
		{11, 3, 2, 1, [2]int{1, 1}, [2]int{1, 1}}, // out 6: total 2
		{7, 5, 1, 2, [2]int{4, 4}, [2]int{4, 4}},  // out 7: total 6+8+1−7 = 8
		{9, 1, 3, 1, [2]int{0, 0}, [2]int{0, 0}},  // out 3: total 6+0+1−9 < 0
	} {
		if b, e := refitSamePad(c.in, c.k, c.s, c.d, false); [2]int{b, e} != c.upper {
			t.Errorf("SAME_UPPER in %d k %d s %d d %d: (%d, %d), want %v", c.in, c.k, c.s, c.d, b, e, c.upper)
		}
		if b, e := refitSamePad(c.in, c.k, c.s, c.d, true); [2]int{b, e} != c.lower {
			t.Errorf("SAME_LOWER in %d k %d s %d d %d: (%d, %d), want %v", c.in, c.k, c.s, c.d, b, e, c.lower)
		}
	}
}
