package onnx_test

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
)

// opset11Model builds an opset-11 graph (IR 6) on x [1,4,5] with every
// operator whose signature changed by opset 13:
//
//	softmax:  Softmax(x, axis=1)            → y_softmax [1,4,5] (opset 11: over the 20 values of x viewed as [1,20])
//	softmax2: Softmax(x, axis=2)            → y_softmax2 [1,4,5] (over each row of 5: x viewed as [4,5])
//	unsq:     Unsqueeze(x, axes=[1])        → u [1,1,4,5] → y_unsq
//	sq:       Squeeze(u, axes=[1])          → y_sq [1,4,5]
//	split:    Split(x, axis=2, split=[2,3]) → y_a [1,4,2], y_b [1,4,3]
//	rsum:     ReduceSum(x, axes=[2], keepdims=0) → y_sum [1,4]
//	lsm:      LogSoftmax(x) (default axis 1) → y_lsm [1,4,5]
func opset11Model(opset int64) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(6),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("opset11"),
			Node: []*onnxpb.NodeProto{
				node("softmax", "Softmax", []string{"x"}, []string{"y_softmax"}, attrInt("axis", 1)),
				node("softmax2", "Softmax", []string{"x"}, []string{"y_softmax2"}, attrInt("axis", 2)),
				node("unsq", "Unsqueeze", []string{"x"}, []string{"u"}, attrInts("axes", 1)),
				node("ident", "Identity", []string{"u"}, []string{"y_unsq"}),
				node("sq", "Squeeze", []string{"u"}, []string{"y_sq"}, attrInts("axes", 1)),
				node("split", "Split", []string{"x"}, []string{"y_a", "y_b"}, attrInt("axis", 2), attrInts("split", 2, 3)),
				node("rsum", "ReduceSum", []string{"x"}, []string{"y_sum"}, attrInts("axes", 2), attrInt("keepdims", 0)),
				node("lsm", "LogSoftmax", []string{"x"}, []string{"y_lsm"}),
			},
			Input: []*onnxpb.ValueInfoProto{valueInfo("x", 1, 4, 5)},
			Output: []*onnxpb.ValueInfoProto{
				valueInfo("y_softmax", 1, 4, 5), valueInfo("y_softmax2", 1, 4, 5), valueInfo("y_unsq", 1, 1, 4, 5), valueInfo("y_sq", 1, 4, 5),
				valueInfo("y_a", 1, 4, 2), valueInfo("y_b", 1, 4, 3), valueInfo("y_sum", 1, 4), valueInfo("y_lsm", 1, 4, 5),
			},
		},
	}
}

// int64Init returns the values of an INT64 initializer.
func int64Init(t testing.TB, g *onnx.Graph, name string) []int64 {
	t.Helper()
	init := g.Initializer(name)
	if init == nil {
		t.Fatalf("input %q is not an initializer", name)
	}
	if init.GetDataType() != int32(onnxpb.TensorProto_INT64) {
		t.Fatalf("initializer %q has data_type %d, want INT64", name, init.GetDataType())
	}
	raw := init.GetRawData()
	v := make([]int64, len(raw)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	if len(init.GetDims()) != 1 || init.GetDims()[0] != int64(len(v)) {
		t.Errorf("initializer %q dims %v for %d values, want a vector", name, init.GetDims(), len(v))
	}
	return v
}

func hasAttr(n *onnxpb.NodeProto, name string) bool {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return true
		}
	}
	return false
}

func TestUpgradeOpset(t *testing.T) {
	for _, from := range []int64{11, 12} {
		t.Run(map[int64]string{11: "opset11", 12: "opset12"}[from], func(t *testing.T) {
			m := opset11Model(from)
			orig := proto.Clone(m).(*onnxpb.ModelProto)
			got, err := onnx.UpgradeOpset(m)
			if err != nil || got != from {
				t.Fatalf("UpgradeOpset = %d, %v; want %d, nil", got, err, from)
			}
			g := onnx.NewGraph(m)
			if g.Opset() != onnx.MinQDQOpset || onnx.MinQDQOpset != 13 || m.GetIrVersion() < 7 {
				t.Errorf("after upgrade: opset %d, IR %d; want 13, ≥ 7", g.Opset(), m.GetIrVersion())
			}

			// axes and split are now INT64 initializer inputs.
			for _, c := range []struct {
				node, data, attr string
				want             []int64
			}{
				{"unsq", "x", "axes", []int64{1}},
				{"sq", "u", "axes", []int64{1}},
				{"rsum", "x", "axes", []int64{2}},
				{"split", "x", "split", []int64{2, 3}},
			} {
				n := onnxtest.NodeByName(m, c.node)
				if hasAttr(n, c.attr) {
					t.Errorf("%s still has attribute %q", c.node, c.attr)
				}
				if len(n.GetInput()) != 2 || n.GetInput()[0] != c.data {
					t.Fatalf("%s inputs %v, want [%s, <%s>]", c.node, n.GetInput(), c.data, c.attr)
				}
				if v := int64Init(t, g, n.GetInput()[1]); !slices.Equal(v, c.want) {
					t.Errorf("%s %s input = %v, want %v", c.node, c.attr, v, c.want)
				}
			}
			if !hasAttr(onnxtest.NodeByName(m, "split"), "axis") || !hasAttr(onnxtest.NodeByName(m, "rsum"), "keepdims") {
				t.Error("Split's axis or ReduceSum's keepdims attribute was lost")
			}
			// The Softmax family is wrapped in Flatten → op(axis=1) → Reshape.
			for _, op := range []string{"Flatten", "Shape", "Reshape"} {
				if n := countOp(m, op); n != 3 {
					t.Errorf("%d %s nodes, want 3 (softmax, softmax2, lsm)", n, op)
				}
			}
			if _, err := g.TopoSort(); err != nil {
				t.Fatal(err)
			}

			// ONNX Runtime computes the same outputs with both models.
			x := make([]float32, 20)
			for i := range x {
				x[i] = float32(i%7)*0.4 - float32(i)/10
			}
			in := []onnxtest.Input{{Name: "x", Shape: []int64{1, 4, 5}, Data: x}}
			want := onnxtest.RunORT(t, onnxtest.SaveModel(t, orig, "orig.onnx"), in)
			gotOut := onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "upgraded.onnx"), in)
			onnxtest.CompareOutputs(t, gotOut, want, 1e-6)
			// Opset 11 softmax over the flattened [1,20] sums to 1 over all
			// 20 values (opset 13's axis-1 softmax would sum to 5).
			var sum float64
			for _, v := range gotOut["y_softmax"] {
				sum += float64(v)
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("upgraded softmax sums to %g over 20 values, want 1 (opset-11 semantics)", sum)
			}
			for r := 0; r < 4; r++ {
				sum = 0
				for _, v := range gotOut["y_softmax2"][5*r : 5*r+5] {
					sum += float64(v)
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Errorf("upgraded axis-2 softmax row %d sums to %g, want 1", r, sum)
				}
			}
		})
	}
}

// Operators that already use the opset-13 form are left alone.
func TestUpgradeOpsetKeepsNoAttrNodes(t *testing.T) {
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(11)}},
		Graph: &onnxpb.GraphProto{
			Node: []*onnxpb.NodeProto{
				node("split", "Split", []string{"x"}, []string{"a", "b"}, attrInt("axis", 2)),
				node("sq", "Squeeze", []string{"a"}, []string{"y"}),
			},
			Input:  []*onnxpb.ValueInfoProto{valueInfo("x", 1, 4, 2)},
			Output: []*onnxpb.ValueInfoProto{valueInfo("y", 4), valueInfo("b", 1, 4, 1)},
		},
	}
	orig := proto.Clone(m).(*onnxpb.ModelProto)
	if _, err := onnx.UpgradeOpset(m); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.GetGraph(), orig.GetGraph()) {
		t.Errorf("graph changed: %v", m.GetGraph())
	}
	if m.GetIrVersion() != 7 || onnx.NewGraph(m).Opset() != 13 {
		t.Errorf("IR %d, opset %d; want 7, 13", m.GetIrVersion(), onnx.NewGraph(m).Opset())
	}
}

func TestUpgradeOpsetLimits(t *testing.T) {
	m := opset11Model(10)
	orig := proto.Clone(m).(*onnxpb.ModelProto)
	from, err := onnx.UpgradeOpset(m)
	if err == nil || !strings.Contains(err.Error(), "opset 10") || from != 10 {
		t.Errorf("UpgradeOpset(opset 10) = %d, %v; want 10 and an error naming opset 10", from, err)
	}
	if !proto.Equal(m, orig) {
		t.Error("a refused opset-10 model was modified")
	}
	for _, v := range []int64{13, 17} {
		m := opset11Model(v)
		orig := proto.Clone(m).(*onnxpb.ModelProto)
		if from, err := onnx.UpgradeOpset(m); err != nil || from != v {
			t.Errorf("UpgradeOpset(opset %d) = %d, %v; want %d, nil", v, from, err, v)
		}
		if !proto.Equal(m, orig) {
			t.Errorf("opset %d model modified", v)
		}
	}
}
