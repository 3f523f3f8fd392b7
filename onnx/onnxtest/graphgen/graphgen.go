// Package graphgen builds small ONNX graphs with random weights for tests.
// It is plain Go (no cgo), so that the tests of packages that build
// without OpenCV and ONNX Runtime (train, distill) can use it; package
// onnxtest, which runs models in ONNX Runtime, cannot be imported there.
package graphgen

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Defaults of a Builder's zero fields.
const (
	DefaultConvScale = 3
	DefaultOpset     = 11
)

// Builder accumulates nodes and initializers. Rng draws the weights (it
// may be nil when no Conv is added).
type Builder struct {
	Rng *rand.Rand
	// ConvScale bounds Conv weights: uniform in ±ConvScale/fan-in, which
	// keeps activations O(1) (default DefaultConvScale).
	ConvScale float32
	// Opset is the model's default-domain opset (default DefaultOpset).
	Opset int64
	Nodes []*onnxpb.NodeProto
	Inits []*onnxpb.TensorProto
}

// New is a Builder whose weights are drawn from PCG(seed, stream).
func New(seed, stream uint64) *Builder {
	return &Builder{Rng: rand.New(rand.NewPCG(seed, stream))}
}

// Node adds a node named after its first output and op type.
func (b *Builder) Node(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) {
	b.Nodes = append(b.Nodes, &onnxpb.NodeProto{Name: proto.String(outs[0] + "_" + op), OpType: proto.String(op),
		Input: ins, Output: outs, Attribute: attrs})
}

// Conv adds a k×k Conv (same padding) with random weights "out.w" and
// bias "out.b" (uniform in ±0.2).
func (b *Builder) Conv(in, out string, cin, cout, k, stride, group int) {
	scale := b.ConvScale
	if scale == 0 {
		scale = DefaultConvScale
	}
	scale /= float32(cin / group * k * k)
	w := make([]float32, cout*(cin/group)*k*k)
	for i := range w {
		w[i] = (b.Rng.Float32()*2 - 1) * scale
	}
	bias := make([]float32, cout)
	for i := range bias {
		bias[i] = b.Rng.Float32()*0.4 - 0.2
	}
	b.Inits = append(b.Inits,
		onnx.Float32Tensor(out+".w", []int64{int64(cout), int64(cin / group), int64(k), int64(k)}, w),
		onnx.Float32Vector(out+".b", bias))
	p := int64(k / 2)
	b.Node("Conv", []string{in, out + ".w", out + ".b"}, []string{out},
		Ints("kernel_shape", int64(k), int64(k)), Ints("strides", int64(stride), int64(stride)),
		Ints("pads", p, p, p, p), onnx.IntAttr("group", int64(group)))
}

// SiLU adds the exported spelling of SiLU: Sigmoid then Mul, with the
// sigmoid in "out.sig".
func (b *Builder) SiLU(in, out string) {
	b.Node("Sigmoid", []string{in}, []string{out + ".sig"})
	b.Node("Mul", []string{in, out + ".sig"}, []string{out})
}

// Model is the graph "tiny" of the nodes and initializers so far.
func (b *Builder) Model(inputs, outputs []*onnxpb.ValueInfoProto) *onnxpb.ModelProto {
	opset := b.Opset
	if opset == 0 {
		opset = DefaultOpset
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("tiny"), Node: b.Nodes, Initializer: b.Inits,
			Input: inputs, Output: outputs},
	}
}

// ValueInfo is a float tensor's value info; a negative dimension is
// written as given (a test's "dynamic" marker).
func ValueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: shape}}}}
}

// Ints is an INTS attribute.
func Ints(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// String is a STRING attribute.
func String(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}
