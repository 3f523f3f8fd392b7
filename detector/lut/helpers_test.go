package lut

import (
	"math"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

var ortOnce sync.Once

// initORT loads ONNX Runtime once for the package's tests and returns the
// library path it loaded.
func initORT(t testing.TB) string {
	t.Helper()
	lib := testenv.ORTLibrary(t)
	var err error
	ortOnce.Do(func() {
		ort.SetSharedLibraryPath(lib)
		err = ort.InitializeEnvironment(ort.WithLogLevelError())
	})
	if err != nil {
		t.Fatalf("load onnx runtime %s: %v", lib, err)
	}
	return lib
}

// tiny builds small QDQ graphs: input "x" float [shape] is quantised with
// (inQ), the activation pattern follows, and the result is dequantised
// into output "y" with (outQ).
type tiny struct {
	gp   *onnxpb.GraphProto
	seq  int
	in   QParams
	out  QParams
	elem onnxpb.TensorProto_DataType
}

func newTiny(shape []int64, in, out QParams) *tiny {
	elem := onnxpb.TensorProto_UINT8
	if in.Signed {
		elem = onnxpb.TensorProto_INT8
	}
	tb := &tiny{gp: &onnxpb.GraphProto{Name: proto.String("tiny")}, in: in, out: out, elem: elem}
	tb.gp.Input = []*onnxpb.ValueInfoProto{floatInfo("x", shape)}
	tb.gp.Output = []*onnxpb.ValueInfoProto{floatInfo("y", shape)}
	tb.param("in", in)
	tb.param("out", out)
	tb.param("sig", QParams{Scale: 1.0 / 255, Signed: in.Signed, Zero: map[bool]int32{true: -128, false: 0}[in.Signed]})
	return tb
}

func (tb *tiny) param(name string, q QParams) {
	tb.gp.Initializer = append(tb.gp.Initializer, onnx.Float32Scalar(name+"_scale", q.Scale))
	if q.Signed {
		tb.gp.Initializer = append(tb.gp.Initializer, onnx.Int8Scalar(name+"_zp", int8(q.Zero)))
	} else {
		tb.gp.Initializer = append(tb.gp.Initializer, onnx.Uint8Scalar(name+"_zp", uint8(q.Zero)))
	}
}

func (tb *tiny) node(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) string {
	tb.seq++
	tb.gp.Node = append(tb.gp.Node, &onnxpb.NodeProto{Name: proto.String(op + "_" + out), OpType: proto.String(op),
		Input: in, Output: []string{out}, Attribute: attrs})
	return out
}

func (tb *tiny) q(x, param, out string) string {
	return tb.node("QuantizeLinear", []string{x, param + "_scale", param + "_zp"}, out)
}

func (tb *tiny) dq(x, param, out string) string {
	return tb.node("DequantizeLinear", []string{x, param + "_scale", param + "_zp"}, out)
}

func (tb *tiny) model() *onnxpb.ModelProto {
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: tb.gp,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
}

func floatInfo(name string, shape []int64) *onnxpb.ValueInfoProto {
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(shape))
	for i, d := range shape {
		dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
}

// siluQDQ: x → Q → DQ → Sigmoid [→ Q → DQ] → Mul → Q → DQ → y.
func siluQDQ(shape []int64, in, out QParams, quantSigmoid bool) *onnxpb.ModelProto {
	tb := newTiny(shape, in, out)
	xq := tb.q("x", "in", "xq")
	xf := tb.dq(xq, "in", "xf")
	s := tb.node("Sigmoid", []string{xf}, "s")
	if quantSigmoid {
		s = tb.dq(tb.q(s, "sig", "sq"), "sig", "sdq")
	}
	m := tb.node("Mul", []string{xf, s}, "m")
	tb.dq(tb.q(m, "out", "yq"), "out", "y")
	return tb.model()
}

// ramp is n floats from lo to hi.
func ramp(n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*float32(i)/float32(n-1)
	}
	return v
}

// runModel runs m once (CPU, graph optimisation level as given) on input x
// and returns output y; register adds the LUT operators first.
func runModel(t testing.TB, m *onnxpb.ModelProto, x []float32, shape []int64, register bool,
	level ort.GraphOptimizationLevel) []float32 {
	t.Helper()
	lib := initORT(t)
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(level); err != nil {
		t.Fatal(err)
	}
	if register {
		if err := Register(opts, lib); err != nil {
			t.Fatal(err)
		}
	}
	in, err := ort.NewTensor(ort.NewShape(shape...), x)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	s, err := ort.NewAdvancedSessionWithONNXData(b, []string{"x"}, []string{"y"},
		[]ort.Value{in}, []ort.Value{out}, opts)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		t.Fatalf("run: %v", err)
	}
	return append([]float32(nil), out.GetData()...)
}

// maxSteps is the largest difference between a and b in units of scale.
func maxSteps(a, b []float32, scale float32) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i]))/float64(scale))
	}
	return worst
}
