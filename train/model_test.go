package train

import (
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

// tinyYOLO is a miniature YOLO-style graph on a [N,3,8,8] input "x":
// Conv+SiLU stem, a stride-2 depthwise Conv + SiLU, SPP-style MaxPools
// concatenated, a nearest ×2 Resize back up, a Concat with the stem, and
// two heads: "box" (Conv → Reshape → Transpose) and "obj" (Conv →
// Sigmoid, whose sigmoid output is itself a graph output so it is not
// fused). Weights are drawn from seed.
func tinyYOLO(seed uint64) *onnxpb.ModelProto {
	b := graphgen.New(seed, 99)
	b.Conv("x", "c1", 3, 4, 3, 1, 1)
	b.SiLU("c1", "a1")
	b.Conv("a1", "c2", 4, 4, 3, 2, 4)
	b.SiLU("c2", "a2")
	b.Node("MaxPool", []string{"a2"}, []string{"p5"}, graphgen.Ints("kernel_shape", 5, 5), graphgen.Ints("pads", 2, 2, 2, 2))
	b.Node("MaxPool", []string{"a2"}, []string{"p3"}, graphgen.Ints("kernel_shape", 3, 3), graphgen.Ints("pads", 1, 1, 1, 1))
	b.Node("Concat", []string{"a2", "p5", "p3"}, []string{"spp"}, onnx.IntAttr("axis", 1))
	b.Conv("spp", "c3", 12, 4, 1, 1, 1)
	b.SiLU("c3", "a3")
	b.Inits = append(b.Inits, onnx.Float32Vector("roi", nil), onnx.Float32Vector("scales", []float32{1, 1, 2, 2}))
	b.Node("Resize", []string{"a3", "roi", "scales"}, []string{"up"}, graphgen.String("mode", "nearest"),
		graphgen.String("coordinate_transformation_mode", "asymmetric"), graphgen.String("nearest_mode", "floor"))
	b.Node("Concat", []string{"up", "a1"}, []string{"cat"}, onnx.IntAttr("axis", 1))
	b.Conv("cat", "c4", 8, 6, 3, 1, 1)
	b.Node("Relu", []string{"c4"}, []string{"r4"})
	b.Node("Add", []string{"r4", "c4"}, []string{"res"})
	b.Conv("res", "boxc", 6, 4, 1, 1, 1)
	b.Inits = append(b.Inits, &onnxpb.TensorProto{Name: proto.String("boxshape"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims: []int64{3}, Int64Data: []int64{0, 4, -1}})
	b.Node("Reshape", []string{"boxc", "boxshape"}, []string{"boxr"})
	b.Node("Transpose", []string{"boxr"}, []string{"box"}, graphgen.Ints("perm", 0, 2, 1))
	b.Conv("res", "objc", 6, 1, 1, 1, 1)
	b.Node("Sigmoid", []string{"objc"}, []string{"obj"})
	b.Node("Mul", []string{"objc", "obj"}, []string{"objsilu"})
	return b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", -1, 3, 8, 8)},
		[]*onnxpb.ValueInfoProto{graphgen.ValueInfo("box", -1, 64, 4), graphgen.ValueInfo("obj", -1, 1, 8, 8), graphgen.ValueInfo("objsilu", -1, 1, 8, 8)})
}
