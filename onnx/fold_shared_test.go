package onnx_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// bnAfter is a model Conv(convIn...) → BatchNormalization (γ 2, β 0,
// mean 0, var 1) → y, with the given initializers.
func bnAfter(convIn []string, inits ...*onnxpb.TensorProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Node: []*onnxpb.NodeProto{
				node("conv", "Conv", convIn, []string{"c"}),
				node("bn", "BatchNormalization", []string{"c", "g", "b", "m", "v"}, []string{"y"}),
			},
			Initializer: append(inits,
				onnx.Float32Vector("g", []float32{2}), onnx.Float32Vector("b", []float32{0}),
				onnx.Float32Vector("m", []float32{0}), onnx.Float32Vector("v", []float32{1})),
			Input:  []*onnxpb.ValueInfoProto{valueInfo("x", 1, 1, 2, 2)},
			Output: []*onnxpb.ValueInfoProto{valueInfo("y", 1, 1, 2, 2)},
		},
	}
}

// bnScale is the fold's factor γ/sqrt(var+ε) for bnAfter's BN.
var bnScale = 2 / math.Sqrt(1+1e-5)

func initFloats(t *testing.T, m *onnxpb.ModelProto, name string) []float32 {
	t.Helper()
	init := onnx.NewGraph(m).Initializer(name)
	if init == nil {
		t.Fatalf("no initializer %q", name)
	}
	v, err := onnx.TensorFloats(init)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFoldBatchNormInPlace: a weight and bias only the Conv reads are
// rewritten under their own names, no copy is made.
func TestFoldBatchNormInPlace(t *testing.T) {
	m := bnAfter([]string{"x", "W", "B"}, onnx.Float32Tensor("W", []int64{1, 1, 1, 1}, []float32{3}), onnx.Float32Vector("B", []float32{1}))
	if n, err := onnx.FoldBatchNorm(m); err != nil || n != 1 {
		t.Fatalf("FoldBatchNorm = %d, %v", n, err)
	}
	conv := m.GetGraph().GetNode()[0]
	if !slices.Equal(conv.GetInput(), []string{"x", "W", "B"}) || len(m.GetGraph().GetNode()) != 1 {
		t.Errorf("folded conv reads %v (nodes %d), want [x W B] and the BN gone", conv.GetInput(), len(m.GetGraph().GetNode()))
	}
	for _, init := range m.GetGraph().GetInitializer() {
		if strings.Contains(init.GetName(), "bnfold") {
			t.Errorf("copy %q made of an unshared parameter", init.GetName())
		}
	}
	if w, b := initFloats(t, m, "W"), initFloats(t, m, "B"); math.Abs(float64(w[0])-3*bnScale) > 1e-5 || math.Abs(float64(b[0])-bnScale) > 1e-5 {
		t.Errorf("W %v B %v, want %g, %g", w, b, 3*bnScale, bnScale)
	}
}

// TestFoldBatchNormSelfRead: a Conv that reads its weight tensor twice (as
// data and as weight) must not see its data input change: the folded
// weight is a copy.
func TestFoldBatchNormSelfRead(t *testing.T) {
	m := bnAfter([]string{"W", "W"}, onnx.Float32Tensor("W", []int64{1, 1, 1, 1}, []float32{3}))
	if n, err := onnx.FoldBatchNorm(m); err != nil || n != 1 {
		t.Fatalf("FoldBatchNorm = %d, %v", n, err)
	}
	in := m.GetGraph().GetNode()[0].GetInput()
	if in[0] != "W" || in[1] == "W" {
		t.Fatalf("folded conv reads %v, want W as data and a copy as weight", in)
	}
	if x, w := initFloats(t, m, in[0]), initFloats(t, m, in[1]); x[0] != 3 || math.Abs(float64(w[0])-3*bnScale) > 1e-5 {
		t.Errorf("data %v weight %v, want 3 and %g", x, w, 3*bnScale)
	}
}

func TestImageInput(t *testing.T) {
	one := bnAfter([]string{"x", "W"}, onnx.Float32Tensor("W", []int64{1, 1, 1, 1}, []float32{3}))
	if in, err := onnx.ImageInput(one); err != nil || in.GetName() != "x" {
		t.Errorf("one input: %v, %v", in, err)
	}
	two := proto.Clone(one).(*onnxpb.ModelProto)
	two.Graph.Input = append(two.Graph.Input, valueInfo("x2", 1, 1, 2, 2))
	none := proto.Clone(one).(*onnxpb.ModelProto)
	none.Graph.Input = nil
	for name, m := range map[string]*onnxpb.ModelProto{"two": two, "none": none} {
		if in, err := onnx.ImageInput(m); err == nil || in != nil || !strings.Contains(err.Error(), "edgedet handles models with one image input") {
			t.Errorf("%s: %v, %v; want an error", name, in, err)
		}
	}
	intIn := proto.Clone(one).(*onnxpb.ModelProto)
	intIn.Graph.Input[0].Type.GetTensorType().ElemType = proto.Int32(int32(onnxpb.TensorProto_INT64))
	if in, err := onnx.ImageInput(intIn); err == nil || in != nil || !strings.Contains(err.Error(), `"x" is not a float tensor`) {
		t.Errorf("int64 input: %v, %v", in, err)
	}
}
