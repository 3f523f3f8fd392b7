package graphgen

import (
	"slices"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestBuilder: a Conv's weights stay within ±ConvScale/fan-in, its
// attributes describe a same-padded strided grouped Conv, SiLU is
// Sigmoid then Mul, and Model applies the opset default.
func TestBuilder(t *testing.T) {
	b := New(1, 2)
	b.ConvScale = 2
	b.Conv("x", "c", 4, 6, 3, 2, 2)
	b.SiLU("c", "a")
	m := b.Model([]*onnxpb.ValueInfoProto{ValueInfo("x", 1, 4, 8, 8)}, []*onnxpb.ValueInfoProto{ValueInfo("a", 1, 6, 4, 4)})
	if got := m.GetOpsetImport()[0].GetVersion(); got != DefaultOpset {
		t.Errorf("opset %d, want %d", got, DefaultOpset)
	}
	w, err := onnx.TensorFloats(m.GetGraph().GetInitializer()[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 6*2*3*3 {
		t.Fatalf("%d weights, want %d", len(w), 6*2*3*3)
	}
	bound := float32(2) / (2 * 3 * 3)
	for i, v := range w {
		if v < -bound || v > bound {
			t.Fatalf("weight %d = %g outside ±%g", i, v, bound)
		}
	}
	conv := m.GetGraph().GetNode()[0]
	for name, want := range map[string][]int64{"kernel_shape": {3, 3}, "strides": {2, 2}, "pads": {1, 1, 1, 1}} {
		if got := onnx.Attr(conv, name).GetInts(); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if g := onnx.Attr(conv, "group").GetI(); g != 2 {
		t.Errorf("group %d, want 2", g)
	}
	var ops []string
	for _, n := range m.GetGraph().GetNode() {
		ops = append(ops, n.GetOpType())
	}
	if !slices.Equal(ops, []string{"Conv", "Sigmoid", "Mul"}) {
		t.Errorf("ops %v", ops)
	}
	if s := String("mode", "nearest"); string(s.GetS()) != "nearest" || s.GetName() != "mode" {
		t.Errorf("String attribute %v", s)
	}
	if d := ValueInfo("y", -1, 3).GetType().GetTensorType().GetShape().GetDim(); len(d) != 2 || d[0].GetDimValue() != -1 {
		t.Errorf("ValueInfo dims %v", d)
	}
}
