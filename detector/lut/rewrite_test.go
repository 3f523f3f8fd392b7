package lut

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

var (
	u8in  = QParams{Scale: 0.05, Zero: 128}
	u8out = QParams{Scale: 0.04, Zero: 10}
	s8in  = QParams{Scale: 0.05, Zero: -3, Signed: true}
	s8out = QParams{Scale: 0.04, Zero: -120, Signed: true}
	shp   = []int64{1, 2, 3, 4}
)

func opTypes(m *onnxpb.ModelProto) []string {
	var ops []string
	for _, n := range m.Graph.Node {
		ops = append(ops, n.GetOpType())
	}
	return ops
}

func mustRewrite(t *testing.T, m *onnxpb.ModelProto, want int) {
	t.Helper()
	n, err := Rewrite(m)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("rewrote %d patterns, want %d; ops now %v", n, want, opTypes(m))
	}
}

func findOp(m *onnxpb.ModelProto, op string) *onnxpb.NodeProto {
	for _, n := range m.Graph.Node {
		if n.GetOpType() == op {
			return n
		}
	}
	return nil
}

func TestRewriteSiLUPatterns(t *testing.T) {
	for _, c := range []struct {
		name     string
		in, out  QParams
		quantSig bool
		op       string
		tableDT  onnxpb.TensorProto_DataType
	}{
		{"float sigmoid uint8", u8in, u8out, false, OpUint8, onnxpb.TensorProto_UINT8},
		{"quantised sigmoid uint8", u8in, u8out, true, OpUint8, onnxpb.TensorProto_UINT8},
		{"float sigmoid int8", s8in, s8out, false, OpInt8, onnxpb.TensorProto_INT8},
		{"quantised sigmoid int8", s8in, s8out, true, OpInt8, onnxpb.TensorProto_INT8},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := siluQDQ(shp, c.in, c.out, c.quantSig)
			mustRewrite(t, m, 1)
			want := []string{"QuantizeLinear", c.op, "DequantizeLinear"}
			if got := opTypes(m); !slices.Equal(got, want) {
				t.Fatalf("ops %v, want %v", got, want)
			}
			n := findOp(m, c.op)
			if n.GetDomain() != Domain || !slices.Equal(n.Input[:1], []string{"xq"}) || !slices.Equal(n.Output, []string{"yq"}) {
				t.Fatalf("node %v", n)
			}
			var table *onnxpb.TensorProto
			for _, init := range m.Graph.Initializer {
				if init.GetName() == n.Input[1] {
					table = init
				}
			}
			if table == nil || table.GetDataType() != int32(c.tableDT) || len(table.RawData) != 256 {
				t.Fatalf("table initializer %v", table)
			}
			f := SiLU
			if c.quantSig {
				sig := QParams{Scale: 1.0 / 255, Signed: c.in.Signed}
				if sig.Signed {
					sig.Zero = -128
				}
				f = SiLUQuantisedSigmoid(sig, sig)
			}
			want256, _ := Table(f, c.in, c.out)
			if !slices.Equal(table.RawData, want256[:]) {
				t.Fatal("table data differs from the pattern's function")
			}
			// The sigmoid's own parameters are no longer used: dropped.
			for _, init := range m.Graph.Initializer {
				if c.quantSig && (init.GetName() == "sig_scale" || init.GetName() == "sig_zp") {
					t.Fatalf("unused initializer %s kept", init.GetName())
				}
			}
			if !slices.ContainsFunc(m.OpsetImport, func(o *onnxpb.OperatorSetIdProto) bool { return o.GetDomain() == Domain }) {
				t.Fatal("no opset import for the domain")
			}
			// Graph inputs and outputs (names, shapes) unchanged.
			if m.Graph.Input[0].GetName() != "x" || m.Graph.Output[0].GetName() != "y" ||
				len(m.Graph.Output[0].GetType().GetTensorType().GetShape().GetDim()) != len(shp) {
				t.Fatal("graph inputs or outputs changed")
			}
		})
	}
}

// TestRewriteLeavesSecondConsumerAlone: a pattern whose tensors are read
// elsewhere too, or are graph outputs, stays as it is.
func TestRewriteLeavesSecondConsumerAlone(t *testing.T) {
	cases := map[string]func(tb *tiny){
		"float x read by another node": func(tb *tiny) { tb.node("Relu", []string{"xf"}, "extra") },
		"sigmoid read by another node": func(tb *tiny) { tb.node("Relu", []string{"s"}, "extra") },
		"mul read by another node":     func(tb *tiny) { tb.node("Relu", []string{"m"}, "extra") },
		"mul is a graph output": func(tb *tiny) {
			tb.gp.Output = append(tb.gp.Output, floatInfo("m", shp))
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			m := siluQDQ(shp, u8in, u8out, false)
			tb := &tiny{gp: m.Graph}
			edit(tb)
			before := proto.Clone(m)
			mustRewrite(t, m, 0)
			if !proto.Equal(before, m) {
				t.Fatal("model changed")
			}
		})
	}
}

func TestRewriteLeavesOtherConsumersOfQuantisedInput(t *testing.T) {
	// xq feeds the pattern and another DQ: the pattern is still rewritten
	// and xq keeps its other reader.
	m := siluQDQ(shp, u8in, u8out, false)
	tb := &tiny{gp: m.Graph}
	tb.dq("xq", "in", "xf2")
	m.Graph.Output = append(m.Graph.Output, floatInfo("xf2", shp))
	mustRewrite(t, m, 1)
	if n := findOp(m, "DequantizeLinear"); n == nil {
		t.Fatal("lost the other DQ")
	}
}

func TestRewriteMixedTypesLeftAlone(t *testing.T) {
	m := siluQDQ(shp, u8in, s8out, false)
	mustRewrite(t, m, 0)
}

func TestRewritePerChannelLeftAlone(t *testing.T) {
	m := siluQDQ(shp, u8in, u8out, false)
	for _, init := range m.Graph.Initializer {
		if init.GetName() == "in_scale" {
			init.Dims = []int64{2}
			init.RawData = append(init.RawData, init.RawData...)
		}
	}
	mustRewrite(t, m, 0)
}

func TestRewriteTwinDQ(t *testing.T) {
	tb := newTiny(shp, u8in, u8out)
	xq := tb.q("x", "in", "xq")
	s := tb.node("Sigmoid", []string{tb.dq(xq, "in", "xf")}, "s")
	x2 := tb.dq(xq, "in", "xf2") // ORT's duplicated DQ
	tb.dq(tb.q(tb.node("Mul", []string{x2, s}, "m"), "out", "yq"), "out", "y")
	m := tb.model()
	mustRewrite(t, m, 1)
	if got := opTypes(m); !slices.Equal(got, []string{"QuantizeLinear", OpUint8, "DequantizeLinear"}) {
		t.Fatalf("ops %v", got)
	}
}

func TestRewriteUnaryOps(t *testing.T) {
	for _, c := range []struct {
		op, domain string
		attrs      []*onnxpb.AttributeProto
		f          func(float64) float64
	}{
		{"Sigmoid", "", nil, Sigmoid},
		{"HardSwish", "", nil, HardSwish},
		{"LeakyRelu", "", []*onnxpb.AttributeProto{floatAttr("alpha", 0.2)}, LeakyReLU(float64(float32(0.2)))},
		{"LeakyRelu", "", nil, LeakyReLU(float64(float32(0.01)))},
		{"QuickGelu", msDomain, []*onnxpb.AttributeProto{floatAttr("alpha", 1)}, QuickGelu(1)},
	} {
		t.Run(c.op, func(t *testing.T) {
			tb := newTiny(shp, u8in, u8out)
			xf := tb.dq(tb.q("x", "in", "xq"), "in", "xf")
			a := tb.node(c.op, []string{xf}, "a", c.attrs...)
			tb.gp.Node[len(tb.gp.Node)-1].Domain = proto.String(c.domain)
			tb.dq(tb.q(a, "out", "yq"), "out", "y")
			m := tb.model()
			mustRewrite(t, m, 1)
			n := findOp(m, OpUint8)
			want, _ := Table(c.f, u8in, u8out)
			for _, init := range m.Graph.Initializer {
				if init.GetName() == n.Input[1] && !slices.Equal(init.RawData, want[:]) {
					t.Fatal("table differs")
				}
			}
		})
	}
}

// qlinearSiLU builds ORT's optimised form: QLinearSigmoid → QLinearMul.
func qlinearSiLU(swap bool) *onnxpb.ModelProto {
	tb := newTiny(shp, u8in, u8out)
	xq := tb.q("x", "in", "xq")
	sq := tb.node("QLinearSigmoid", []string{xq, "in_scale", "in_zp", "sig_scale", "sig_zp"}, "sq")
	tb.gp.Node[len(tb.gp.Node)-1].Domain = proto.String(msDomain)
	in := []string{xq, "in_scale", "in_zp", sq, "sig_scale", "sig_zp", "out_scale", "out_zp"}
	if swap {
		in = []string{sq, "sig_scale", "sig_zp", xq, "in_scale", "in_zp", "out_scale", "out_zp"}
	}
	tb.node("QLinearMul", in, "yq")
	tb.gp.Node[len(tb.gp.Node)-1].Domain = proto.String(msDomain)
	tb.dq("yq", "out", "y")
	m := tb.model()
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(msDomain), Version: proto.Int64(1)})
	return m
}

func TestRewriteQLinearSiLU(t *testing.T) {
	for _, swap := range []bool{false, true} {
		m := qlinearSiLU(swap)
		mustRewrite(t, m, 1)
		if got := opTypes(m); !slices.Equal(got, []string{"QuantizeLinear", OpUint8, "DequantizeLinear"}) {
			t.Fatalf("swap %v: ops %v", swap, got)
		}
	}
}

func TestRewriteQLinearSigmoidWithOtherReaderAlone(t *testing.T) {
	// The QLinearSigmoid's output is also read elsewhere: only... nothing
	// is fused into the Mul; the QLinearSigmoid alone is not rewritten
	// either, as its output must stay.
	m := qlinearSiLU(false)
	tb := &tiny{gp: m.Graph}
	tb.dq("sq", "sig", "sf")
	m.Graph.Output = append(m.Graph.Output, floatInfo("sf", shp))
	mustRewrite(t, m, 1) // the QLinearSigmoid alone becomes a table (its output kept)
	if findOp(m, "QLinearMul") == nil {
		t.Fatal("QLinearMul removed although the sigmoid has another reader")
	}
}

func TestRewriteNothingLeavesModelUnchanged(t *testing.T) {
	tb := newTiny(shp, u8in, u8out)
	tb.dq(tb.q(tb.node("Relu", []string{tb.dq(tb.q("x", "in", "xq"), "in", "xf")}, "r"), "out", "yq"), "out", "y")
	m := tb.model()
	before := proto.Clone(m)
	mustRewrite(t, m, 0)
	if !proto.Equal(before, m) {
		t.Fatal("model changed")
	}
}

func TestRewriteBrokenScaleIsAnError(t *testing.T) {
	m := siluQDQ(shp, u8in, u8out, false)
	for _, init := range m.Graph.Initializer {
		if init.GetName() == "out_scale" {
			init.RawData = []byte{0, 0, 0, 0} // 0.0
		}
	}
	before := proto.Clone(m)
	if n, err := Rewrite(m); err == nil || n != 0 {
		t.Fatalf("zero scale: %d, %v; want an error", n, err)
	}
	if !proto.Equal(before, m) {
		t.Fatal("a failed rewrite changed the model")
	}
	if _, err := Rewrite(&onnxpb.ModelProto{}); err == nil {
		t.Fatal("no error for a model without a graph")
	}
}

func TestRewriteTwoPatternsAndOpsetOnce(t *testing.T) {
	tb := newTiny(shp, u8in, u8out)
	xq := tb.q("x", "in", "xq")
	a1 := tb.node("Sigmoid", []string{tb.dq(xq, "in", "xf")}, "a1")
	q1 := tb.q(a1, "out", "q1")
	a2 := tb.node("HardSwish", []string{tb.dq(q1, "out", "f2")}, "a2")
	tb.dq(tb.q(a2, "out", "yq"), "out", "y")
	m := tb.model()
	mustRewrite(t, m, 2)
	mustRewrite(t, m, 0)
	k := 0
	for _, o := range m.OpsetImport {
		if o.GetDomain() == Domain {
			k++
		}
	}
	if k != 1 {
		t.Fatalf("%d opset imports for %s", k, Domain)
	}
}

func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}
