package onnx

import (
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// shapeCase is a small graph fed input "x" (shape in, default [1 3 8 8]),
// the shapes inference must give its tensors (nil: unknown) and the values
// it must know (nil: none).
type shapeCase struct {
	name     string
	opset    int64 // 13 when 0
	in       []int64
	inputs   []*onnxpb.ValueInfoProto
	inits    []*onnxpb.TensorProto
	nodes    []*onnxpb.NodeProto
	want     map[string][]int64
	wantInts map[string][]int64
}

func tn(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
}

func ins(names ...string) []string { return names }

func aInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func aInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func aStr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

func aFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: v}
}

// i64 is a 1-D INT64 initializer.
func i64(name string, v ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims: []int64{int64(len(v))}, Int64Data: v}
}

// shaped is a FLOAT initializer with dims and no data: only its shape counts.
func shaped(name string, dims ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: dims}
}

func declared(name string, dims ...int64) *onnxpb.ValueInfoProto {
	d := make([]*onnxpb.TensorShapeProto_Dimension, len(dims))
	for i, v := range dims {
		d[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1), Shape: &onnxpb.TensorShapeProto{Dim: d}}}}}
}

func shapeModel(c shapeCase) *onnxpb.ModelProto {
	opset := c.opset
	if opset == 0 {
		opset = 13
	}
	in := c.in
	if in == nil {
		in = []int64{1, 3, 8, 8}
	}
	return &onnxpb.ModelProto{
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{
			Node:        c.nodes,
			Initializer: c.inits,
			Input:       append([]*onnxpb.ValueInfoProto{declared("x", slices.Repeat([]int64{1}, len(in))...)}, c.inputs...),
		},
	}
}

func runShapeCases(t *testing.T, cases []shapeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			if in == nil {
				in = []int64{1, 3, 8, 8}
			}
			s, err := InferShapes(shapeModel(c), in)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range c.want {
				got := s.Shape(name)
				if (got == nil) != (want == nil) || !slices.Equal(got, want) {
					t.Errorf("%s: shape %v, want %v", name, got, want)
				}
			}
			for name, want := range c.wantInts {
				got, ok := s.ints[name]
				if ok != (want != nil) || !slices.Equal(got, want) {
					t.Errorf("%s: values %v (known %t), want %v", name, got, ok, want)
				}
			}
		})
	}
}

func TestShapeRulesDisjoint(t *testing.T) {
	n := 0
	for _, f := range []map[string]shapeRule{windowedRules, linearRules, elementwiseRules, tensorRules, sliceRules, constRules} {
		n += len(f)
	}
	if n != len(shapeRules) {
		t.Errorf("operator families list %d operators, %d distinct: one is in two families", n, len(shapeRules))
	}
}

func TestInferShapesErrors(t *testing.T) {
	ok := shapeModel(shapeCase{})
	cycle := shapeModel(shapeCase{nodes: []*onnxpb.NodeProto{
		tn("Relu", ins("b"), ins("a")), tn("Relu", ins("a"), ins("b")),
	}})
	onlyInits := shapeModel(shapeCase{inits: []*onnxpb.TensorProto{shaped("x", 1)}})
	for _, c := range []struct {
		name string
		m    *onnxpb.ModelProto
		in   []int64
		want string
	}{
		{"no graph", &onnxpb.ModelProto{}, []int64{1}, "no graph"},
		{"cycle", cycle, []int64{1, 3, 8, 8}, "cycle"},
		{"empty shape", ok, nil, "non-empty and positive"},
		{"zero dim", ok, []int64{1, 0, 8, 8}, "non-empty and positive"},
		{"negative dim", ok, []int64{1, 3, -8, 8}, "non-empty and positive"},
		{"rank", ok, []int64{1, 3, 8}, "has rank 3"},
		{"no input", onlyInits, []int64{1}, "no graph input"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := InferShapes(c.m, c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) || s != nil {
				t.Fatalf("got %v, %v; want an error containing %q", s, err, c.want)
			}
		})
	}
	// The smallest valid shape passes.
	if _, err := InferShapes(shapeModel(shapeCase{in: []int64{1}}), []int64{1}); err != nil {
		t.Errorf("shape [1]: %v", err)
	}
}

func TestInferShapesInputs(t *testing.T) {
	dynamic := declared("dyn", 1, 3)
	dynamic.Type.GetTensorType().Shape.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "n"}
	noShape := &onnxpb.ValueInfoProto{Name: proto.String("noshape")}
	m := shapeModel(shapeCase{
		inputs: []*onnxpb.ValueInfoProto{declared("w", 4, 3, 3, 3), declared("static", 2, 5), dynamic, noShape, declared("scalar")},
		inits:  []*onnxpb.TensorProto{shaped("w", 4, 3, 3, 3)},
	})
	// An undeclared rank takes any input shape.
	m.Graph.Input[0] = &onnxpb.ValueInfoProto{Name: proto.String("x")}
	s, err := InferShapes(m, []int64{2, 3, 5})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]int64{
		"x": {2, 3, 5}, "w": {4, 3, 3, 3}, "static": {2, 5}, "dyn": nil, "noshape": nil, "scalar": {},
	} {
		if got := s.Shape(name); (got == nil) != (want == nil) || !slices.Equal(got, want) {
			t.Errorf("%s: shape %v, want %v", name, got, want)
		}
	}
}

func TestInferShapesSkips(t *testing.T) {
	ms := tn("Relu", ins("x"), ins("ms"))
	ms.Domain = proto.String("com.microsoft")
	ai := tn("Relu", ins("x"), ins("ai"))
	ai.Domain = proto.String("ai.onnx")
	runShapeCases(t, []shapeCase{{
		name: "domains",
		nodes: []*onnxpb.NodeProto{ms, ai, tn("NoSuchOp", ins("x"), ins("unknown")),
			tn("Relu", ins("unknown"), ins("after")), tn("Relu", ins("x"), nil)},
		want: map[string][]int64{"ms": nil, "ai": {1, 3, 8, 8}, "unknown": nil, "after": nil},
	}})
}

func TestInferShapesWindowed(t *testing.T) {
	w := []*onnxpb.TensorProto{shaped("w", 4, 3, 3, 3), shaped("w1", 4, 3, 3), shaped("w2", 4, 3, 1, 1), shaped("wbad", 4, 3)}
	pool := func(k int64, attrs ...*onnxpb.AttributeProto) []*onnxpb.AttributeProto {
		return append([]*onnxpb.AttributeProto{aInts("kernel_shape", k, k)}, attrs...)
	}
	runShapeCases(t, []shapeCase{
		{name: "conv same", inits: w, nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aInts("pads", 1, 1, 1, 1))},
			want: map[string][]int64{"y": {1, 4, 8, 8}}},
		{name: "conv stride", in: []int64{1, 3, 9, 8}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aInts("pads", 1, 1, 1, 1), aInts("strides", 2, 2))},
			want:  map[string][]int64{"y": {1, 4, 5, 4}}},
		{name: "conv asymmetric pads", in: []int64{1, 3, 9, 8}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aInts("pads", 0, 2, 1, 0))},
			want:  map[string][]int64{"y": {1, 4, 8, 8}}},
		{name: "conv dilated", in: []int64{1, 3, 9, 10}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aInts("dilations", 2, 3))},
			want:  map[string][]int64{"y": {1, 4, 5, 4}}},
		{name: "conv same upper", in: []int64{1, 3, 9, 10}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aStr("auto_pad", "SAME_UPPER"), aInts("strides", 2, 3))},
			want:  map[string][]int64{"y": {1, 4, 5, 4}}},
		{name: "conv same lower", in: []int64{1, 3, 9, 9}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aStr("auto_pad", "SAME_LOWER"), aInts("strides", 2, 2))},
			want:  map[string][]int64{"y": {1, 4, 5, 5}}},
		{name: "conv valid", in: []int64{1, 3, 9, 10}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aStr("auto_pad", "VALID"), aInts("strides", 2, 3))},
			want:  map[string][]int64{"y": {1, 4, 4, 3}}},
		{name: "conv valid too small", in: []int64{1, 3, 2, 2}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"), aStr("auto_pad", "VALID"))},
			want:  map[string][]int64{"y": nil}},
		{name: "conv exact fit", in: []int64{1, 3, 3, 3}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"))},
			want:  map[string][]int64{"y": {1, 4, 1, 1}}},
		{name: "conv kernel larger", in: []int64{1, 3, 2, 8}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w"), ins("y"))},
			want:  map[string][]int64{"y": nil}},
		{name: "conv 1d", in: []int64{2, 3, 10}, inits: w,
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w1"), ins("y"))},
			want:  map[string][]int64{"y": {2, 4, 8}}},
		{name: "conv integer", inits: w, nodes: []*onnxpb.NodeProto{tn("ConvInteger", ins("x", "w2"), ins("y"))},
			want: map[string][]int64{"y": {1, 4, 8, 8}}},
		{name: "qlinear conv", inits: w, nodes: []*onnxpb.NodeProto{tn("QLinearConv", ins("x", "s", "z", "w2", "s", "z", "s", "z"), ins("y"), aInts("strides", 2, 2))},
			want: map[string][]int64{"y": {1, 4, 4, 4}}},
		{name: "conv unknown weight", nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "nowhere"), ins("y"))},
			want: map[string][]int64{"y": nil}},
		{name: "conv weight rank 2", inits: w, nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "wbad"), ins("y"))},
			want: map[string][]int64{"y": nil}},
		{name: "conv unknown input", inits: w, nodes: []*onnxpb.NodeProto{tn("Conv", ins("nowhere", "w"), ins("y"))},
			want: map[string][]int64{"y": nil}},
		{name: "conv kernel rank mismatch", inits: w, nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w1"), ins("y"))},
			want: map[string][]int64{"y": nil}},
		{name: "conv input rank 2", in: []int64{1, 3}, inits: []*onnxpb.TensorProto{shaped("w0", 4, 3, 1)},
			nodes: []*onnxpb.NodeProto{tn("Conv", ins("x", "w0"), ins("y"))},
			want:  map[string][]int64{"y": nil}},
		{name: "bad strides", inits: w, nodes: []*onnxpb.NodeProto{
			tn("Conv", ins("x", "w"), ins("short"), aInts("strides", 2)),
			tn("Conv", ins("x", "w"), ins("zero"), aInts("strides", 0, 1)),
			tn("Conv", ins("x", "w"), ins("dil"), aInts("dilations", 1, 0)),
			tn("Conv", ins("x", "w"), ins("dilshort"), aInts("dilations", 1)),
			tn("Conv", ins("x", "w"), ins("pads"), aInts("pads", 1, 1)),
		}, want: map[string][]int64{"short": nil, "zero": nil, "dil": nil, "dilshort": nil, "pads": nil}},
		{name: "maxpool floor", nodes: []*onnxpb.NodeProto{tn("MaxPool", ins("x"), ins("y"), pool(3, aInts("strides", 2, 2))...)},
			want: map[string][]int64{"y": {1, 3, 3, 3}}},
		{name: "maxpool ceil", nodes: []*onnxpb.NodeProto{tn("MaxPool", ins("x"), ins("y", "idx"), pool(3, aInts("strides", 2, 2), aInt("ceil_mode", 1))...)},
			want: map[string][]int64{"y": {1, 3, 4, 4}, "idx": {1, 3, 4, 4}}},
		{name: "maxpool ceil exact", nodes: []*onnxpb.NodeProto{tn("MaxPool", ins("x"), ins("y"), pool(2, aInts("strides", 2, 2), aInt("ceil_mode", 1))...)},
			want: map[string][]int64{"y": {1, 3, 4, 4}}},
		{name: "maxpool ceil into end pad", in: []int64{1, 3, 4, 4},
			nodes: []*onnxpb.NodeProto{tn("MaxPool", ins("x"), ins("y"), pool(2, aInts("strides", 2, 2), aInts("pads", 0, 0, 1, 1), aInt("ceil_mode", 1))...)},
			want:  map[string][]int64{"y": {1, 3, 2, 2}}},
		{name: "maxpool ceil begin pad", in: []int64{1, 3, 5, 5},
			nodes: []*onnxpb.NodeProto{tn("MaxPool", ins("x"), ins("y"), pool(3, aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1), aInt("ceil_mode", 1))...)},
			want:  map[string][]int64{"y": {1, 3, 3, 3}}},
		{name: "averagepool ceil", in: []int64{1, 3, 6, 6},
			nodes: []*onnxpb.NodeProto{tn("AveragePool", ins("x"), ins("y"), pool(3, aInts("strides", 2, 2), aInt("ceil_mode", 1))...)},
			want:  map[string][]int64{"y": {1, 3, 3, 3}}},
		{name: "lppool", nodes: []*onnxpb.NodeProto{tn("LpPool", ins("x"), ins("y"), pool(2)...)},
			want: map[string][]int64{"y": {1, 3, 7, 7}}},
		{name: "pool bad kernel", nodes: []*onnxpb.NodeProto{
			tn("MaxPool", ins("x"), ins("y"), aInts("kernel_shape", 2)),
			tn("MaxPool", ins("x"), ins("nok")),
			tn("MaxPool", ins("nowhere"), ins("nox"), pool(2)...),
		}, want: map[string][]int64{"y": nil, "nok": nil, "nox": nil}},
		{name: "global pools", in: []int64{2, 5, 4, 7}, nodes: []*onnxpb.NodeProto{
			tn("GlobalAveragePool", ins("x"), ins("avg")), tn("GlobalMaxPool", ins("x"), ins("max")),
			tn("GlobalLpPool", ins("x"), ins("lp")),
		}, want: map[string][]int64{"avg": {2, 5, 1, 1}, "max": {2, 5, 1, 1}, "lp": {2, 5, 1, 1}}},
		{name: "global pool rank 2", in: []int64{2, 5}, nodes: []*onnxpb.NodeProto{tn("GlobalAveragePool", ins("x"), ins("y"))},
			want: map[string][]int64{"y": {2, 5}}},
		{name: "global pool rank 1", in: []int64{2}, nodes: []*onnxpb.NodeProto{tn("GlobalAveragePool", ins("x"), ins("y"))},
			want: map[string][]int64{"y": nil}},
	})
}

func TestInferShapesLinear(t *testing.T) {
	runShapeCases(t, []shapeCase{
		{name: "gemm", in: []int64{2, 3}, inits: []*onnxpb.TensorProto{shaped("b", 3, 5), shaped("bt", 5, 3)},
			nodes: []*onnxpb.NodeProto{
				tn("Gemm", ins("x", "b"), ins("y")),
				tn("Gemm", ins("x", "bt"), ins("yt"), aInt("transB", 1)),
				tn("Gemm", ins("x", "bt"), ins("ya"), aInt("transA", 1), aInt("transB", 0)),
				tn("Gemm", ins("x", "nowhere"), ins("nob")),
			},
			want: map[string][]int64{"y": {2, 5}, "yt": {2, 5}, "ya": {3, 3}, "nob": nil}},
		{name: "gemm rank 3", in: []int64{1, 2, 3}, inits: []*onnxpb.TensorProto{shaped("b", 3, 5)},
			nodes: []*onnxpb.NodeProto{tn("Gemm", ins("x", "b"), ins("y"))}, want: map[string][]int64{"y": nil}},
		{name: "matmul", in: []int64{2, 1, 4, 3},
			inits: []*onnxpb.TensorProto{shaped("b", 5, 3, 6), shaped("v", 3), shaped("bad", 3, 5, 3, 6), shaped("m", 2, 3, 4), shaped("v4", 4)},
			nodes: []*onnxpb.NodeProto{
				tn("MatMul", ins("x", "b"), ins("y")),
				tn("MatMul", ins("x", "v"), ins("xv")),
				tn("MatMul", ins("v", "m"), ins("vm")),
				tn("MatMul", ins("v4", "v4"), ins("dot")),
				tn("MatMul", ins("x", "bad"), ins("nob")),
				tn("MatMulInteger", ins("x", "b"), ins("yi")),
				tn("QLinearMatMul", ins("x", "s", "z", "b", "s", "z", "s", "z"), ins("yq")),
				tn("MatMul", ins("x", "nowhere"), ins("unknown")),
			},
			want: map[string][]int64{"y": {2, 5, 4, 6}, "xv": {2, 1, 4}, "vm": {2, 4}, "dot": {}, "nob": nil,
				"yi": {2, 5, 4, 6}, "yq": {2, 5, 4, 6}, "unknown": nil}},
	})
}

func TestInferShapesElementwise(t *testing.T) {
	runShapeCases(t, []shapeCase{
		{name: "broadcast", inits: []*onnxpb.TensorProto{shaped("c", 3, 1, 1), shaped("one", 1), shaped("row", 8), shaped("bad", 4)},
			nodes: []*onnxpb.NodeProto{
				tn("Add", ins("x", "c"), ins("a")),
				tn("Mul", ins("c", "x"), ins("b")),
				tn("Sub", ins("one", "row"), ins("r")),
				tn("Where", ins("c", "x", "row"), ins("w")),
				tn("Add", ins("x", "bad"), ins("nob")),
				tn("Add", ins("x", "nowhere"), ins("unknown")),
				tn("Relu", ins("a"), ins("relu")),
				tn("Dropout", ins("x"), ins("drop", "mask")),
				tn("Clip", ins("x", "", "one"), ins("clip")),
				tn("Sum", ins("x", "", "c"), ins("sum")),
			},
			want: map[string][]int64{"a": {1, 3, 8, 8}, "b": {1, 3, 8, 8}, "r": {8}, "w": {1, 3, 8, 8}, "nob": nil,
				"unknown": nil, "relu": {1, 3, 8, 8}, "drop": {1, 3, 8, 8}, "mask": {1, 3, 8, 8},
				"clip": {1, 3, 8, 8}, "sum": {1, 3, 8, 8}}},
		{name: "dynamic quantize", nodes: []*onnxpb.NodeProto{tn("DynamicQuantizeLinear", ins("x"), ins("q", "s", "z"))},
			want: map[string][]int64{"q": {1, 3, 8, 8}, "s": {}, "z": {}}},
		{name: "int arithmetic", in: []int64{1},
			inits: []*onnxpb.TensorProto{i64("a", 6, 8), i64("b", 2, 3), i64("k", 2), i64("z", 0, 1)},
			nodes: []*onnxpb.NodeProto{
				tn("Add", ins("a", "b"), ins("add")), tn("Sub", ins("a", "b"), ins("sub")),
				tn("Mul", ins("a", "b"), ins("mul")), tn("Div", ins("a", "b"), ins("div")),
				tn("Mul", ins("k", "a"), ins("kmul")), tn("Sub", ins("a", "k"), ins("subk")),
				tn("Div", ins("a", "z"), ins("divz")), tn("Pow", ins("a", "b"), ins("pow")),
				tn("Sum", ins("a", "b", "k"), ins("sum3")), tn("Add", ins("a", "x"), ins("nox")),
				tn("Identity", ins("a"), ins("id")), tn("Cast", ins("a"), ins("cast")), tn("Neg", ins("a"), ins("neg")),
			},
			want: map[string][]int64{"add": {2}, "kmul": {2}, "sum3": {2}},
			wantInts: map[string][]int64{"add": {8, 11}, "sub": {4, 5}, "mul": {12, 24}, "div": {3, 2},
				"kmul": {12, 16}, "subk": {4, 6}, "divz": nil, "pow": nil, "sum3": nil, "nox": nil,
				"id": {6, 8}, "cast": {6, 8}, "neg": nil}},
		{name: "int arithmetic mismatched lengths", in: []int64{1},
			inits: []*onnxpb.TensorProto{i64("a", 6, 8), i64("c", 1, 2, 3), i64("e"), shaped("f", 2)},
			nodes: []*onnxpb.NodeProto{
				tn("Add", ins("a", "c"), ins("ac")), tn("Add", ins("e", "a"), ins("ea")), tn("Add", ins("a", "e"), ins("ae")),
				tn("Add", ins("a", "f"), ins("af")), tn("Add", ins("f", "a"), ins("fa")),
			},
			wantInts: map[string][]int64{"ac": nil, "ea": nil, "ae": nil, "af": nil, "fa": nil}},
	})
}

func TestInferShapesTensor(t *testing.T) {
	f32 := func(name string, v ...float32) *onnxpb.TensorProto { return Float32Vector(name, v) }
	runShapeCases(t, []shapeCase{
		{name: "concat", inits: []*onnxpb.TensorProto{shaped("c", 1, 5, 8, 8), shaped("r3", 1, 5, 8), shaped("w", 1, 3, 8, 2)},
			nodes: []*onnxpb.NodeProto{
				tn("Concat", ins("x", "c"), ins("y"), aInt("axis", 1)),
				tn("Concat", ins("x", "w", "x"), ins("last"), aInt("axis", -1)),
				tn("Concat", ins("x", "x"), ins("first")),
				tn("Concat", ins("x", "r3"), ins("rank"), aInt("axis", 1)),
				tn("Concat", ins("x", "c"), ins("far"), aInt("axis", 4)),
				tn("Concat", ins("x", "c"), ins("neg"), aInt("axis", -5)),
				tn("Concat", ins("x", "nowhere"), ins("unknown"), aInt("axis", 1)),
			},
			want: map[string][]int64{"y": {1, 8, 8, 8}, "last": {1, 3, 8, 18}, "first": {2, 3, 8, 8}, "rank": nil,
				"far": nil, "neg": nil, "unknown": nil}},
		{name: "concat values", in: []int64{1}, inits: []*onnxpb.TensorProto{i64("a", 1, 2), i64("b", 3), shaped("f", 2)},
			nodes:    []*onnxpb.NodeProto{tn("Concat", ins("a", "b"), ins("ab")), tn("Concat", ins("a", "f"), ins("af"))},
			want:     map[string][]int64{"ab": {3}, "af": {4}},
			wantInts: map[string][]int64{"ab": {1, 2, 3}, "af": nil}},
		{name: "concat 2-D values", in: []int64{1}, inits: []*onnxpb.TensorProto{i64("a", 1, 2)},
			nodes:    []*onnxpb.NodeProto{tn("Unsqueeze", ins("a"), ins("a2"), aInts("axes", 0)), tn("Concat", ins("a2", "a2"), ins("y"))},
			want:     map[string][]int64{"y": {2, 2}},
			wantInts: map[string][]int64{"y": nil}},
		{name: "resize", inits: []*onnxpb.TensorProto{f32("sc", 1, 1, 2, 1.5), i64("sz", 1, 3, 5, 7), f32("short", 2, 2)},
			nodes: []*onnxpb.NodeProto{
				tn("Resize", ins("x", "", "sc"), ins("scaled")),
				tn("Resize", ins("x", "", "", "sz"), ins("sized")),
				tn("Resize", ins("x", "", "short"), ins("bad")),
				tn("Resize", ins("x", "", "nowhere"), ins("unknown")),
				tn("Resize", ins("nowhere", "", "sc"), ins("nox")),
			},
			want: map[string][]int64{"scaled": {1, 3, 16, 12}, "sized": {1, 3, 5, 7}, "bad": nil, "unknown": nil, "nox": nil}},
		{name: "resize opset 10", opset: 10, in: []int64{1, 3, 5, 5}, inits: []*onnxpb.TensorProto{f32("sc", 1, 1, 1.5, 2)},
			nodes: []*onnxpb.NodeProto{tn("Resize", ins("x", "sc"), ins("y"))},
			want:  map[string][]int64{"y": {1, 3, 7, 10}}},
		{name: "upsample", opset: 7, in: []int64{1, 3, 5, 5}, inits: []*onnxpb.TensorProto{f32("sc", 1, 1, 2, 3)},
			nodes: []*onnxpb.NodeProto{
				tn("Upsample", ins("x"), ins("attr"), aFloats("scales", 1, 1, 2, 2)),
				tn("Upsample", ins("x", "sc"), ins("input")),
				tn("Upsample", ins("x"), ins("none")),
			},
			want: map[string][]int64{"attr": {1, 3, 10, 10}, "input": {1, 3, 10, 15}, "none": nil}},
		{name: "pad", inits: []*onnxpb.TensorProto{i64("p", 0, 0, 1, 2, 0, 0, 3, 4), i64("short", 1, 1), i64("ax", 2)},
			nodes: []*onnxpb.NodeProto{
				tn("Pad", ins("x", "p"), ins("input")),
				tn("Pad", ins("x"), ins("attr"), aInts("pads", 0, 1, 0, 0, 0, 1, 0, 0)),
				tn("Pad", ins("x", "short"), ins("bad")),
				tn("Pad", ins("x", "p", "", "ax"), ins("axes")),
				tn("Pad", ins("x", "nowhere"), ins("unknown")),
				tn("Pad", ins("nowhere", "p"), ins("nox")),
			},
			want: map[string][]int64{"input": {1, 3, 12, 14}, "attr": {1, 5, 8, 8}, "bad": nil, "axes": nil, "unknown": nil, "nox": nil}},
		{name: "reshape", inits: []*onnxpb.TensorProto{
			i64("keep", 0, -1), i64("three", 2, -1, 4), i64("two", -1, -1), i64("neg", -2, 96), i64("zfar", 0, 0, 0, 0, 0),
			i64("odd", 5, -1), i64("count", 2, 2), i64("zero", 0, 192), i64("zinf", 0, -1), i64("full", 3, 64),
		},
			nodes: []*onnxpb.NodeProto{
				tn("Reshape", ins("x", "keep"), ins("keep_")), tn("Reshape", ins("x", "three"), ins("three_")),
				tn("Reshape", ins("x", "two"), ins("two_")), tn("Reshape", ins("x", "neg"), ins("neg_")),
				tn("Reshape", ins("x", "zfar"), ins("zfar_")), tn("Reshape", ins("x", "odd"), ins("odd_")),
				tn("Reshape", ins("x", "count"), ins("count_")),
				tn("Reshape", ins("x", "zero"), ins("zero_"), aInt("allowzero", 1)),
				tn("Reshape", ins("x", "zinf"), ins("zinf_"), aInt("allowzero", 1)),
				tn("Reshape", ins("x", "full"), ins("full_")),
				tn("Reshape", ins("x", "nowhere"), ins("unknown")),
			},
			want: map[string][]int64{"keep_": {1, 192}, "three_": {2, 24, 4}, "two_": nil, "neg_": nil, "zfar_": nil,
				"odd_": nil, "count_": nil, "zero_": nil, "zinf_": nil, "full_": {3, 64}, "unknown": nil}},
		{name: "reshape values", in: []int64{1}, inits: []*onnxpb.TensorProto{i64("v", 4, 5, 6), i64("t", -1), i64("bad", 2)},
			nodes:    []*onnxpb.NodeProto{tn("Reshape", ins("v", "t"), ins("y")), tn("Reshape", ins("v", "bad"), ins("nob"))},
			want:     map[string][]int64{"y": {3}, "nob": nil},
			wantInts: map[string][]int64{"y": {4, 5, 6}, "nob": nil}},
	})
}

// TestInferShapesAxes: operators that move, add or remove axes.
func TestInferShapesAxes(t *testing.T) {
	runShapeCases(t, []shapeCase{
		{name: "transpose", in: []int64{1, 2, 3, 4}, nodes: []*onnxpb.NodeProto{
			tn("Transpose", ins("x"), ins("rev")),
			tn("Transpose", ins("x"), ins("perm"), aInts("perm", 0, 2, 3, 1)),
			tn("Transpose", ins("x"), ins("short"), aInts("perm", 0, 1)),
			tn("Transpose", ins("x"), ins("far"), aInts("perm", 0, 1, 2, 4)),
			tn("Transpose", ins("x"), ins("neg"), aInts("perm", 0, 1, 2, -1)),
			tn("Transpose", ins("nowhere"), ins("unknown")),
		}, want: map[string][]int64{"rev": {4, 3, 2, 1}, "perm": {1, 3, 4, 2}, "short": nil, "far": nil, "neg": nil, "unknown": nil}},
		{name: "flatten", in: []int64{2, 3, 4, 5}, nodes: []*onnxpb.NodeProto{
			tn("Flatten", ins("x"), ins("def")),
			tn("Flatten", ins("x"), ins("zero"), aInt("axis", 0)),
			tn("Flatten", ins("x"), ins("neg"), aInt("axis", -1)),
			tn("Flatten", ins("x"), ins("end"), aInt("axis", 4)),
			tn("Flatten", ins("x"), ins("far"), aInt("axis", 5)),
			tn("Flatten", ins("x"), ins("negfar"), aInt("axis", -5)),
			tn("Flatten", ins("nowhere"), ins("unknown")),
			tn("Flatten", ins("nowhere"), ins("unknown0"), aInt("axis", 0)),
		}, want: map[string][]int64{"def": {2, 60}, "zero": {1, 120}, "neg": {24, 5}, "end": {120, 1}, "far": nil, "negfar": nil,
			"unknown": nil, "unknown0": nil}},
		{name: "unsqueeze squeeze", in: []int64{3, 1, 4}, inits: []*onnxpb.TensorProto{i64("ax", 0, -1), i64("one", 1)},
			nodes: []*onnxpb.NodeProto{
				tn("Unsqueeze", ins("x", "ax"), ins("u")),
				tn("Unsqueeze", ins("x"), ins("ua"), aInts("axes", 1, 3)),
				tn("Unsqueeze", ins("x"), ins("none")),
				tn("Squeeze", ins("x"), ins("all")),
				tn("Squeeze", ins("x", "one"), ins("s1")),
				tn("Squeeze", ins("u"), ins("sa"), aInts("axes", 0, -1)),
				tn("Squeeze", ins("nowhere"), ins("unknown")),
				tn("Unsqueeze", ins("nowhere", "ax"), ins("unknown2")),
				tn("Unsqueeze", ins("x"), ins("dup"), aInts("axes", 0, 0)),
				tn("Unsqueeze", ins("x"), ins("dupneg"), aInts("axes", 4, -1)),
				tn("Unsqueeze", ins("x"), ins("far"), aInts("axes", 5)),
				tn("Unsqueeze", ins("x"), ins("negfar"), aInts("axes", -6)),
				tn("Unsqueeze", ins("x"), ins("edges"), aInts("axes", -5, 4)),
			},
			want: map[string][]int64{"u": {1, 3, 1, 4, 1}, "ua": {3, 1, 1, 1, 4}, "none": nil, "all": {3, 4}, "s1": {3, 4},
				"sa": {3, 1, 4}, "unknown": nil, "unknown2": nil, "dup": nil, "dupneg": nil, "far": nil, "negfar": nil,
				"edges": {1, 3, 1, 4, 1}}},
		{name: "unsqueeze squeeze values", in: []int64{1}, inits: []*onnxpb.TensorProto{i64("v", 7), i64("ax", 0)},
			nodes:    []*onnxpb.NodeProto{tn("Squeeze", ins("v"), ins("s")), tn("Unsqueeze", ins("s", "ax"), ins("u"))},
			want:     map[string][]int64{"s": {}, "u": {1}},
			wantInts: map[string][]int64{"s": {7}, "u": {7}}},
		{name: "reduce", in: []int64{2, 3, 4, 5}, inits: []*onnxpb.TensorProto{i64("ax", 1)},
			nodes: []*onnxpb.NodeProto{
				tn("ReduceMean", ins("x"), ins("keep"), aInts("axes", 2, -1)),
				tn("ReduceMax", ins("x"), ins("drop"), aInts("axes", 2, 3), aInt("keepdims", 0)),
				tn("ReduceMin", ins("x"), ins("allkeep"), aInts("axes")),
				tn("ReduceSum", ins("x"), ins("alldrop"), aInts("axes"), aInt("keepdims", 0)),
				tn("ReduceSum", ins("x", "ax"), ins("input")),
				tn("ReduceSum", ins("x"), ins("noaxes")),
				tn("ReduceSum", ins("nowhere"), ins("unknown"), aInts("axes", 1)),
			},
			want: map[string][]int64{"keep": {2, 3, 1, 1}, "drop": {2, 3}, "allkeep": {1, 1, 1, 1}, "alldrop": {},
				"input": {2, 1, 4, 5}, "noaxes": nil, "unknown": nil}},
	})
}

func TestInferShapesSlice(t *testing.T) {
	big := int64(math.MaxInt64)
	runShapeCases(t, []shapeCase{
		{name: "slice attrs", opset: 9, nodes: []*onnxpb.NodeProto{
			tn("Slice", ins("x"), ins("y"), aInts("starts", 1, 2), aInts("ends", 3, 100), aInts("axes", 1, -1)),
			tn("Slice", ins("x"), ins("noaxes"), aInts("starts", 0, 1), aInts("ends", 1, 2)),
			tn("Slice", ins("x"), ins("short"), aInts("starts", 0, 1), aInts("ends", 1)),
		}, want: map[string][]int64{"y": {1, 2, 8, 6}, "noaxes": {1, 1, 8, 8}, "short": nil}},
		{name: "slice inputs", in: []int64{1, 3, 416, 416},
			inits: []*onnxpb.TensorProto{i64("s0", 0), i64("s1", 1), i64("end", big), i64("ax", 2), i64("st", 2),
				i64("m1", -1), i64("mbig", -big), i64("m3", -3), i64("zero", 0), i64("two", 0, 1), i64("neg5", -5)},
			nodes: []*onnxpb.NodeProto{
				tn("Slice", ins("x", "s0", "end", "ax", "st"), ins("even")),
				tn("Slice", ins("x", "s1", "end", "ax", "st"), ins("odd")),
				tn("Slice", ins("x", "m1", "mbig", "ax", "m1"), ins("rev")),
				tn("Slice", ins("x", "m3", "m1", "m1"), ins("tail")),
				tn("Slice", ins("x", "s1", "s0", "ax"), ins("empty")),
				tn("Slice", ins("x", "s0", "s1", "ax", "zero"), ins("step0")),
				tn("Slice", ins("x", "s0", "s1", "neg5"), ins("farneg")),
				tn("Slice", ins("x", "s0", "two", "ax"), ins("mismatch")),
				tn("Slice", ins("x", "s0", "s1", "ax", "two"), ins("steps")),
				tn("Slice", ins("x", "s0", "s1"), ins("first")),
				tn("Slice", ins("x", "nowhere", "s1"), ins("nostart")),
				tn("Slice", ins("x", "s0", "nowhere"), ins("noend")),
				tn("Slice", ins("x", "s0", "s1", "nowhere"), ins("noaxes")),
				tn("Slice", ins("x", "s0", "s1", "ax", "nowhere"), ins("nosteps")),
				tn("Slice", ins("x", "s0", "s1", "", "st"), ins("defaxes")),
				tn("Slice", ins("nowhere", "s0", "s1"), ins("unknown")),
				tn("Slice", ins("x", "m3", "s1", "ax", "m1"), ins("revpart")),
			},
			want: map[string][]int64{"even": {1, 3, 208, 416}, "odd": {1, 3, 208, 416}, "rev": {1, 3, 416, 416},
				"tail": {1, 3, 416, 2}, "empty": {1, 3, 0, 416}, "step0": nil, "farneg": nil, "mismatch": nil,
				"steps": nil, "first": {1, 3, 416, 416}, "nostart": nil, "noend": nil, "noaxes": nil, "nosteps": nil,
				"defaxes": {1, 3, 416, 416}, "unknown": nil, "revpart": {1, 3, 412, 416}}},
		{name: "slice values", in: []int64{2, 3, 5, 7},
			inits: []*onnxpb.TensorProto{i64("s2", 2), i64("e4", 4), i64("z", 0), i64("m1", -1), i64("mbig", -big),
				i64("s1", 1), i64("st2", 2), i64("end", big)},
			nodes: []*onnxpb.NodeProto{
				tn("Shape", ins("x"), ins("shape")),
				tn("Slice", ins("shape", "s2", "e4"), ins("hw")),
				tn("Slice", ins("shape", "m1", "mbig", "z", "m1"), ins("rev")),
				tn("Slice", ins("shape", "s1", "end", "z", "st2"), ins("odd")),
				tn("Slice", ins("shape", "z", "e4", "z"), ins("head")),
			},
			want:     map[string][]int64{"shape": {4}, "hw": {2}, "rev": {4}, "odd": {2}},
			wantInts: map[string][]int64{"shape": {2, 3, 5, 7}, "hw": {5, 7}, "rev": {7, 5, 3, 2}, "odd": {3, 7}, "head": {2, 3, 5, 7}}},
		{name: "slice values no axes", opset: 9, in: []int64{2, 3},
			nodes:    []*onnxpb.NodeProto{tn("Shape", ins("x"), ins("shape")), tn("Slice", ins("shape"), ins("all"), aInts("starts"), aInts("ends"))},
			want:     map[string][]int64{"all": {2}},
			wantInts: map[string][]int64{"all": {2, 3}}},
		{name: "split", in: []int64{1, 5, 4}, inits: []*onnxpb.TensorProto{i64("parts", 1, 4), i64("bad", 1, 1, 3)},
			nodes: []*onnxpb.NodeProto{
				tn("Split", ins("x"), ins("a", "b"), aInt("axis", 1)),
				tn("Split", ins("x"), ins("c", "d", "e"), aInt("axis", 1)),
				tn("Split", ins("x", "parts"), ins("f", "g"), aInt("axis", -2)),
				tn("Split", ins("x"), ins("h", "i"), aInt("axis", 1), aInts("split", 2, 3)),
				tn("Split", ins("x", "bad"), ins("j", "k"), aInt("axis", 1)),
				tn("Split", ins("x"), ins("l", "m"), aInt("axis", 3)),
				tn("Split", ins("x"), ins("n", "o"), aInt("axis", -4)),
				tn("Split", ins("x"), ins("p", "q")),
				tn("Split", ins("nowhere"), ins("r", "s")),
				tn("Split", ins("x"), ins("t", "u"), aInt("axis", 1), aInts("split")),
			},
			want: map[string][]int64{"a": {1, 3, 4}, "b": {1, 2, 4}, "c": {1, 2, 4}, "d": {1, 2, 4}, "e": {1, 1, 4},
				"f": {1, 1, 4}, "g": {1, 4, 4}, "h": {1, 2, 4}, "i": {1, 3, 4}, "j": nil, "k": nil, "l": nil, "m": nil,
				"n": nil, "o": nil, "p": {1, 5, 4}, "q": {0, 5, 4}, "r": nil, "s": nil, "t": {1, 3, 4}, "u": {1, 2, 4}}},
		{name: "gather", in: []int64{2, 5, 3}, inits: []*onnxpb.TensorProto{shaped("idx", 4), shaped("sc"), shaped("i2", 2, 2)},
			nodes: []*onnxpb.NodeProto{
				tn("Gather", ins("x", "idx"), ins("a0")),
				tn("Gather", ins("x", "idx"), ins("a1"), aInt("axis", 1)),
				tn("Gather", ins("x", "sc"), ins("neg"), aInt("axis", -1)),
				tn("Gather", ins("x", "i2"), ins("mat"), aInt("axis", 2)),
				tn("Gather", ins("x", "idx"), ins("far"), aInt("axis", 3)),
				tn("Gather", ins("x", "idx"), ins("negfar"), aInt("axis", -4)),
				tn("Gather", ins("x", "nowhere"), ins("noidx")),
				tn("Gather", ins("nowhere", "idx"), ins("nox")),
			},
			want: map[string][]int64{"a0": {4, 5, 3}, "a1": {2, 4, 3}, "neg": {2, 5}, "mat": {2, 5, 2, 2}, "far": nil,
				"negfar": nil, "noidx": nil, "nox": nil}},
		{name: "gather values", in: []int64{2, 3, 5},
			inits: []*onnxpb.TensorProto{i64("i0", 0), i64("ilast", 1, -1), i64("ifar", 3), i64("ineg", -4),
				{Name: proto.String("s"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: []int64{2}}},
			nodes: []*onnxpb.NodeProto{
				tn("Shape", ins("x"), ins("shape")),
				tn("Gather", ins("shape", "i0"), ins("n")),
				tn("Gather", ins("shape", "ilast"), ins("last")),
				tn("Gather", ins("shape", "s"), ins("scalar")),
				tn("Gather", ins("shape", "ifar"), ins("far")),
				tn("Gather", ins("shape", "ineg"), ins("neg")),
			},
			want:     map[string][]int64{"n": {1}, "last": {2}, "scalar": {}, "far": {1}},
			wantInts: map[string][]int64{"n": {2}, "last": {3, 5}, "scalar": {5}, "far": nil, "neg": nil}},
	})
}

func TestInferShapesConst(t *testing.T) {
	ext := i64("ext", 1, 2)
	ext.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	msConst := tn("Constant", nil, ins("ms"), &onnxpb.AttributeProto{Name: proto.String("value"), T: i64("", 1)})
	msConst.Domain = proto.String("com.microsoft")
	value := func(t *onnxpb.TensorProto) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
	}
	bigInts := make([]int64, 65)
	edge := make([]int64, 64)
	runShapeCases(t, []shapeCase{
		{name: "constants", in: []int64{1},
			inits: []*onnxpb.TensorProto{ext, i64("big", bigInts...), i64("edge", edge...),
				{Name: proto.String("bad"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{2}, Int64Data: []int64{1}},
				Int32Vector("i32", []int32{-3, 4}), Float32Vector("f", []float32{1.5})},
			nodes: []*onnxpb.NodeProto{
				tn("Constant", nil, ins("t"), value(i64("", 4, 5))),
				tn("Constant", nil, ins("vi"), aInt("value_int", 9)),
				tn("Constant", nil, ins("vis"), aInts("value_ints", 1, 2, 3)),
				tn("Constant", nil, ins("vf"), &onnxpb.AttributeProto{Name: proto.String("value_float"), F: proto.Float32(2)}),
				tn("Constant", nil, ins("vfs"), aFloats("value_floats", 1, 2)),
				tn("Constant", nil, ins("none"), aStr("value_string", "a")),
				msConst,
			},
			want: map[string][]int64{"t": {2}, "vi": {}, "vis": {3}, "vf": {}, "vfs": {2}, "none": nil, "ms": nil,
				"ext": nil, "big": {65}, "edge": {64}, "bad": {2}},
			wantInts: map[string][]int64{"t": {4, 5}, "vi": {9}, "vis": {1, 2, 3}, "big": nil, "edge": edge,
				"bad": nil, "i32": {-3, 4}, "f": nil, "ext": nil}},
		{name: "shape", in: []int64{2, 3, 5, 7}, nodes: []*onnxpb.NodeProto{
			tn("Shape", ins("x"), ins("all")),
			tn("Shape", ins("x"), ins("mid"), aInt("start", 1), aInt("end", -1)),
			tn("Shape", ins("x"), ins("tail"), aInt("start", -2)),
			tn("Shape", ins("x"), ins("none"), aInt("start", 3), aInt("end", 3)),
			tn("Shape", ins("x"), ins("back"), aInt("start", 3), aInt("end", 1)),
			tn("Shape", ins("x"), ins("clamp"), aInt("start", -10), aInt("end", 10)),
			tn("Shape", ins("nowhere"), ins("unknown")),
		}, want: map[string][]int64{"all": {4}, "mid": {2}, "tail": {2}, "none": {0}, "back": {0}, "clamp": {4}, "unknown": nil},
			wantInts: map[string][]int64{"all": {2, 3, 5, 7}, "mid": {3, 5}, "tail": {5, 7}, "none": {}, "back": {}, "clamp": {2, 3, 5, 7}, "unknown": nil}},
	})
	s, err := InferShapes(shapeModel(shapeCase{in: []int64{1}, inits: []*onnxpb.TensorProto{Float32Vector("f", []float32{1.5, 2})}}), []int64{1})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.floats["f"]; !slices.Equal(got, []float32{1.5, 2}) {
		t.Errorf("float constant %v", got)
	}
}

func TestTensorInts(t *testing.T) {
	int64s, int32s := proto.Int32(int32(onnxpb.TensorProto_INT64)), proto.Int32(int32(onnxpb.TensorProto_INT32))
	raw64 := []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0, 0, 0, 0, 1}
	raw32 := []byte{0xfe, 0xff, 0xff, 0xff, 3, 0, 0, 1}
	for _, c := range []struct {
		name string
		t    *onnxpb.TensorProto
		want []int64
		err  string
	}{
		{"int64 field", &onnxpb.TensorProto{DataType: int64s, Int64Data: []int64{-1, 5}}, []int64{-1, 5}, ""},
		{"int64 raw", &onnxpb.TensorProto{DataType: int64s, RawData: raw64}, []int64{-2, 1<<56 | 3}, ""},
		{"int64 empty raw", &onnxpb.TensorProto{DataType: int64s, RawData: []byte{}, Int64Data: []int64{1}}, []int64{}, ""},
		{"int64 odd raw", &onnxpb.TensorProto{Name: proto.String("a"), DataType: int64s, RawData: raw64[:12]}, nil, `tensor "a" (data_type INT64): 12 bytes`},
		{"int32 field", &onnxpb.TensorProto{DataType: int32s, Int32Data: []int32{-7, 8}}, []int64{-7, 8}, ""},
		{"int32 raw", &onnxpb.TensorProto{DataType: int32s, RawData: raw32}, []int64{-2, 1<<24 | 3}, ""},
		{"int32 odd raw", &onnxpb.TensorProto{Name: proto.String("b"), DataType: int32s, RawData: raw32[:6]}, nil, `tensor "b" (data_type INT32): 6 bytes`},
		{"int8 raw", Int8Vector("d", []int8{-128, 127, -1}), []int64{-128, 127, -1}, ""},
		{"uint8 raw", Uint8Vector("e", []uint8{0, 255, 128}), []int64{0, 255, 128}, ""},
		{"int8 field", &onnxpb.TensorProto{DataType: proto.Int32(int32(onnxpb.TensorProto_INT8)), Int32Data: []int32{-3, 4}}, []int64{-3, 4}, ""},
		{"float", Float32Vector("c", []float32{1}), nil, `tensor "c" (data_type FLOAT): want INT64, INT32, INT8 or UINT8`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := TensorInts(c.t)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || got != nil {
					t.Fatalf("got %v, %v; want error %q", got, err, c.err)
				}
				return
			}
			if err != nil || got == nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestConstantValue(t *testing.T) {
	if ConstantValue(nil) != nil || ConstantValue(tn("Relu", nil, ins("y"))) != nil {
		t.Error("not a Constant node: want nil")
	}
	ai := tn("Constant", nil, ins("y"), aInts("value_ints", 1, 2))
	ai.Domain = proto.String("ai.onnx")
	got := ConstantValue(ai)
	if v, err := TensorInts(got); err != nil || !slices.Equal(v, []int64{1, 2}) || !slices.Equal(got.GetDims(), []int64{2}) {
		t.Errorf("ai.onnx value_ints: %v %v", got, err)
	}
	f := ConstantValue(tn("Constant", nil, ins("y"), &onnxpb.AttributeProto{Name: proto.String("value_float"), F: proto.Float32(2.5)}))
	if v, err := TensorFloats(f); err != nil || !slices.Equal(v, []float32{2.5}) || len(f.GetDims()) != 0 {
		t.Errorf("value_float: %v %v", f, err)
	}
	fs := ConstantValue(tn("Constant", nil, ins("y"), aFloats("value_floats", 1, 2)))
	if v, err := TensorFloats(fs); err != nil || !slices.Equal(v, []float32{1, 2}) || !slices.Equal(fs.GetDims(), []int64{2}) {
		t.Errorf("value_floats: %v %v", fs, err)
	}
	i := ConstantValue(tn("Constant", nil, ins("y"), aInt("value_int", -4)))
	if v, err := TensorInts(i); err != nil || !slices.Equal(v, []int64{-4}) || len(i.GetDims()) != 0 {
		t.Errorf("value_int: %v %v", i, err)
	}
}
