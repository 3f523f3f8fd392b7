package train

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// modelBuilder assembles small ONNX models for tests.
type modelBuilder struct {
	rng   *rand.Rand
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
}

func (b *modelBuilder) node(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) {
	b.nodes = append(b.nodes, &onnxpb.NodeProto{Name: proto.String(outs[0] + "_" + op), OpType: proto.String(op),
		Input: ins, Output: outs, Attribute: attrs})
}

func intsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func stringAttr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// conv adds a Conv with random weights (scaled to keep activations O(1))
// and bias.
func (b *modelBuilder) conv(in, out string, cin, cout, k, stride, group int) {
	w := make([]float32, cout*(cin/group)*k*k)
	scale := 1.5 / float32(cin/group*k*k)
	for i := range w {
		w[i] = (b.rng.Float32()*2 - 1) * scale * 2
	}
	bias := make([]float32, cout)
	for i := range bias {
		bias[i] = b.rng.Float32()*0.4 - 0.2
	}
	b.inits = append(b.inits,
		onnx.Float32Tensor(out+".w", []int64{int64(cout), int64(cin / group), int64(k), int64(k)}, w),
		onnx.Float32Vector(out+".b", bias))
	p := int64(k / 2)
	b.node("Conv", []string{in, out + ".w", out + ".b"}, []string{out},
		intsAttr("kernel_shape", int64(k), int64(k)), intsAttr("strides", int64(stride), int64(stride)),
		intsAttr("pads", p, p, p, p), intAttr("group", int64(group)))
}

// silu adds the exported spelling of SiLU: Sigmoid then Mul.
func (b *modelBuilder) silu(in, out string) {
	b.node("Sigmoid", []string{in}, []string{out + ".sig"})
	b.node("Mul", []string{in, out + ".sig"}, []string{out})
}

func valueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: shape}}}}
}

func (b *modelBuilder) model(inputs, outputs []*onnxpb.ValueInfoProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(11)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("tiny"), Node: b.nodes, Initializer: b.inits,
			Input: inputs, Output: outputs},
	}
}

// tinyYOLO is a miniature YOLO-style graph on a [N,3,8,8] input "x":
// Conv+SiLU stem, a stride-2 depthwise Conv + SiLU, SPP-style MaxPools
// concatenated, a nearest ×2 Resize back up, a Concat with the stem, and
// two heads: "box" (Conv → Reshape → Transpose) and "obj" (Conv →
// Sigmoid, whose sigmoid output is itself a graph output so it is not
// fused). Weights are drawn from seed.
func tinyYOLO(seed uint64) *onnxpb.ModelProto {
	b := &modelBuilder{rng: rand.New(rand.NewPCG(seed, 99))}
	b.conv("x", "c1", 3, 4, 3, 1, 1)
	b.silu("c1", "a1")
	b.conv("a1", "c2", 4, 4, 3, 2, 4)
	b.silu("c2", "a2")
	b.node("MaxPool", []string{"a2"}, []string{"p5"}, intsAttr("kernel_shape", 5, 5), intsAttr("pads", 2, 2, 2, 2))
	b.node("MaxPool", []string{"a2"}, []string{"p3"}, intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1))
	b.node("Concat", []string{"a2", "p5", "p3"}, []string{"spp"}, intAttr("axis", 1))
	b.conv("spp", "c3", 12, 4, 1, 1, 1)
	b.silu("c3", "a3")
	b.inits = append(b.inits, onnx.Float32Vector("roi", nil), onnx.Float32Vector("scales", []float32{1, 1, 2, 2}))
	b.node("Resize", []string{"a3", "roi", "scales"}, []string{"up"}, stringAttr("mode", "nearest"),
		stringAttr("coordinate_transformation_mode", "asymmetric"), stringAttr("nearest_mode", "floor"))
	b.node("Concat", []string{"up", "a1"}, []string{"cat"}, intAttr("axis", 1))
	b.conv("cat", "c4", 8, 6, 3, 1, 1)
	b.node("Relu", []string{"c4"}, []string{"r4"})
	b.node("Add", []string{"r4", "c4"}, []string{"res"})
	b.conv("res", "boxc", 6, 4, 1, 1, 1)
	b.inits = append(b.inits, &onnxpb.TensorProto{Name: proto.String("boxshape"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims: []int64{3}, Int64Data: []int64{0, 4, -1}})
	b.node("Reshape", []string{"boxc", "boxshape"}, []string{"boxr"})
	b.node("Transpose", []string{"boxr"}, []string{"box"}, intsAttr("perm", 0, 2, 1))
	b.conv("res", "objc", 6, 1, 1, 1, 1)
	b.node("Sigmoid", []string{"objc"}, []string{"obj"})
	b.node("Mul", []string{"objc", "obj"}, []string{"objsilu"})
	return b.model([]*onnxpb.ValueInfoProto{valueInfo("x", -1, 3, 8, 8)},
		[]*onnxpb.ValueInfoProto{valueInfo("box", -1, 64, 4), valueInfo("obj", -1, 1, 8, 8), valueInfo("objsilu", -1, 1, 8, 8)})
}
