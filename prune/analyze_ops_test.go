package prune_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// TestAnalyzeBetweenConvs puts one node between two Convs (convA, 8
// channels → mid → convB, 4 channels) and checks whether convA's channels
// pass through it (prunable, mid listed) or are blocked, and why.
func TestAnalyzeBetweenConvs(t *testing.T) {
	f32 := func(b *graphBuilder, name string, v ...float32) string {
		b.inits = append(b.inits, onnx.Float32Vector(name, v))
		return name
	}
	i64 := func(b *graphBuilder, name string, v ...int64) string {
		b.inits = append(b.inits, onnx.NewInitializer(name, onnxpb.TensorProto_INT64, []int64{int64(len(v))}, int64Bytes(v)))
		return name
	}
	constant := func(b *graphBuilder, name string, dims ...int64) string {
		n := onnx.NumElements(&onnxpb.TensorProto{Dims: dims})
		b.inits = append(b.inits, onnx.Float32Tensor(name, dims, b.randoms(int(n), 1)))
		return name
	}
	up := []int64{1, 8, 16, 16}
	same := []int64{1, 8, 8, 8}
	passes := func(node string) []wantGroup {
		return []wantGroup{{8, []string{"convA"}, []string{"convB"}, []string{node}, ""}, {4, []string{"convB"}, nil, nil, "graph output"}}
	}
	blocked := func(reason string) []wantGroup {
		return []wantGroup{{8, []string{"convA"}, nil, nil, reason}, {4, []string{"convB"}, nil, nil, "graph output"}}
	}
	for _, c := range []struct {
		name  string
		opset int64
		mid   func(b *graphBuilder, a string) string
		want  []wantGroup
	}{
		{"resize scales", 13, func(b *graphBuilder, a string) string {
			return b.node("Resize", "mid", []string{a, "", f32(b, "sc", 1, 1, 2, 2)}, up)
		}, passes("mid")},
		{"resize opset 10", 10, func(b *graphBuilder, a string) string {
			return b.node("Resize", "mid", []string{a, f32(b, "sc", 1, 1, 2, 2)}, up)
		}, passes("mid")},
		{"resize channel scale", 13, func(b *graphBuilder, a string) string {
			return b.node("Resize", "mid", []string{a, "", f32(b, "sc", 1, 2, 2, 2)}, []int64{1, 16, 16, 16})
		}, blocked(`Resize "mid" has no constant scales of 1 on the channel axis`)},
		{"resize sizes", 13, func(b *graphBuilder, a string) string {
			return b.node("Resize", "mid", []string{a, "", "", i64(b, "sz", 1, 8, 16, 16)}, up)
		}, blocked(`Resize "mid" sets output sizes`)},
		{"upsample attribute", 8, func(b *graphBuilder, a string) string {
			return b.node("Upsample", "mid", []string{a}, up, &onnxpb.AttributeProto{Name: proto.String("scales"),
				Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: []float32{1, 1, 2, 2}})
		}, passes("mid")},
		{"upsample input", 9, func(b *graphBuilder, a string) string {
			return b.node("Upsample", "mid", []string{a, f32(b, "sc", 1, 1, 2, 2)}, up)
		}, passes("mid")},
		{"pad attribute", 10, func(b *graphBuilder, a string) string {
			return b.node("Pad", "mid", []string{a}, []int64{1, 8, 10, 10}, intsAttr("pads", 0, 0, 1, 1, 0, 0, 1, 1))
		}, passes("mid")},
		{"pad input", 13, func(b *graphBuilder, a string) string {
			return b.node("Pad", "mid", []string{a, i64(b, "p", 0, 0, 1, 1, 0, 0, 1, 1)}, []int64{1, 8, 10, 10})
		}, passes("mid")},
		{"pad with axes", 18, func(b *graphBuilder, a string) string {
			return b.node("Pad", "mid", []string{a, i64(b, "p", 0, 0, 1, 1, 0, 0, 1, 1), "", i64(b, "ax", 0, 1, 2, 3)}, []int64{1, 8, 10, 10})
		}, blocked(`Pad "mid" has no constant pads of 0 on the channel axis`)},
		{"pad channels", 13, func(b *graphBuilder, a string) string {
			return b.node("Pad", "mid", []string{a, i64(b, "p", 0, 1, 0, 0, 0, 0, 0, 0)}, []int64{1, 9, 8, 8})
		}, blocked(`Pad "mid" has no constant pads of 0 on the channel axis`)},
		{"pad channels at the end", 13, func(b *graphBuilder, a string) string {
			return b.node("Pad", "mid", []string{a, i64(b, "p", 0, 0, 0, 0, 0, 1, 0, 0)}, []int64{1, 9, 8, 8})
		}, blocked(`Pad "mid" has no constant pads of 0 on the channel axis`)},
		{"add spatial constant", 13, func(b *graphBuilder, a string) string {
			return b.node("Add", "mid", []string{a, constant(b, "k", 1, 1, 8, 8)}, same)
		}, passes("mid")},
		{"add rank-3 constant", 13, func(b *graphBuilder, a string) string {
			return b.node("Mul", "mid", []string{a, constant(b, "k", 1, 1, 1)}, same)
		}, passes("mid")},
		{"add scalar", 13, func(b *graphBuilder, a string) string {
			return b.node("Add", "mid", []string{a, constant(b, "k")}, same)
		}, passes("mid")},
		{"add channel constant", 13, func(b *graphBuilder, a string) string {
			return b.node("Add", "mid", []string{a, constant(b, "k", 8, 1, 1)}, same)
		}, blocked(`Add "mid" scales channels by constant "k"`)},
		{"add rank-5 constant", 13, func(b *graphBuilder, a string) string {
			return b.node("Add", "mid", []string{a, constant(b, "k", 1, 1, 1, 1, 1)}, []int64{1, 1, 8, 8, 8})
		}, blocked(`Add "mid" broadcasts constant "k"`)},
		{"batchnorm", 13, func(b *graphBuilder, a string) string {
			return b.bn("mid", a)
		}, passes("mid")},
		{"batchnorm training", 13, func(b *graphBuilder, a string) string {
			out := b.bn("mid", a)
			b.nodes[len(b.nodes)-1].Output = append(b.nodes[len(b.nodes)-1].Output, "running_mean")
			return out
		}, blocked(`BatchNormalization "mid" in training mode`)},
		{"batchnorm short parameter", 13, func(b *graphBuilder, a string) string {
			out := b.bn("mid", a)
			b.nodes[len(b.nodes)-1].Input[3] = f32(b, "short", 1, 2)
			return out
		}, blocked(`BatchNormalization "mid" parameter "short" is not a FLOAT initializer of 8 values`)},
		{"batchnorm missing parameter", 13, func(b *graphBuilder, a string) string {
			out := b.bn("mid", a)
			b.nodes[len(b.nodes)-1].Input = b.nodes[len(b.nodes)-1].Input[:4]
			return out
		}, blocked(`BatchNormalization "mid" has unexpected inputs`)},
		{"maxpool indices", 13, func(b *graphBuilder, a string) string {
			out := b.node("MaxPool", "mid", []string{a}, same, intsAttr("kernel_shape", 1, 1))
			b.nodes[len(b.nodes)-1].Output = append(b.nodes[len(b.nodes)-1].Output, "indices")
			return out
		}, blocked(`MaxPool "mid" outputs indices`)},
		{"dropout mask", 13, func(b *graphBuilder, a string) string {
			out := b.node("Dropout", "mid", []string{a}, same)
			b.nodes[len(b.nodes)-1].Output = append(b.nodes[len(b.nodes)-1].Output, "mask")
			return out
		}, passes("mid")},
		{"dropout", 13, func(b *graphBuilder, a string) string {
			return b.node("Dropout", "mid", []string{a}, same)
		}, passes("mid")},
		{"dropout mask as graph output", 13, func(b *graphBuilder, a string) string {
			out := b.node("Dropout", "mid", []string{a}, same)
			b.nodes[len(b.nodes)-1].Output = append(b.nodes[len(b.nodes)-1].Output, "mask")
			b.outputs = append(b.outputs, tensorInfo("mask", onnxpb.TensorProto_BOOL, same))
			return out
		}, []wantGroup{{8, []string{"convA"}, []string{"convB"}, []string{"mid"}, `graph output "mask"`}, {4, []string{"convB"}, nil, nil, "graph output"}}},
		{"dropout without mask, then resize without roi", 13, func(b *graphBuilder, a string) string {
			d := b.node("Dropout", "mid", []string{a}, same)
			b.nodes[len(b.nodes)-1].Output = append(b.nodes[len(b.nodes)-1].Output, "") // no mask: an empty name is no tensor
			return b.node("Resize", "up", []string{d, "", f32(b, "sc", 1, 1, 2, 2)}, up)
		}, []wantGroup{{8, []string{"convA"}, []string{"convB"}, []string{"mid", "up"}, ""}, {4, []string{"convB"}, nil, nil, "graph output"}}},
		{"prelu slope from the channels", 13, func(b *graphBuilder, a string) string {
			return b.node("PRelu", "mid", []string{a, a}, same)
		}, passes("mid")},
		{"clip bound from the channels", 13, func(b *graphBuilder, a string) string {
			return b.node("Clip", "mid", []string{a, a}, same)
		}, blocked(`Clip "mid" reads channels through a parameter input`)},
		{"clip bound only from the channels", 13, func(b *graphBuilder, a string) string {
			return b.node("Clip", "mid", []string{f32(b, "lo", 0), a}, same)
		}, blocked(`Clip "mid" reads channels through a parameter input`)},
		{"resize scales from the channels", 13, func(b *graphBuilder, a string) string {
			return b.node("Resize", "mid", []string{a, "", a}, same)
		}, blocked(`Resize "mid" reads channels through a parameter input`)},
		{"pad from the channels", 13, func(b *graphBuilder, a string) string {
			return b.node("Pad", "mid", []string{a, a}, same)
		}, blocked(`Pad "mid" reads channels through a parameter input`)},
		{"add graph input", 13, func(b *graphBuilder, a string) string {
			return b.node("Add", "mid", []string{a, b.input("bias", 8, 8)}, same) // rank 2: no channels tracked
		}, blocked(`Add "mid" combines channels with untracked tensor "bias"`)},
		{"add graph input of unknown channels", 13, func(b *graphBuilder, a string) string {
			skip := b.input("skip", 1, 8, 8, 8)
			b.inputs[len(b.inputs)-1].GetType().GetTensorType().GetShape().GetDim()[1].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "C"}
			return b.node("Add", "mid", []string{a, skip}, same) // its channels are not tracked
		}, blocked(`Add "mid" combines channels with untracked tensor "skip"`)},
		{"add one-channel graph input", 13, func(b *graphBuilder, a string) string {
			return b.node("Add", "mid", []string{a, b.input("gray", 1, 1, 8, 8)}, same)
		}, blocked(`Add "mid" mixes channel layouts`)},
		{"concat without axis (opset < 4: channels)", 3, func(b *graphBuilder, a string) string {
			return b.node("Concat", "mid", []string{a, a}, []int64{1, 16, 8, 8})
		}, passes("mid")},
		{"concat on the last axis", 13, func(b *graphBuilder, a string) string {
			return b.node("Concat", "mid", []string{a, a}, []int64{1, 8, 8, 16}, intAttr("axis", -1))
		}, passes("mid")},
		{"concat on the channel axis from the end", 13, func(b *graphBuilder, a string) string {
			c := b.node("Concat", "mid", []string{a, a}, []int64{1, 16, 8, 8}, intAttr("axis", -3))
			return b.node("Slice", "cut", []string{c, i64(b, "st", 0), i64(b, "en", 8), i64(b, "ax", 1)}, same)
		}, []wantGroup{{8, []string{"convA"}, nil, []string{"mid"}, `reaches Slice "cut"`}, {4, []string{"convB"}, nil, nil, "graph output"}}},
		{"concat with a graph input", 13, func(b *graphBuilder, a string) string {
			return b.node("Concat", "mid", []string{a, b.input("more", 8, 8)}, []int64{1, 16, 8, 8}, intAttr("axis", 1))
		}, blocked(`Concat "mid" joins untracked tensor "more"`)},
		{"custom domain", 13, func(b *graphBuilder, a string) string {
			out := b.unary("Relu", "mid", a)
			b.nodes[len(b.nodes)-1].Domain = proto.String("com.example")
			return out
		}, blocked(`reaches Relu "mid" (domain "com.example")`)},
		{"no output", 13, func(b *graphBuilder, a string) string {
			b.node("Relu", "mid", []string{a}, nil)
			b.nodes[len(b.nodes)-1].Output = []string{""}
			return a
		}, []wantGroup{{8, []string{"convA"}, []string{"convB"}, nil, `reaches Relu "mid" without output`}, {4, []string{"convB"}, nil, nil, "graph output"}}},
		{"subgraph reads the channels", 13, func(b *graphBuilder, a string) string {
			then := &onnxpb.GraphProto{Name: proto.String("then"),
				Node:   []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Input: []string{a}, Output: []string{"inner"}}},
				Output: []*onnxpb.ValueInfoProto{tensorInfo("inner", onnxpb.TensorProto_FLOAT, nil)}}
			return b.node("If", "mid", []string{i64(b, "cond", 1)}, same,
				&onnxpb.AttributeProto{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: then},
				&onnxpb.AttributeProto{Name: proto.String("else_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: &onnxpb.GraphProto{Name: proto.String("else")}})
		}, blocked(`reaches If "mid"`)},
		{"depthwise", 13, func(b *graphBuilder, a string) string {
			return b.conv("mid", a, 8, 3, 8)
		}, passes("mid")},
		{"depthwise with a bad bias", 13, func(b *graphBuilder, a string) string {
			out := b.conv("mid", a, 8, 3, 8)
			b.nodes[len(b.nodes)-1].Input[2] = f32(b, "short", 1, 2)
			return out
		}, []wantGroup{{8, []string{"convA"}, []string{"convB"}, []string{"mid"}, `Conv "mid" bias "short" is not a FLOAT initializer of 8 values`}, {4, []string{"convB"}, nil, nil, "graph output"}}},
		{"grouped conv", 13, func(b *graphBuilder, a string) string {
			return b.conv("mid", a, 8, 3, 2)
		}, blocked(`grouped Conv "mid" (group 2)`)},
		{"group not dividing the outputs", 13, func(b *graphBuilder, a string) string {
			out := b.conv("mid", a, 8, 3, 1)
			n := b.nodes[len(b.nodes)-1]
			n.Attribute[len(n.Attribute)-1] = intAttr("group", 3)
			return out
		}, blocked(`Conv "mid" has group 3 for 8 output channels`)},
		{"conv of other input channels", 13, func(b *graphBuilder, a string) string {
			out := b.conv("mid", a, 8, 3, 1)
			b.inits[len(b.inits)-2] = onnx.Float32Tensor("mid.weight", []int64{8, 4, 3, 3}, b.randoms(8*4*9, 0.5))
			return out
		}, []wantGroup{{8, []string{"convA"}, nil, nil, `Conv "mid" reads 4 channels, its input "convA_out" has 8`}, {8, []string{"mid"}, []string{"convB"}, nil, ""},
			{4, []string{"convB"}, nil, nil, "graph output"}}},
		{"conv with a bad bias", 13, func(b *graphBuilder, a string) string {
			out := b.conv("mid", a, 8, 3, 1)
			b.nodes[len(b.nodes)-1].Input[2] = f32(b, "short", 1, 2)
			return out
		}, []wantGroup{{8, []string{"convA"}, []string{"mid"}, nil, ""}, {8, []string{"mid"}, []string{"convB"}, nil, `Conv "mid" bias "short" is not a FLOAT initializer of 8 values`}, {4, []string{"convB"}, nil, nil, "graph output"}}},
		{"conv weight from a tensor", 13, func(b *graphBuilder, a string) string {
			return b.node("Conv", "mid", []string{a, a}, same)
		}, blocked(`Conv "mid" weight "convA_out" is not a FLOAT initializer [Cout Cin k...]`)},
		{"conv weight of two axes", 13, func(b *graphBuilder, a string) string {
			return b.node("Conv", "mid", []string{a, constant(b, "w2", 8, 8)}, same)
		}, blocked(`Conv "mid" weight "w2" is not a FLOAT initializer [Cout Cin k...]`)},
		{"conv weight without input channels", 13, func(b *graphBuilder, a string) string {
			return b.node("Conv", "mid", []string{a, constant(b, "w0", 8, 0, 1, 1)}, same)
		}, blocked(`Conv "mid" weight "w0" is not a FLOAT initializer [Cout Cin k...]`)},
		{"conv of one output channel", 13, func(b *graphBuilder, a string) string {
			return b.conv("mid", a, 1, 1, 1)
		}, []wantGroup{{8, []string{"convA"}, []string{"mid"}, nil, ""}, {1, []string{"mid"}, []string{"convB"}, nil, "single channel"},
			{4, []string{"convB"}, nil, nil, "graph output"}}},
		{"conv without weight", 13, func(b *graphBuilder, a string) string {
			return b.node("Conv", "mid", []string{a}, same)
		}, blocked(`Conv "mid" has 1 inputs and 1 outputs`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newGraphBuilder(t, 4)
			a := b.conv("convA", b.input("x", inShape...), 8, 3, 1)
			mid := c.mid(b, a)
			if c.name == "conv without weight" || c.name == "add rank-5 constant" {
				b.output(mid) // nothing valid reads it
				c.want = c.want[:1]
			} else {
				b.output(b.conv("convB", mid, 4, 1, 1))
			}
			m := b.model()
			m.OpsetImport[0].Version = proto.Int64(c.opset)
			checkGroups(t, analyze(t, m), c.want)
		})
	}
}

// TestAnalyzeChannelCounts: a group of two channels can be pruned (to
// one); a single channel cannot.
func TestAnalyzeChannelCounts(t *testing.T) {
	for _, c := range []struct {
		channels int64
		reason   string
	}{{2, ""}, {1, "single channel"}} {
		b := newGraphBuilder(t, 19)
		a := b.conv("convA", b.input("x", inShape...), c.channels, 3, 1)
		b.output(b.conv("convB", a, 4, 1, 1))
		checkGroups(t, analyze(t, b.model()), []wantGroup{
			{int(c.channels), []string{"convA"}, []string{"convB"}, nil, c.reason},
			{4, []string{"convB"}, nil, nil, "graph output"},
		})
	}
}

// TestAnalyzeDepthwiseOfUntracked: a depthwise Conv over a graph input of
// unknown channel count passes no channels on (its output is untracked),
// and the Conv after it still forms its own group.
func TestAnalyzeDepthwiseOfUntracked(t *testing.T) {
	b := newGraphBuilder(t, 23)
	x := b.input("x", 1, 8, 8, 8)
	b.inputs[0] = tensorInfo("x", onnxpb.TensorProto_FLOAT, []int64{1, 0, 8, 8}) // channels unknown
	dw := b.conv("dw", x, 8, 3, 8)
	b.output(b.conv("convB", dw, 4, 1, 1))
	checkGroups(t, analyze(t, b.model()), []wantGroup{{4, []string{"convB"}, nil, nil, "graph output"}})
}

// TestApplyKeepsOtherValueInfo: removing a group's channels drops the
// value_info of that group's tensors only; a tensor of the graph input's
// channels (not a group) keeps its own.
func TestApplyKeepsOtherValueInfo(t *testing.T) {
	b := newGraphBuilder(t, 29)
	r := b.unary("Relu", "relu", b.input("x", inShape...))
	a := b.conv("convA", r, 8, 3, 1)
	b.output(b.conv("convB", a, 4, 1, 1))
	m := b.model()
	an := analyze(t, m)
	p, err := prune.Apply(m, an, map[int][]int{0: {1, 5}})
	if err != nil {
		t.Fatal(err)
	}
	checkValueInfo(t, p, m, []string{r})
}

// TestAnalyzeConv1D: 1-D Convs (weights [M, C, k]) form groups like 2-D
// ones; a 1-D and a 2-D layout of as many channels do not mix.
func TestAnalyzeConv1D(t *testing.T) {
	b := newGraphBuilder(t, 31)
	x := b.input("x", 1, 3, 8)
	conv1d := func(name, in string, cout int64) string {
		w := onnx.Float32Tensor(name+".weight", []int64{cout, b.shapes[in][1], 1}, b.randoms(int(cout*b.shapes[in][1]), 0.5))
		b.inits = append(b.inits, w)
		return b.node("Conv", name, []string{in, w.GetName()}, []int64{1, cout, 8})
	}
	a := conv1d("convA", x, 8)
	b.output(conv1d("convB", a, 4))
	checkGroups(t, analyze(t, b.model()), []wantGroup{
		{8, []string{"convA"}, []string{"convB"}, nil, ""},
		{4, []string{"convB"}, nil, nil, "graph output"},
	})

	b = newGraphBuilder(t, 31)
	x = b.input("x", 1, 3, 8)
	c1 := conv1d("convA", x, 8)
	c2 := b.conv("convC", b.input("z", 1, 3, 8, 8), 8, 1, 1)
	b.output(b.node("Add", "mix", []string{c1, c2}, []int64{1, 8, 8, 8}))
	a2 := analyze(t, b.model())
	for _, g := range a2.Groups {
		if g.Prunable || !strings.Contains(g.Reason, `Add "mix" mixes channel layouts`) {
			t.Errorf("group of %v: prunable %t, reason %q; want the 1-D and 2-D layouts refused", g.Producers, g.Prunable, g.Reason)
		}
	}
}
