package quant

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Tests for code the unit suite did not execute (go test -coverprofile):
// each checks what the code does, not only that it runs.

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// TestElemTypesPerOp: every rule of the forward type inference, on one
// graph of shape arithmetic, comparisons and index outputs.
func TestElemTypesPerOp(t *testing.T) {
	f32 := int32(onnxpb.TensorProto_FLOAT)
	i64 := int32(onnxpb.TensorProto_INT64)
	boolean := int32(onnxpb.TensorProto_BOOL)
	u8 := int32(onnxpb.TensorProto_UINT8)
	nodes := []*onnxpb.NodeProto{
		qtNode("cast", "Cast", []string{"x"}, []string{"xi"}, intAttr("saturate", 1), intAttr("to", int64(onnxpb.TensorProto_INT64))),
		qtNode("cint", "Constant", nil, []string{"k"}, intAttr("value_int", 3)),
		qtNode("cfloat", "Constant", nil, []string{"kf"}, &onnxpb.AttributeProto{Name: proto.String("value_float"), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(1)}),
		qtNode("cbool", "Constant", nil, []string{"kb"}, &onnxpb.AttributeProto{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(),
			T: &onnxpb.TensorProto{DataType: proto.Int32(boolean), Dims: []int64{1}}}),
		qtNode("eq", "Equal", []string{"x", "x"}, []string{"mask"}),
		qtNode("where", "Where", []string{"mask", "xi", "xi"}, []string{"sel"}),
		qtNode("whereBad", "Where", []string{"mask"}, []string{"selBad"}),
		qtNode("dq", "DequantizeLinear", []string{"q", "qs", "qz"}, []string{"deq"}),
		qtNode("topk", "TopK", []string{"x", "k"}, []string{"vals", "idx"}),
		qtNode("pool", "MaxPool", []string{"x"}, []string{"pooled", "argmax"}),
		qtNode("relu", "Relu", []string{"", "x"}, []string{"", "r"}),
		qtNode("unknown", "Relu", []string{"nowhere"}, []string{"untyped"}),
		qtNode("declared", "Identity", []string{"nowhere"}, []string{"vi"}),
	}
	q := onnx.Float32Vector("q", []float32{1})
	q.DataType = proto.Int32(u8)
	m := qtModel(nodes, []*onnxpb.TensorProto{q}, qtValueInfo("x", 1, 4), qtValueInfo("r", 1, 4))
	vi := qtValueInfo("vi", 1)
	vi.Type.GetTensorType().ElemType = proto.Int32(int32(onnxpb.TensorProto_INT32))
	unset := qtValueInfo("untyped", 1)
	unset.Type.GetTensorType().ElemType = proto.Int32(0)
	m.Graph.ValueInfo = []*onnxpb.ValueInfoProto{vi, unset}
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	types := elemTypes(g, order)
	want := map[string]int32{
		"x": f32, "q": u8, "xi": i64, "k": i64, "kf": f32, "kb": boolean, "mask": boolean,
		"sel": i64, "deq": f32, "vals": f32, "idx": i64, "pooled": f32, "argmax": i64, "r": f32,
		"vi": int32(onnxpb.TensorProto_INT32),
	}
	for name, w := range want {
		if got, ok := types[name]; !ok || got != w {
			t.Errorf("type of %q = %d (known %t), want %d", name, got, ok, w)
		}
	}
	for _, name := range []string{"selBad", "untyped", ""} {
		if got, ok := types[name]; ok {
			t.Errorf("type of %q = %d, want unknown", name, got)
		}
	}
}

// TestWeightAxis: the output channels of Gemm's B are its columns unless
// transB, of MatMul's its columns, of Conv's the first axis.
func TestWeightAxis(t *testing.T) {
	for _, c := range []struct {
		n    *onnxpb.NodeProto
		want int64
	}{
		{qtNode("g", "Gemm", nil, nil), 1},
		{qtNode("gt", "Gemm", nil, nil, intAttr("transB", 1)), 0},
		{qtNode("gf", "Gemm", nil, nil, intAttr("transB", 0)), 1},
		{qtNode("mm", "MatMul", nil, nil), 1},
		{qtNode("c", "Conv", nil, nil), 0},
	} {
		if got := weightAxis(c.n); got != c.want {
			t.Errorf("%s: axis %d, want %d", c.n.GetName(), got, c.want)
		}
	}
}

// TestModelInputDynamic: a dynamic input needs a [1,3,H,W] override that
// agrees with its fixed axes; errors name the input and the shapes.
func TestModelInputDynamic(t *testing.T) {
	m := qtModel(nil, nil, qtValueInfo("images", 1, 3, -1, 0), qtValueInfo("y", 1))
	for _, c := range []struct {
		override []int64
		want     string // error text, "" for success
	}{
		{nil, `model input "images" has dynamic shape [1 3 -1 0]: give the input size`},
		{[]int64{3, 8, 8}, `dynamic shape [1 3 -1 0]`},
		{[]int64{1, 1, 8, 8}, `model input "images" has shape [1 3 -1 0], which does not match [1 1 8 8]`},
		{[]int64{2, 3, 8, 8}, `which does not match [2 3 8 8]`},
		{[]int64{1, 3, 8, 6}, ""},
	} {
		name, shape, err := modelInput(m, c.override)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("override %v: %v", c.override, err)
		case c.want == "" && (name != "images" || len(shape) != 4 || shape[2] != 8 || shape[3] != 6):
			t.Errorf("override %v: input %q shape %v, want images [1 3 8 6]", c.override, name, shape)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("override %v: err %v, want %q", c.override, err, c.want)
		}
	}
	m.Graph.Input = append(m.Graph.Input, qtValueInfo("mask", 1, 1, 8, 8))
	if _, _, err := modelInput(m, []int64{1, 3, 8, 8}); err == nil || !strings.Contains(err.Error(), "model has 2 inputs") {
		t.Errorf("two inputs: err %v", err)
	}
	m = qtModel(nil, nil, qtValueInfo("images", 1, 3, 8), qtValueInfo("y", 1))
	if _, _, err := modelInput(m, []int64{1, 3, 8, 8}); err == nil || !strings.Contains(err.Error(), `model input "images" has shape [1 3 8]; edgedet needs [1,3,H,W]`) {
		t.Errorf("3-D input: err %v", err)
	}
}

// TestNameNodesUnique: unnamed nodes get op_index names that avoid every
// name already taken, and named nodes keep theirs.
func TestNameNodesUnique(t *testing.T) {
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("Relu_1", "Relu", []string{"x"}, []string{"a"}),
		qtNode("", "Relu", []string{"a"}, []string{"b"}),
		qtNode("Relu_1_", "Relu", []string{"b"}, []string{"c"}),
		qtNode("", "Sigmoid", []string{"c"}, []string{"y"}),
	}, nil, qtValueInfo("x", 1), qtValueInfo("y", 1))
	nameNodes(m)
	var got []string
	for _, n := range m.Graph.Node {
		got = append(got, n.GetName())
	}
	if want := []string{"Relu_1", "Relu_1__", "Relu_1_", "Sigmoid_3"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("names %v, want %v", got, want)
	}
}

// TestAnalyseComputeShapes: Gemm with transA or a weight that is not a
// matrix, MatMul with a weight that is not a matrix and a Conv whose bias
// is not a vector stay out of the candidates.
func TestAnalyseComputeShapes(t *testing.T) {
	w2 := func(name string) *onnxpb.TensorProto {
		return onnx.Float32Tensor(name, []int64{4, 4}, make([]float32, 16))
	}
	w3 := func(name string) *onnxpb.TensorProto {
		return onnx.Float32Tensor(name, []int64{1, 4, 4}, make([]float32, 16))
	}
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("gemm", "Gemm", []string{"x", "A"}, []string{"a"}),
		qtNode("gemmT", "Gemm", []string{"a", "B"}, []string{"b"}, intAttr("transA", 1)),
		qtNode("gemm3", "Gemm", []string{"b", "C"}, []string{"c"}),
		qtNode("mm", "MatMul", []string{"c", "D"}, []string{"d"}),
		qtNode("mm3", "MatMul", []string{"d", "E"}, []string{"e"}),
		qtNode("conv", "Conv", []string{"e", "F", "FB"}, []string{"y"}),
	}, []*onnxpb.TensorProto{w2("A"), w2("B"), w3("C"), w2("D"), w3("E"),
		onnx.Float32Tensor("F", []int64{2, 4, 1, 1}, make([]float32, 8)), onnx.Float32Tensor("FB", []int64{2, 1}, make([]float32, 2))},
		qtValueInfo("x", 4, 4), qtValueInfo("y", 1, 2, 1, 4))
	if got := nodeNames(analyseOK(t, m).candidates); strings.Join(got, ",") != "gemm,mm" {
		t.Errorf("candidates %v, want [gemm mm]", got)
	}
}

// TestAnalyseSiLUNeedsOneOutput: a Sigmoid with a second output (not an
// ONNX Sigmoid) is not taken for a SiLU's, nor one without inputs.
func TestAnalyseSiLUNeedsOneOutput(t *testing.T) {
	for _, c := range []struct {
		sig  *onnxpb.NodeProto
		silu bool
	}{
		{qtNode("sig", "Sigmoid", []string{"x"}, []string{"s"}), true},
		{qtNode("sig", "Sigmoid", []string{"x"}, []string{"s", "extra"}), false},
		{qtNode("sig", "Sigmoid", []string{"x", "x"}, []string{"s"}), false},
	} {
		m := qtModel([]*onnxpb.NodeProto{c.sig, qtNode("mul", "Mul", []string{"x", "s"}, []string{"y"})}, nil, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
		p, err := analyse(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.siluSigmoid["mul"] != nil; got != c.silu {
			t.Errorf("Sigmoid %v -> %v: SiLU %t, want %t", c.sig.GetInput(), c.sig.GetOutput(), got, c.silu)
		}
	}
}

// TestFakeQuantSaturates: fakeQuant rounds half to even and saturates at
// the type's codes: 0..255 for UINT8, -128..127 for INT8.
func TestFakeQuantSaturates(t *testing.T) {
	u8 := qparams{scale: 0.5, zp: 10, dtype: onnxpb.TensorProto_UINT8}
	i8 := qparams{scale: 0.5, zp: -3, dtype: onnxpb.TensorProto_INT8}
	for _, c := range []struct {
		q       qparams
		x, want float32
	}{
		{u8, -5, -5},       // code 0
		{u8, -5.5, -5},     // below code 0
		{u8, 122.5, 122.5}, // code 255
		{u8, 200, 122.5},
		{u8, 0.25, 0},      // 0.5 codes: to even (10)
		{u8, 0.75, 1},      // 1.5 codes: to even (12)
		{i8, -62.5, -62.5}, // code -128
		{i8, -100, -62.5},
		{i8, 65, 65}, // code 127
		{i8, 70, 65},
	} {
		if got := c.q.fakeQuant(c.x); got != c.want {
			t.Errorf("%s zp %d: fakeQuant(%g) = %g, want %g", c.q.dtype, c.q.zp, c.x, got, c.want)
		}
	}
}

// TestActivationAfter: the activation a split chain may pass is a lone
// unary op (Clip only with constant bounds) or a SiLU's Sigmoid and Mul.
func TestActivationAfter(t *testing.T) {
	lo := onnx.Float32Tensor("lo", nil, []float32{0})
	for _, c := range []struct {
		name  string
		nodes []*onnxpb.NodeProto
		want  []string
		out   string
	}{
		{"relu", []*onnxpb.NodeProto{qtNode("relu", "Relu", []string{"t"}, []string{"a"})}, []string{"relu"}, "a"},
		{"clip constant", []*onnxpb.NodeProto{qtNode("clip", "Clip", []string{"t", "lo", ""}, []string{"a"})}, []string{"clip"}, "a"},
		{"clip from a tensor", []*onnxpb.NodeProto{qtNode("clip", "Clip", []string{"t", "lo", "x"}, []string{"a"})}, nil, ""},
		{"not an activation", []*onnxpb.NodeProto{qtNode("pool", "MaxPool", []string{"t"}, []string{"a"})}, nil, ""},
		{"other domain", []*onnxpb.NodeProto{{Name: proto.String("relu"), OpType: proto.String("Relu"), Domain: proto.String("com.example"), Input: []string{"t"}, Output: []string{"a"}}}, nil, ""},
		{"two outputs", []*onnxpb.NodeProto{qtNode("relu", "Relu", []string{"t"}, []string{"a", "b"})}, nil, ""},
		{"second input", []*onnxpb.NodeProto{qtNode("prelu", "LeakyRelu", []string{"x", "t"}, []string{"a"})}, nil, ""},
		{"silu", []*onnxpb.NodeProto{qtNode("mul", "Mul", []string{"t", "s"}, []string{"a"}), qtNode("sig", "Sigmoid", []string{"t"}, []string{"s"})}, []string{"sig", "mul"}, "a"},
		{"silu read twice", []*onnxpb.NodeProto{qtNode("sig", "Sigmoid", []string{"t"}, []string{"s"}), qtNode("mul", "Mul", []string{"t", "s"}, []string{"a"}),
			qtNode("other", "Relu", []string{"s"}, []string{"b"})}, nil, ""},
		{"sigmoid and add", []*onnxpb.NodeProto{qtNode("sig", "Sigmoid", []string{"t"}, []string{"s"}), qtNode("add", "Add", []string{"t", "s"}, []string{"a"})}, nil, ""},
		{"two readers", []*onnxpb.NodeProto{qtNode("r1", "Relu", []string{"t"}, []string{"a"}), qtNode("r2", "Relu", []string{"t"}, []string{"b"})}, nil, ""},
	} {
		m := qtModel(append([]*onnxpb.NodeProto{qtNode("conv", "Conv", []string{"x", "W"}, []string{"t"})}, c.nodes...),
			[]*onnxpb.TensorProto{lo, onnx.Float32Tensor("W", []int64{2, 2, 1, 1}, make([]float32, 4))}, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("a", 1, 2, 4, 4))
		nodes, out := activationAfter(onnx.NewGraph(m), "t")
		if got := nodeNames(nodes); strings.Join(got, ",") != strings.Join(c.want, ",") || out != c.out {
			t.Errorf("%s: %v %q, want %v %q", c.name, got, out, c.want, c.out)
		}
	}
}

// TestConvWeightForSplit: a split needs a Conv's own float 4-D weight
// and a bias of one value per output channel.
func TestConvWeightForSplit(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m *onnxpb.ModelProto)
		ok   bool
	}{
		{"plain", func(*onnxpb.ModelProto) {}, true},
		{"no bias", func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input = m.Graph.Node[0].Input[:2] }, true},
		{"shared weight", func(m *onnxpb.ModelProto) {
			m.Graph.Node = append(m.Graph.Node, qtNode("other", "Conv", []string{"y", "W"}, []string{"z"}))
		}, false},
		{"shared bias", func(m *onnxpb.ModelProto) {
			m.Graph.Node = append(m.Graph.Node, qtNode("other", "Add", []string{"y", "B"}, []string{"z"}))
		}, false},
		{"bias of other length", func(m *onnxpb.ModelProto) { m.Graph.Initializer[1] = onnx.Float32Vector("B", []float32{1}) }, false},
		{"bias not a vector", func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[1] = onnx.Float32Tensor("B", []int64{2, 1}, []float32{1, 2})
		}, false},
		{"bias from a tensor", func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input[2] = "x" }, false},
		{"3-D weight", func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0] = onnx.Float32Tensor("W", []int64{2, 2, 1}, make([]float32, 4))
		}, false},
		{"empty weight axis", func(m *onnxpb.ModelProto) { m.Graph.Initializer[0] = onnx.Float32Tensor("W", []int64{2, 0, 1, 1}, nil) }, false},
		{"Gemm", func(m *onnxpb.ModelProto) { m.Graph.Node[0].OpType = proto.String("Gemm") }, false},
	} {
		m := qtModel([]*onnxpb.NodeProto{qtNode("conv", "Conv", []string{"x", "W", "B"}, []string{"y"})},
			[]*onnxpb.TensorProto{onnx.Float32Tensor("W", []int64{2, 2, 1, 1}, make([]float32, 4)), onnx.Float32Vector("B", []float32{1, 2})},
			qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
		c.edit(m)
		g := onnx.NewGraph(m)
		w, b, ok := convWeight(g, m.Graph.Node[0])
		if ok != c.ok {
			t.Errorf("%s: ok %t, want %t", c.name, ok, c.ok)
		}
		if ok && (w.GetName() != "W" || (b == nil) != (c.name == "no bias")) {
			t.Errorf("%s: weight %q bias %v", c.name, w.GetName(), b)
		}
	}
}

// TestSymmetricWeights: scales are max|w|/qmax per channel along the axis
// (or over the tensor), a channel of zeros gets scale 1 and zero codes, and
// codes round to nearest and stay within ±qmax.
func TestSymmetricWeights(t *testing.T) {
	// [2 out (axis 1 of a Gemm's B: [in 3, out 2])]: column 0 = {0, 0, 0}, column 1 = {1, -2.54, 2}.
	wv := []float32{0, 1, 0, -2.54, 0, 2}
	dims := []int64{3, 2}
	q, scales, chanOf := symmetricWeights(wv, dims, 1, true, 127)
	if want := []float32{1, 2.54 / 127}; len(scales) != 2 || scales[0] != want[0] || math.Abs(float64(scales[1]-want[1])) > 1e-9 {
		t.Errorf("per-channel scales %v, want %v", scales, want)
	}
	if want := []int8{0, 50, 0, -127, 0, 100}; !slices.Equal(q, want) {
		t.Errorf("per-channel codes %v, want %v", q, want)
	}
	if got := []int{chanOf(0), chanOf(1), chanOf(4), chanOf(5)}; !slices.Equal(got, []int{0, 1, 0, 1}) {
		t.Errorf("channels of elements 0, 1, 4, 5: %v", got)
	}
	q, scales, _ = symmetricWeights(wv, dims, 1, false, 63)
	if len(scales) != 1 || math.Abs(float64(scales[0])-2.54/63) > 1e-7 {
		t.Errorf("per-tensor scales %v, want [2.54/63]", scales)
	}
	if want := []int8{0, 25, 0, -63, 0, 50}; !slices.Equal(q, want) {
		t.Errorf("per-tensor codes %v, want %v", q, want)
	}
	q, scales, _ = symmetricWeights(make([]float32, 4), []int64{2, 2, 1, 1}, 0, false, 127)
	if !slices.Equal(scales, []float32{1}) || !slices.Equal(q, make([]int8, 4)) {
		t.Errorf("all zeros: scales %v codes %v, want [1] and zeros", scales, q)
	}
}

// TestStoreWeightsErrors: an unknown storage and a weight without the
// output-channel axis are refused, naming them.
func TestStoreWeightsErrors(t *testing.T) {
	w := onnx.Float32Vector("W", []float32{1, 2})
	gemm := qtNode("gemm", "Gemm", []string{"x", "W"}, []string{"y"})
	if _, err := storeWeights(&onnxpb.GraphProto{}, map[string]bool{}, gemm, w, nil, WeightsInt8, true, nil); err == nil ||
		!strings.Contains(err.Error(), `weight "W" has 1 dimensions, output channels on axis 1`) {
		t.Errorf("1-D Gemm weight: %v", err)
	}
	if _, err := storeWeights(&onnxpb.GraphProto{}, map[string]bool{}, gemm, w, nil, WeightStorage("int4"), true, nil); err == nil ||
		!strings.Contains(err.Error(), `cannot store weights as "int4"`) {
		t.Errorf("int4 storage: %v", err)
	}
}

// TestConvBiasShift: the mean output change of each output channel is
// Σ over its group's input channels and kernel of (restored − orig)·mean;
// counts that do not line up give nil.
func TestConvBiasShift(t *testing.T) {
	// 2 outputs, 2 inputs, 1×2 kernel: w[o][i][k].
	orig := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	restored := []float32{1.5, 2, 3, 3, 5, 6.25, 7, 8}
	means := []float32{2, -1}
	conv := qtNode("c", "Conv", nil, nil)
	got := convBiasShift(conv, orig, restored, []int64{2, 2, 1, 2}, means)
	// o0: (0.5·2 + 0) + (0 − 1·−1) = 2; o1: (0 + 0.25)·2 + 0 = 0.5.
	if want := []float32{2, 0.5}; !slices.Equal(got, want) {
		t.Errorf("group 1: shift %v, want %v", got, want)
	}
	// Depthwise (group 2): output o reads input o only, weights [2, 1, 1, 2].
	dw := qtNode("d", "Conv", nil, nil, intAttr("group", 2))
	got = convBiasShift(dw, orig[:4], restored[:4], []int64{2, 1, 1, 2}, means)
	// o0: 0.5·2 = 1; o1: (0 − 1)·−1 = 1.
	if want := []float32{1, 1}; !slices.Equal(got, want) {
		t.Errorf("depthwise: shift %v, want %v", got, want)
	}
	for name, c := range map[string]struct {
		n     *onnxpb.NodeProto
		dims  []int64
		means []float32
		rest  []float32
	}{
		"Gemm":          {qtNode("g", "Gemm", nil, nil), []int64{2, 2, 1, 2}, means, restored},
		"no means":      {conv, []int64{2, 2, 1, 2}, nil, restored},
		"other means":   {conv, []int64{2, 2, 1, 2}, []float32{1, 2, 3}, restored},
		"group 0":       {qtNode("z", "Conv", nil, nil, intAttr("group", 0)), []int64{2, 2, 1, 2}, means, restored},
		"group 3":       {qtNode("z", "Conv", nil, nil, intAttr("group", 3)), []int64{2, 2, 1, 2}, means, restored},
		"1-D weight":    {conv, []int64{8}, means, restored},
		"no outputs":    {conv, []int64{0, 2, 1, 2}, means, restored},
		"short restore": {conv, []int64{2, 2, 1, 2}, means, restored[:7]},
	} {
		if got := convBiasShift(c.n, orig, c.rest, c.dims, c.means); got != nil {
			t.Errorf("%s: shift %v, want nil", name, got)
		}
	}
}

// TestQuantizeWeightsBias: a Conv without a bias gets none unless bias
// correction needs one; a bias computed at run time is left alone.
func TestQuantizeWeightsBias(t *testing.T) {
	w := onnx.Float32Tensor("W", []int64{2, 2, 1, 1}, []float32{0.3, -0.7, 0.11, 0.9})
	for _, c := range []struct {
		name     string
		inputs   []string
		means    []float32
		wantBias bool
	}{
		{"no bias, no correction", []string{"x", "W"}, nil, false},
		{"no bias, corrected", []string{"x", "W"}, []float32{5, -3}, true},
		{"run-time bias, corrected", []string{"x", "W", "b"}, []float32{5, -3}, false},
	} {
		n := qtNode("c", "Conv", slices.Clone(c.inputs), []string{"y"})
		gp := &onnxpb.GraphProto{}
		nodes, err := quantizeWeights(gp, map[string]bool{}, n, w, nil, 0.1, true, false, c.means, nil)
		if err != nil {
			t.Fatal(err)
		}
		var dq []string
		for _, d := range nodes {
			dq = append(dq, d.GetOutput()[0])
		}
		hasBias := len(n.Input) > 2 && slices.Contains(dq, n.Input[2])
		if hasBias != c.wantBias || len(nodes) != map[bool]int{false: 1, true: 2}[c.wantBias] {
			t.Errorf("%s: inputs %v, %d DequantizeLinear; want a quantized bias %t", c.name, n.Input, len(nodes), c.wantBias)
		}
		if c.name == "run-time bias, corrected" && n.Input[2] != "b" {
			t.Errorf("%s: bias input %q, want b kept", c.name, n.Input[2])
		}
	}
}

// TestActivationOfSigmoidAndArity: a tensor read only by Sigmoids is
// quantized for the Sigmoid's error; a Sigmoid and a Mul that is not its
// SiLU, or a tensor nobody reads, get the identity.
func TestActivationOfSigmoidAndArity(t *testing.T) {
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("conv", "Conv", []string{"x", "W"}, []string{"t"}),
		qtNode("s1", "Sigmoid", []string{"t"}, []string{"a"}),
		qtNode("s2", "Sigmoid", []string{"t"}, []string{"b"}),
		qtNode("s3", "Sigmoid", []string{"a"}, []string{"c"}),
		qtNode("mul", "Mul", []string{"a", "c", "b"}, []string{"y"}), // three inputs: no SiLU
	}, []*onnxpb.TensorProto{onnx.Float32Tensor("W", []int64{2, 2, 1, 1}, []float32{1, 0, 0, 1})}, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
	p := analyseOK(t, m)
	if f := p.activationOf("t"); f == nil || math.Abs(f(2)-1/(1+math.Exp(-2))) > 1e-12 || math.Abs(f(-1)-1/(1+math.Exp(1))) > 1e-12 {
		t.Error("t read only by Sigmoids: want the sigmoid")
	}
	if f := p.activationOf("a"); f != nil {
		t.Error("a read by a Sigmoid and a three-input Mul: want the identity")
	}
	if f := p.activationOf("y"); f != nil {
		t.Error("y read by nobody: want the identity")
	}
	sig := qtNode("s", "Sigmoid", []string{"x"}, []string{"s"})
	for _, c := range []struct {
		in   []string
		silu bool
	}{{[]string{"x", "s"}, true}, {[]string{"s", "x"}, true}, {[]string{"s", "z"}, false}, {[]string{"z", "s"}, false}, {[]string{"x", "z"}, false}, {[]string{"s", "s"}, false}} {
		if got := isSiLU(sig, qtNode("m", "Mul", c.in, nil)); got != c.silu {
			t.Errorf("Mul%v of Sigmoid(x) = s: SiLU %t, want %t", c.in, got, c.silu)
		}
	}
	if got, want := silu(2), 2/(1+math.Exp(-2)); math.Abs(got-want) > 1e-15 {
		t.Errorf("silu(2) = %g, want %g", got, want)
	}
	if isSiLU(qtNode("s", "Sigmoid", nil, []string{"s"}), qtNode("m", "Mul", []string{"", "s"}, nil)) {
		t.Error("a Sigmoid without input taken for a SiLU's")
	}
	if isSiLU(qtNode("s", "Sigmoid", []string{"x"}, nil), qtNode("m", "Mul", []string{"x", ""}, nil)) {
		t.Error("a Sigmoid without output taken for a SiLU's")
	}
}

// TestActInputsMatMul: a MatMul by a constant quantizes its activation
// only; of two activations, both.
func TestActInputsMatMul(t *testing.T) {
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("mc", "MatMul", []string{"x", "B"}, []string{"a"}),
		qtNode("mm", "MatMul", []string{"a", "x"}, []string{"y"}),
		qtNode("add", "Add", []string{"a", "", "y"}, []string{"z"}),
	}, []*onnxpb.TensorProto{onnx.Float32Tensor("B", []int64{4, 4}, make([]float32, 16))}, qtValueInfo("x", 4, 4), qtValueInfo("z", 4, 4))
	g := onnx.NewGraph(m)
	for name, want := range map[string][]int{"mc": {0}, "mm": {0, 1}, "add": {0, 2}} {
		if got := actInputs(g, qtNodeByName(m, name)); !slices.Equal(got, want) {
			t.Errorf("%s: activation inputs %v, want %v", name, got, want)
		}
	}
}

// TestAnalyseElementwiseFloatOnly: an element-wise node between compute
// ops runs in INT8 only when its activation inputs and outputs are float;
// Reshape's integer shape is not an activation; nodes of other domains
// and excluded op types are left alone.
func TestAnalyseElementwiseFloatOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(111, 112))
	shape := onnx.Float32Vector("shape", nil)
	shape.DataType, shape.Dims, shape.RawData = proto.Int32(int32(onnxpb.TensorProto_INT64)), []int64{4}, make([]byte, 32)
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("conv0", "Conv", []string{"x", "W0"}, []string{"a"}),
		qtNode("relu", "Relu", []string{"a"}, []string{"r"}),
		qtNode("cast", "Cast", []string{"r"}, []string{"ri"}, intAttr("to", int64(onnxpb.TensorProto_INT32))),
		qtNode("addInt", "Add", []string{"ri", "ri"}, []string{"si"}),
		qtNode("back", "Cast", []string{"si"}, []string{"s"}, intAttr("to", int64(onnxpb.TensorProto_FLOAT))),
		qtNode("reshape", "Reshape", []string{"s", "shape"}, []string{"rs"}),
		{Name: proto.String("custom"), OpType: proto.String("Mul"), Domain: proto.String("com.example"), Input: []string{"rs", "rs"}, Output: []string{"c"}},
		qtNode("sig", "Sigmoid", []string{"c"}, []string{"g"}),
		qtNode("conv1", "Conv", []string{"g", "W1"}, []string{"y"}),
	}, []*onnxpb.TensorProto{
		onnx.Float32Tensor("W0", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)), shape,
		onnx.Float32Tensor("W1", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)),
	}, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
	if got := nodeNames(analyseOK(t, m).elementwise); strings.Join(got, ",") != "relu,reshape,sig" {
		t.Errorf("element-wise %v, want [relu reshape sig] (addInt is integer, custom of another domain)", got)
	}
	if got := nodeNames(analyseOK(t, m, "Sigmoid").elementwise); strings.Join(got, ",") != "relu,reshape" {
		t.Errorf("Sigmoid excluded: element-wise %v, want [relu reshape]", got)
	}
}
