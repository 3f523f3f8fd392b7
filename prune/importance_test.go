package prune_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// bnChain is x → convA (8 channels) → bnA → convB (4) → y; it returns the
// model and the BatchNormalization node.
func bnChain(t *testing.T) (*onnxpb.ModelProto, *onnxpb.NodeProto) {
	b := newGraphBuilder(t, 13)
	y := b.bn("bnA", b.conv("convA", b.input("x", inShape...), 8, 3, 1))
	b.output(b.conv("convB", y, 4, 3, 1))
	m := b.model()
	return m, node(t, m, "bnA")
}

// TestImportanceBatchNormScale: a channel's importance is its filter norm
// times |γ|/sqrt(var+ε), with the node's epsilon (default 1e-5).
func TestImportanceBatchNormScale(t *testing.T) {
	for _, c := range []struct {
		eps     float32
		bnFirst bool // the node list out of order, the BN first
	}{{0, false}, {0.5, false}, {0, true}} {
		eps := c.eps
		m, bn := bnChain(t)
		if c.bnFirst {
			nodes := m.Graph.Node
			i := slices.Index(nodes, bn)
			m.Graph.Node = append([]*onnxpb.NodeProto{bn}, slices.Delete(slices.Clone(nodes), i, i+1)...)
		}
		epsilon := 1e-5
		if eps != 0 {
			bn.Attribute = append(bn.Attribute, &onnxpb.AttributeProto{Name: proto.String("epsilon"), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(eps)})
			epsilon = float64(eps)
		}
		a := analyze(t, m)
		imp, err := a.Importance(0, "l1")
		if err != nil {
			t.Fatal(err)
		}
		w, _ := onnx.TensorFloats(initializer(t, m, "convA.weight"))
		gamma, _ := onnx.TensorFloats(initializer(t, m, "bnA.scale"))
		variance, _ := onnx.TensorFloats(initializer(t, m, "bnA.var"))
		per := len(w) / 8
		for ch := range 8 {
			var l1 float64
			for _, v := range w[ch*per : (ch+1)*per] {
				l1 += math.Abs(float64(v))
			}
			want := l1 * math.Abs(float64(gamma[ch])) / math.Sqrt(float64(variance[ch])+epsilon)
			if math.Abs(imp[ch]-want) > 1e-6*want {
				t.Errorf("epsilon %g, BN first %t: channel %d importance %g, want %g", eps, c.bnFirst, ch, imp[ch], want)
			}
		}
	}
}

// TestImportanceModelChanged: Importance reads the weights as they are
// now; parameters removed or reshaped since the analysis are errors that
// name the node and the tensor.
func TestImportanceModelChanged(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m *onnxpb.ModelProto, bn *onnxpb.NodeProto)
		want string
	}{
		{"variance gone", func(_ *onnxpb.ModelProto, bn *onnxpb.NodeProto) { bn.Input[4] = "nowhere" },
			`BatchNormalization "bnA": parameter "nowhere" is gone`},
		{"short scale", func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
			onnx.SetTensorFloats(initializer(t, m, "bnA.scale"), []float32{1, 2})
			initializer(t, m, "bnA.scale").Dims = []int64{2}
		}, `BatchNormalization "bnA": parameter "bnA.scale" has 2 values, want 8`},
		{"int variance", func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
			v := initializer(t, m, "bnA.var")
			v.DataType, v.FloatData, v.RawData = proto.Int32(int32(onnxpb.TensorProto_INT64)), nil, make([]byte, 64)
		}, `BatchNormalization "bnA": tensor "bnA.var"`},
		{"weight gone", func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) { node(t, m, "convA").Input[1] = "nowhere" },
			`importance: Conv "convA": weight "nowhere" is gone`},
		{"weight reshaped", func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
			w := initializer(t, m, "convA.weight")
			w.Dims = []int64{6, 4, 3, 3}
		}, `importance: Conv "convA": weight "convA.weight" has dims [6 4 3 3], want 8 output channels`},
		{"weight not float", func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
			w := initializer(t, m, "convA.weight")
			w.DataType, w.FloatData, w.RawData = proto.Int32(int32(onnxpb.TensorProto_INT64)), nil, make([]byte, 8*8*3*9)
		}, `importance: Conv "convA": tensor "convA.weight"`},
		{"nodes removed", func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) { m.Graph.Node = m.Graph.Node[:0] },
			"importance: group 0: model changed since analysis"},
	} {
		m, bn := bnChain(t)
		a := analyze(t, m)
		c.edit(m, bn)
		if _, err := a.Importance(0, "l2"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}
