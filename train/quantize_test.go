package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

// qNode is a QuantizeLinear or DequantizeLinear node reading ins.
func qNode(op string, ins []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String("q"), OpType: proto.String(op), Input: ins, Output: []string{"y"}, Attribute: attrs}
}

// mustQuantize builds a QuantizeLinear kernel of inputs x, s, zp whose
// zero point has type dt.
func mustQuantize(t *testing.T, dt onnxpb.TensorProto_DataType, attrs ...*onnxpb.AttributeProto) kernel {
	t.Helper()
	k, err := buildQuantize(qNode("QuantizeLinear", []string{"x", "s", "zp"}, attrs...), map[string]onnxpb.TensorProto_DataType{"zp": dt})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustDequantize(t *testing.T, attrs ...*onnxpb.AttributeProto) kernel {
	t.Helper()
	k, err := buildDequantize(qNode("DequantizeLinear", []string{"x", "s", "zp"}, attrs...), 13)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func scalar(v float32) *Tensor { return mustData([]float32{v}) }

func forward1(t *testing.T, k kernel, ins ...*Tensor) *Tensor {
	t.Helper()
	outs, _, err := k.forward(ins)
	if err != nil {
		t.Fatal(err)
	}
	return outs[0]
}

// TestQuantizeRoundsAndSaturates: round half to even, zero point added,
// saturation to the zero point's type.
func TestQuantizeRoundsAndSaturates(t *testing.T) {
	// x/0.5 = 2.5, 3.5, −2.5, 0.5, 1000, −1000.
	x := mustData([]float32{1.25, 1.75, -1.25, 0.25, 500, -500}, 6)
	for _, c := range []struct {
		dt   onnxpb.TensorProto_DataType
		zp   int64
		want []float32
	}{
		{onnxpb.TensorProto_UINT8, 10, []float32{12, 14, 8, 10, 255, 0}},
		{onnxpb.TensorProto_UINT8, 0, []float32{2, 4, 0, 0, 255, 0}},
		{onnxpb.TensorProto_INT8, -3, []float32{-1, 1, -5, -3, 127, -128}},
		{onnxpb.TensorProto_INT8, 0, []float32{2, 4, -2, 0, 127, -128}},
	} {
		got := forward1(t, mustQuantize(t, c.dt), x, scalar(0.5), intTensor([]int64{c.zp}))
		if !slices.Equal(got.Data, c.want) || !slices.Equal(got.Shape, x.Shape) {
			t.Errorf("%v zero point %d: %v %v, want %v", c.dt, c.zp, got.Shape, got.Data, c.want)
		}
	}
	// ONNX divides in float32: there 0.7/0.2 and 1.5/0.2 are 3.5 and 7.5
	// exactly (3.4999999 and 7.4999999 in float64).
	got := forward1(t, mustQuantize(t, onnxpb.TensorProto_INT8), mustData([]float32{0.7, -0.7, 1.5, 0.5}, 4), scalar(0.2), intTensor([]int64{0}))
	if want := []float32{4, -4, 8, 2}; !slices.Equal(got.Data, want) {
		t.Errorf("x/0.2 of 0.7, −0.7, 1.5, 0.5: %v, want %v (float32 quotients 3.5, −3.5, 7.5, 2.5)", got.Data, want)
	}
	// Without a zero point the range is UINT8's.
	k, err := buildQuantize(qNode("QuantizeLinear", []string{"x", "s"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := forward1(t, k, mustData([]float32{-3, 3, 300}, 3), scalar(1)); !slices.Equal(got.Data, []float32{0, 3, 255}) {
		t.Errorf("no zero point: %v, want [0 3 255]", got.Data)
	}
}

// TestQuantizeBuildSaturation quantizes through Build: the range comes from
// the zero point initializer's type.
func TestQuantizeBuildSaturation(t *testing.T) {
	for _, c := range []struct {
		zp   *onnxpb.TensorProto
		want []float32
	}{
		{onnx.Uint8Scalar("zp", 128), []float32{0, 126, 128, 131, 255}},
		{onnx.Int8Scalar("zp", 0), []float32{-128, -2, 0, 3, 127}},
	} {
		b := &graphgen.Builder{Opset: 13}
		b.Inits = append(b.Inits, onnx.Float32Scalar("s", 0.25), c.zp)
		b.Node("QuantizeLinear", []string{"x", "s", "zp"}, []string{"q"})
		g, err := Build(b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 5)}, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("q")}), Options{})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := g.Forward(map[string]*Tensor{"x": mustData([]float32{-100, -0.5, 0.0625, 0.75, 100}, 5)})
		if err != nil {
			t.Fatal(err)
		}
		if got := outs["q"].Data; !slices.Equal(got, c.want) {
			t.Errorf("zero point %v: %v, want %v", onnxpb.TensorProto_DataType(c.zp.GetDataType()), got, c.want)
		}
	}
}

// TestQuantizePerAxis: one scale and zero point per slice along the axis.
func TestQuantizePerAxis(t *testing.T) {
	x := mustData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	x3 := mustData([]float32{1, 2, 3, 4, 5, 6}, 1, 3, 2)
	axis0 := []*Tensor{mustData([]float32{1, 0.5}, 2), intTensor([]int64{0, 1}, 2)}
	axis1 := []*Tensor{mustData([]float32{1, 0.5, 0.25}, 3), intTensor([]int64{0, 1, 2}, 3)}
	for _, c := range []struct {
		name string
		axis int64
		x    *Tensor
		sz   []*Tensor
		want []float32
	}{
		{"axis 0", 0, x, axis0, []float32{1, 2, 3, 9, 11, 13}},
		{"axis -2", -2, x, axis0, []float32{1, 2, 3, 9, 11, 13}},
		{"axis 1", 1, x, axis1, []float32{1, 5, 14, 4, 11, 26}},
		{"axis -1", -1, x, axis1, []float32{1, 5, 14, 4, 11, 26}},
		{"axis 1 inner", 1, x3, axis1, []float32{1, 2, 7, 9, 22, 26}},
		{"axis -2 inner", -2, x3, axis1, []float32{1, 2, 7, 9, 22, 26}},
	} {
		k := mustQuantize(t, onnxpb.TensorProto_UINT8, onnx.IntAttr("axis", c.axis))
		if got := forward1(t, k, c.x, c.sz[0], c.sz[1]); !slices.Equal(got.Data, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got.Data, c.want)
		}
		dq := forward1(t, mustDequantize(t, onnx.IntAttr("axis", c.axis)), intTensor(intsOf(c.want), c.x.Shape...), c.sz[0], c.sz[1])
		if !slices.Equal(dq.Data, c.x.Data) {
			t.Errorf("%s: dequantized %v, want %v", c.name, dq.Data, c.x.Data)
		}
	}
}

func intsOf(v []float32) []int64 {
	r := make([]int64, len(v))
	for i, x := range v {
		r[i] = int64(x)
	}
	return r
}

func TestQuantizeKernelErrors(t *testing.T) {
	x := NewTensor(2, 3)
	three := mustData([]float32{1, 1, 1}, 3)
	for _, c := range []struct {
		name string
		axis int64
		ins  []*Tensor
		want string
	}{
		{"scales for the other axis", 0, []*Tensor{x, three, intTensor([]int64{0, 0, 0}, 3)}, "3 scales for 2 values along axis 0"},
		{"axis out of range", 2, []*Tensor{x, three}, "axis 2 out of range"},
		{"negative axis out of range", -3, []*Tensor{x, three}, "axis -3 out of range"},
		{"int input", 1, []*Tensor{intTensor([]int64{1, 2, 3, 4, 5, 6}, 2, 3), three}, "float"},
		{"zero point count", 1, []*Tensor{x, three, intTensor([]int64{0, 0}, 2)}, "2 zero points for 3 scales"},
		{"int scale", 1, []*Tensor{x, intTensor([]int64{1})}, "scale must be a float tensor"},
		{"no scale", 1, []*Tensor{x}, "scale"},
		{"zero scale", 1, []*Tensor{x, mustData([]float32{1, 0, 1}, 3)}, "scale 1 is 0: want a positive, finite value"},
		{"negative scale", 1, []*Tensor{x, mustData([]float32{1, 1, -2}, 3)}, "scale 2 is -2"},
		{"NaN scale", 1, []*Tensor{x, mustData([]float32{float32(math.NaN()), 1, 1}, 3)}, "scale 0 is NaN"},
		{"infinite scale", 1, []*Tensor{x, mustData([]float32{float32(math.Inf(1)), 1, 1}, 3)}, "scale 0 is +Inf"},
		{"blocked scales", 1, []*Tensor{mustData(make([]float32, 8), 2, 4), mustData([]float32{1, 1, 1, 1}, 2, 2)}, "scale of shape [2 2]"},
	} {
		_, _, err := mustQuantize(t, onnxpb.TensorProto_UINT8, onnx.IntAttr("axis", c.axis)).forward(c.ins)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	_, _, err := mustDequantize(t, onnx.IntAttr("axis", 0)).forward([]*Tensor{intTensor(make([]int64, 6), 2, 3), three})
	if err == nil || !strings.Contains(err.Error(), "3 scales") {
		t.Errorf("dequantize with scales for the other axis: %v", err)
	}
	if _, err := buildDequantize(qNode("DequantizeLinear", []string{"x", "s"}, onnx.IntAttr("block_size", 4)), 21); err == nil || !strings.Contains(err.Error(), "block_size 4") {
		t.Errorf("dequantize with block_size: %v", err)
	}
}

// TestQuantizeBuildErrors: the zero point must be an UINT8 or INT8
// initializer and output_dtype is refused; the errors name the node and
// the zero point.
func TestQuantizeBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		zp    *onnxpb.TensorProto // nil: "zp" is a Constant node's output
		attrs []*onnxpb.AttributeProto
		want  []string
	}{
		{"zero point from a node", nil, nil, []string{`"zp"`, "initializer", "q_QuantizeLinear"}},
		{"int32 zero point", onnx.Int32Scalar("zp", 0), nil, []string{"INT32", "q_QuantizeLinear"}},
		{"output_dtype", onnx.Uint8Scalar("zp", 0), []*onnxpb.AttributeProto{onnx.IntAttr("output_dtype", int64(onnxpb.TensorProto_UINT8))}, []string{"output_dtype"}},
		{"block_size", onnx.Uint8Scalar("zp", 0), []*onnxpb.AttributeProto{onnx.IntAttr("block_size", 2)}, []string{"block_size 2", "q_QuantizeLinear"}},
	} {
		b := &graphgen.Builder{Opset: 13}
		b.Inits = append(b.Inits, onnx.Float32Scalar("s", 0.25))
		if c.zp != nil {
			b.Inits = append(b.Inits, c.zp)
		} else {
			b.Nodes = append(b.Nodes, &onnxpb.NodeProto{Name: proto.String("zp_Constant"), OpType: proto.String("Constant"), Output: []string{"zp"},
				Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: onnx.Uint8Scalar("", 3)}}})
		}
		b.Node("QuantizeLinear", []string{"x", "s", "zp"}, []string{"q"}, c.attrs...)
		_, err := Build(b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 5)}, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("q")}), Options{})
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want an error containing %q", c.name, err, w)
			}
		}
	}
}

// TestDequantize: from an integer tensor and from a float one (a
// QuantizeLinear's output), per axis; linear in a float input, no
// gradient for an integer one.
func TestDequantize(t *testing.T) {
	q := []int64{-128, 0, 127, 3, 10, 255}
	s := mustData([]float32{0.5, 0.125}, 2)
	zp := intTensor([]int64{0, 10}, 2)
	want := []float32{-64, 0, 63.5, -0.875, 0, 30.625}
	k := mustDequantize(t, onnx.IntAttr("axis", 0))
	fromFloat := mustData([]float32{-128, 0, 127, 3, 10, 255}, 2, 3)
	for name, x := range map[string]*Tensor{"int": intTensor(q, 2, 3), "float": fromFloat} {
		if got := forward1(t, k, x, s, zp); !slices.Equal(got.Data, want) || !slices.Equal(got.Shape, []int{2, 3}) {
			t.Errorf("%s input: %v %v, want [2 3] %v", name, got.Shape, got.Data, want)
		}
	}
	if got := forward1(t, mustDequantize(t), intTensor([]int64{4, -2}, 2), scalar(0.25)); !slices.Equal(got.Data, []float32{1, -0.5}) {
		t.Errorf("per tensor without zero point: %v, want [1 -0.5]", got.Data)
	}
	rng := rand.New(rand.NewPCG(31, 32))
	checkGradients(t, mustDequantize(t, onnx.IntAttr("axis", 1)), []*Tensor{randTensor(rng, 2, 3, 4), mustData([]float32{0.5, 2, 0.1}, 3), intTensor([]int64{1, -2, 0}, 3)}, 0)
	checkGradients(t, mustDequantize(t), []*Tensor{randTensor(rng, 2, 3), scalar(0.3), intTensor([]int64{5})}, 0)
	ins := []*Tensor{intTensor(q, 2, 3), s, zp}
	outs, state, err := k.forward(ins)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := k.backward(ins, outs, state, []*Tensor{onesLike(outs[0])})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range grads {
		if g != nil {
			t.Errorf("integer input: gradient for input %d %v, want none", i, g.Data)
		}
	}
}

// TestQuantizeDequantizeStraightThrough: the backward of a Q→DQ pair
// passes the incoming gradient unchanged where x is representable and
// gives exactly 0 where it saturates.
func TestQuantizeDequantizeStraightThrough(t *testing.T) {
	// Row 0: scale 0.5, zero point 0, range [−0.25, 127.75); row 1: scale
	// 0.1, zero point 128, range [−12.85, 12.75).
	x := mustData([]float32{-1, -0.2, 3, 127.5, 200, 64.1,
		-12.8, -13, 0.33, 12.7, 12.8, -40}, 2, 6)
	saturated := []bool{true, false, false, false, true, false,
		false, true, false, false, true, true}
	s := mustData([]float32{0.5, 0.1}, 2)
	zp := intTensor([]int64{0, 128}, 2)
	qk := mustQuantize(t, onnxpb.TensorProto_UINT8, onnx.IntAttr("axis", 0))
	dqk := mustDequantize(t, onnx.IntAttr("axis", 0))
	qIns := []*Tensor{x, s, zp}
	qOuts, qState, err := qk.forward(qIns)
	if err != nil {
		t.Fatal(err)
	}
	dqIns := []*Tensor{qOuts[0], s, zp}
	dqOuts, dqState, err := dqk.forward(dqIns)
	if err != nil {
		t.Fatal(err)
	}
	gOut := NewTensor(2, 6)
	for i := range gOut.Data {
		gOut.Data[i] = float32(i) - 4.5
	}
	gq, err := dqk.backward(dqIns, dqOuts, dqState, []*Tensor{gOut})
	if err != nil {
		t.Fatal(err)
	}
	gx, err := qk.backward(qIns, qOuts, qState, gq[:1])
	if err != nil {
		t.Fatal(err)
	}
	if gx[1] != nil || len(gx) > 2 && gx[2] != nil {
		t.Error("gradient for the scale or zero point")
	}
	for i, g := range gx[0].Data {
		want := gOut.Data[i]
		if saturated[i] {
			want = 0
		}
		if math.Abs(float64(g-want)) > 1e-6*math.Abs(float64(want)) {
			t.Errorf("x[%d] = %g (quantized %g): gradient %g, want %g", i, x.Data[i], qOuts[0].Data[i], g, want)
		}
	}
}

// Backward without an incoming gradient gives none; with parameters that
// do not fit the input it fails as forward does, for both kernels.
func TestQuantizeBackwardEdges(t *testing.T) {
	x := mustData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	good := []*Tensor{x, mustData([]float32{0.5, 0.5, 0.5}, 3)}
	bad := []*Tensor{x, mustData([]float32{0.5, 0.5}, 2)}
	qk := mustQuantize(t, onnxpb.TensorProto_UINT8, onnx.IntAttr("axis", 1))
	dqk := mustDequantize(t, onnx.IntAttr("axis", 1))
	for name, k := range map[string]kernel{"QuantizeLinear": qk, "DequantizeLinear": dqk} {
		g, err := k.backward(good, []*Tensor{x}, nil, []*Tensor{nil})
		if err != nil || len(g) != 2 || g[0] != nil || g[1] != nil {
			t.Errorf("%s backward with no incoming gradient: %v, %v; want no gradients", name, g, err)
		}
		g, err = k.backward(bad, []*Tensor{x}, nil, []*Tensor{NewTensor(2, 3)})
		if err == nil || g != nil || !strings.Contains(err.Error(), "2 scales for 3 values") {
			t.Errorf("%s backward with 2 scales for axis 1 of [2 3]: %v, %v", name, g, err)
		}
	}
}

// Without an axis attribute, per-axis scales run along axis 1 (the
// channels of [N C H W]), as ONNX says.
func TestQDQDefaultAxis(t *testing.T) {
	x := mustData([]float32{1, 1, 1, 1, 1, 1}, 1, 3, 2)
	s := mustData([]float32{0.5, 0.25, 1}, 3)
	zp := intTensor([]int64{0, 0, 0}, 3)
	q, _, err := mustQuantize(t, onnxpb.TensorProto_INT8).forward([]*Tensor{x, s, zp})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{2, 2, 4, 4, 1, 1}; !slices.Equal(q[0].Data, want) {
		t.Errorf("quantize: %v, want %v (channel c scaled by 1/s[c])", q[0].Data, want)
	}
	dq, _, err := mustDequantize(t).forward([]*Tensor{q[0], s, zp})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dq[0].Data, x.Data) {
		t.Errorf("dequantize: %v, want %v", dq[0].Data, x.Data)
	}
	// The largest finite scale is a scale like any other.
	if q, _, err := mustQuantize(t, onnxpb.TensorProto_INT8).forward([]*Tensor{x, mustData([]float32{math.MaxFloat32}, 1)}); err != nil || q[0].Data[0] != 0 {
		t.Errorf("scale MaxFloat32: %v, %v; want every value quantized to 0", q, err)
	}
}
