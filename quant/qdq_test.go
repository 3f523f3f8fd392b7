package quant

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// These white-box tests build tiny float graphs, quantize them and check
// the QDQ model's structure and numbers, then run it in ONNX Runtime.

func qtNode(name, op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
}

func qtValueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	d := make([]*onnxpb.TensorShapeProto_Dimension, len(dims))
	for i, v := range dims {
		d[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: d},
		}}},
	}
}

func qtModel(nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto, in, out *onnxpb.ValueInfoProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("qdq_test"), Node: nodes, Initializer: inits,
			Input: []*onnxpb.ValueInfoProto{in}, Output: []*onnxpb.ValueInfoProto{out},
		},
	}
}

// convWeights returns random Conv weights [m, c, k, k] whose output
// channels have different magnitudes (channel i within ±0.3·(i+1)), so a
// per-channel scale differs from a per-tensor one.
func convWeights(rng *rand.Rand, m, c, k int) []float32 {
	w := make([]float32, m*c*k*k)
	per := c * k * k
	for i := range w {
		a := 0.3 * float32(i/per+1)
		w[i] = a * (2*rng.Float32() - 1)
	}
	return w
}

// convReluConv builds, with random weights:
//
//	x[1,3,8,8] ─conv1(W1 4×3×3×3, B1, pads 1)─c1─relu─r1─conv2(W2 2×4×1×1, B2)─y[1,2,8,8]
func convReluConv(rng *rand.Rand) *onnxpb.ModelProto {
	inits := []*onnxpb.TensorProto{
		onnx.Float32Tensor("W1", []int64{4, 3, 3, 3}, convWeights(rng, 4, 3, 3)),
		onnx.Float32Vector("B1", randFloats(rng, 4, -0.5, 0.5)),
		onnx.Float32Tensor("W2", []int64{2, 4, 1, 1}, convWeights(rng, 2, 4, 1)),
		onnx.Float32Vector("B2", randFloats(rng, 2, -0.5, 0.5)),
	}
	pads := &onnxpb.AttributeProto{Name: proto.String("pads"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{1, 1, 1, 1}}
	return qtModel([]*onnxpb.NodeProto{
		qtNode("conv1", "Conv", []string{"x", "W1", "B1"}, []string{"c1"}, pads),
		qtNode("relu", "Relu", []string{"c1"}, []string{"r1"}),
		qtNode("conv2", "Conv", []string{"r1", "W2", "B2"}, []string{"y"}),
	}, inits, qtValueInfo("x", 1, 3, 8, 8), qtValueInfo("y", 1, 2, 8, 8))
}

// convChain builds n 1×1 Convs (2 channels) feeding each other directly:
// x ─conv0─t0─conv1─t1─ … ─conv{n-1}─y.
func convChain(rng *rand.Rand, n int) *onnxpb.ModelProto {
	var nodes []*onnxpb.NodeProto
	var inits []*onnxpb.TensorProto
	in := "x"
	for i := 0; i < n; i++ {
		out := fmt.Sprint("t", i)
		if i == n-1 {
			out = "y"
		}
		w, b := fmt.Sprint("W", i), fmt.Sprint("B", i)
		inits = append(inits, onnx.Float32Tensor(w, []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)), onnx.Float32Vector(b, randFloats(rng, 2, -0.2, 0.2)))
		nodes = append(nodes, qtNode(fmt.Sprint("conv", i), "Conv", []string{in, w, b}, []string{out}))
		in = out
	}
	return qtModel(nodes, inits, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
}

func analyseOK(t testing.TB, m *onnxpb.ModelProto, exclude ...string) *prepared {
	t.Helper()
	ex := map[string]bool{}
	for _, e := range exclude {
		ex[e] = true
	}
	p, err := analyse(m, ex)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomInputs are calibration inputs of uniform random values in [-1, 1),
// the same values for the same index.
type randomInputs struct {
	n    int
	seed uint64
}

func (r randomInputs) Len() int { return r.n }

func (r randomInputs) Input(_ context.Context, i int, dst []float32) error {
	rng := rand.New(rand.NewPCG(r.seed, uint64(i)))
	for j := range dst {
		dst[j] = 2*rng.Float32() - 1
	}
	return nil
}

func qtInitORT(t testing.TB) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
}

// runModel runs m in ONNX Runtime on one input tensor and returns its
// first output. Unoptimised, ONNX Runtime executes QDQ models literally
// (DequantizeLinear, then the float op): the reference for the quantizer's
// arithmetic. Optimised, it fuses them into its integer kernels, whose
// uint8×int8 pair sums saturate with 8-bit weights on x86 CPUs without VNNI
// (which Options.ReduceRange avoids).
func runModel(t testing.TB, m *onnxpb.ModelProto, in []float32, optimise bool) []float32 {
	t.Helper()
	qtInitORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if !optimise {
		if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
			t.Fatal(err)
		}
	}
	gp := m.GetGraph()
	inVI, outName := gp.GetInput()[0], gp.GetOutput()[0].GetName()
	var shape []int64
	for _, d := range inVI.GetType().GetTensorType().GetShape().GetDim() {
		shape = append(shape, d.GetDimValue())
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{inVI.GetName()}, []string{outName}, opts)
	if err != nil {
		t.Fatalf("ONNX Runtime session: %v", err)
	}
	defer s.Destroy()
	x, err := ort.NewTensor(ort.NewShape(shape...), slices.Clone(in))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	outs := []ort.Value{nil}
	if err := s.Run([]ort.Value{x}, outs); err != nil {
		t.Fatalf("run: %v", err)
	}
	defer outs[0].Destroy()
	return slices.Clone(outs[0].(*ort.Tensor[float32]).GetData())
}

// relErr is ‖got − want‖₂ / ‖want‖₂.
func relErr(got, want []float32) float64 {
	var d, n float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		n += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / n)
}

// Readers of initializer data by type.

func qtInit(t testing.TB, g *onnx.Graph, name string, dt onnxpb.TensorProto_DataType) *onnxpb.TensorProto {
	t.Helper()
	init := g.Initializer(name)
	if init == nil {
		t.Fatalf("no initializer %q", name)
	}
	if init.GetDataType() != int32(dt) {
		t.Fatalf("initializer %q is %s, want %s", name, onnxpb.TensorProto_DataType(init.GetDataType()), dt)
	}
	return init
}

func qtFloats(t testing.TB, g *onnx.Graph, name string) []float32 {
	t.Helper()
	v, err := onnx.TensorFloats(qtInit(t, g, name, onnxpb.TensorProto_FLOAT))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func qtInt8s(t testing.TB, g *onnx.Graph, name string) []int8 {
	t.Helper()
	raw := qtInit(t, g, name, onnxpb.TensorProto_INT8).GetRawData()
	v := make([]int8, len(raw))
	for i, b := range raw {
		v[i] = int8(b)
	}
	return v
}

func qtUint8s(t testing.TB, g *onnx.Graph, name string) []uint8 {
	t.Helper()
	return qtInit(t, g, name, onnxpb.TensorProto_UINT8).GetRawData()
}

func qtInt32s(t testing.TB, g *onnx.Graph, name string) []int32 {
	t.Helper()
	raw := qtInit(t, g, name, onnxpb.TensorProto_INT32).GetRawData()
	v := make([]int32, len(raw)/4)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// producerOp is the op type of the node producing tensor, "" for none.
func producerOp(g *onnx.Graph, tensor string) string {
	if p := g.Producer(tensor); p != nil {
		return p.GetOpType()
	}
	return ""
}

func qtNodeByName(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	for _, n := range m.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}

func nodeAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func TestParseProfile(t *testing.T) {
	for _, p := range []Profile{ProfileCPU, ProfileARM, ProfileTensorRT} {
		if got, err := ParseProfile(string(p)); err != nil || got != p {
			t.Errorf("ParseProfile(%q) = %q, %v", p, got, err)
		}
	}
	if _, err := ParseProfile("gpu"); err == nil || !strings.Contains(err.Error(), `"gpu"`) {
		t.Errorf("ParseProfile(gpu) error = %v, want one naming the profile", err)
	}
}

func TestActivationParams(t *testing.T) {
	u8, i8 := onnxpb.TensorProto_UINT8, onnxpb.TensorProto_INT8
	for _, c := range []struct {
		p      Profile
		lo, hi float32
		scale  float32
		zp     int32
		dtype  onnxpb.TensorProto_DataType
	}{
		// cpu: uint8 asymmetric, zp = round(-lo/scale).
		{ProfileCPU, -1, 3, 4.0 / 255, 64, u8}, // 255/4 = 63.75
		{ProfileCPU, 0, 2, 2.0 / 255, 0, u8},
		{ProfileCPU, 1, 3, 3.0 / 255, 0, u8},     // widened to [0, 3]
		{ProfileCPU, -3, -1, 3.0 / 255, 255, u8}, // widened to [-3, 0]
		{ProfileCPU, 0, 0, 1, 0, u8},
		// arm: int8 asymmetric, zp = round(-128 - lo/scale).
		{ProfileARM, -1, 3, 4.0 / 255, -64, i8}, // -128 + 63.75
		{ProfileARM, 0, 2, 2.0 / 255, -128, i8},
		{ProfileARM, 2, 5, 5.0 / 255, -128, i8}, // widened to [0, 5]
		{ProfileARM, -2, 0, 2.0 / 255, 127, i8},
		{ProfileARM, 0, 0, 1, 0, i8},
		// tensorrt: int8 symmetric, zp 0, scale = max|x| / 127.
		{ProfileTensorRT, -1, 3, 3.0 / 127, 0, i8},
		{ProfileTensorRT, -5, 2, 5.0 / 127, 0, i8},
		{ProfileTensorRT, 1, 4, 4.0 / 127, 0, i8},
		{ProfileTensorRT, 0, 0, 1, 0, i8},
	} {
		q := activationParams(c.lo, c.hi, c.p)
		if math.Abs(float64(q.scale-c.scale)) > 1e-7*float64(c.scale) || q.zp != c.zp || q.dtype != c.dtype {
			t.Errorf("%s [%g, %g]: scale %g zp %d %s; want scale %g zp %d %s", c.p, c.lo, c.hi, q.scale, q.zp, q.dtype, c.scale, c.zp, c.dtype)
		}
	}

	// Any range: 0 is exact (it is the zero point), and both ends of the
	// widened range quantize inside the type's range, within half a step.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		lo, hi := -10*rng.Float32(), 10*rng.Float32()
		if rng.IntN(4) == 0 {
			lo = 0
		}
		for _, p := range []Profile{ProfileCPU, ProfileARM, ProfileTensorRT} {
			q := activationParams(lo, hi, p)
			qmin, qmax := -128.0, 127.0
			if q.dtype == onnxpb.TensorProto_UINT8 {
				qmin, qmax = 0, 255
			}
			for _, x := range []float32{lo, hi} {
				v := math.Round(float64(x/q.scale)) + float64(q.zp)
				if v < qmin || v > qmax {
					t.Fatalf("%s [%g, %g]: %g quantizes to %g outside [%g, %g]", p, lo, hi, x, v, qmin, qmax)
				}
				if back := (v - float64(q.zp)) * float64(q.scale); math.Abs(back-float64(x)) > float64(q.scale)/2*1.001 {
					t.Fatalf("%s [%g, %g]: %g round-trips to %g (step %g)", p, lo, hi, x, back, q.scale)
				}
			}
		}
	}
}

// buildQDQ with hand-set ranges: check every Q/DQ parameter against values
// worked out from the ranges and the weights.
func TestBuildQDQParams(t *testing.T) {
	for _, reduce := range []bool{false, true} {
		name := map[bool]string{false: "8-bit weights", true: "7-bit weights"}[reduce]
		t.Run(name, func(t *testing.T) {
			m := convReluConv(rand.New(rand.NewPCG(11, 12)))
			orig := proto.Clone(m).(*onnxpb.ModelProto)
			p := analyseOK(t, m)
			if got := nodeNames(p.candidates); !slices.Equal(got, []string{"conv1", "conv2"}) {
				t.Fatalf("candidates %v, want [conv1 conv2]", got)
			}
			plan := &Plan{
				Quantize: map[string]bool{"conv1": true, "conv2": true},
				// x: scale 4/255 zp 64; c1: 8/255 zp round(95.625) = 96;
				// r1: 2/255 zp 0; y: 2/255 zp round(127.5) = 128.
				Ranges:      map[string][2]float32{"x": {-1, 3}, "c1": {-3, 5}, "r1": {0, 2}, "y": {-1, 1}},
				Profile:     ProfileCPU,
				PerChannel:  true,
				ReduceRange: reduce,
			}
			out, err := p.buildQDQ(plan)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, orig) {
				t.Error("buildQDQ modified the prepared model")
			}
			g := onnx.NewGraph(out)
			if _, err := g.TopoSort(); err != nil {
				t.Fatal(err)
			}
			qmax := 127
			if reduce {
				qmax = 63
			}
			og := onnx.NewGraph(orig)
			for _, c := range []struct {
				conv, input string
				inScale     float32
				inZP        uint8
			}{{"conv1", "x", 4.0 / 255, 64}, {"conv2", "r1", 2.0 / 255, 0}} {
				n := qtNodeByName(out, c.conv)
				in := n.GetInput()
				for i, what := range []string{"input", "weight", "bias"} {
					if op := producerOp(g, in[i]); op != "DequantizeLinear" {
						t.Fatalf("%s %s %q comes from %q, want DequantizeLinear", c.conv, what, in[i], op)
					}
				}
				// Activation: x → QuantizeLinear → DequantizeLinear → conv.
				dq := g.Producer(in[0])
				q := g.Producer(dq.GetInput()[0])
				if q.GetOpType() != "QuantizeLinear" || q.GetInput()[0] != c.input {
					t.Fatalf("%s input: DequantizeLinear reads %s of %q, want QuantizeLinear of %q", c.conv, q.GetOpType(), q.GetInput()[0], c.input)
				}
				inScale := qtFloats(t, g, q.GetInput()[1])
				if len(inScale) != 1 || inScale[0] != c.inScale || !slices.Equal(qtUint8s(t, g, q.GetInput()[2]), []uint8{c.inZP}) {
					t.Errorf("%s input: scale %v zp %v, want %g %d", c.conv, inScale, qtUint8s(t, g, q.GetInput()[2]), c.inScale, c.inZP)
				}
				if dq.GetInput()[1] != q.GetInput()[1] || dq.GetInput()[2] != q.GetInput()[2] {
					t.Errorf("%s input: Q and DQ use different parameters", c.conv)
				}

				// Weight: int8 per output channel, axis 0, zero points 0.
				origConv := qtNodeByName(orig, c.conv)
				w := qtFloats(t, og, origConv.GetInput()[1])
				dims := og.Initializer(origConv.GetInput()[1]).GetDims()
				wdq := g.Producer(in[1])
				if a := nodeAttr(wdq, "axis"); a == nil || a.GetI() != 0 {
					t.Errorf("%s weight DequantizeLinear axis = %v, want 0", c.conv, a)
				}
				qw := qtInt8s(t, g, wdq.GetInput()[0])
				if got := g.Initializer(wdq.GetInput()[0]).GetDims(); !slices.Equal(got, dims) {
					t.Errorf("%s quantized weight dims %v, want %v", c.conv, got, dims)
				}
				ws := qtFloats(t, g, wdq.GetInput()[1])
				channels := int(dims[0])
				if len(ws) != channels {
					t.Fatalf("%s weight scale has %d values, want %d (one per output channel)", c.conv, len(ws), channels)
				}
				if zp := qtInt8s(t, g, wdq.GetInput()[2]); !slices.Equal(zp, make([]int8, channels)) {
					t.Errorf("%s weight zero points %v, want all 0", c.conv, zp)
				}
				per := len(w) / channels
				for ch := 0; ch < channels; ch++ {
					var maxAbs float32
					peak := 0
					for i := ch * per; i < (ch+1)*per; i++ {
						maxAbs = max(maxAbs, float32(math.Abs(float64(w[i]))))
						peak = max(peak, int(math.Abs(float64(qw[i]))))
						if qw[i] > int8(qmax) || qw[i] < int8(-qmax) {
							t.Errorf("%s weight[%d] = %d outside ±%d", c.conv, i, qw[i], qmax)
						}
						if d := math.Abs(float64(qw[i])*float64(ws[ch]) - float64(w[i])); d > float64(ws[ch])/2*1.0001 {
							t.Errorf("%s weight[%d]: %g dequantizes to %g·%g, off by %g > half a step", c.conv, i, w[i], float32(qw[i]), ws[ch], d)
						}
					}
					if want := maxAbs / float32(qmax); ws[ch] != want {
						t.Errorf("%s channel %d weight scale %g, want max|w|/%d = %g", c.conv, ch, ws[ch], qmax, want)
					}
					if peak != qmax {
						t.Errorf("%s channel %d: largest |q| is %d, want %d", c.conv, ch, peak, qmax)
					}
				}

				// Bias: int32, scale = input scale × weight scale per channel.
				bdq := g.Producer(in[2])
				if a := nodeAttr(bdq, "axis"); a == nil || a.GetI() != 0 {
					t.Errorf("%s bias DequantizeLinear axis = %v, want 0", c.conv, a)
				}
				b := qtFloats(t, og, origConv.GetInput()[2])
				qb := qtInt32s(t, g, bdq.GetInput()[0])
				bs := qtFloats(t, g, bdq.GetInput()[1])
				if len(qb) != channels || len(bs) != channels {
					t.Fatalf("%s bias: %d values, %d scales; want %d", c.conv, len(qb), len(bs), channels)
				}
				if zp := qtInt32s(t, g, bdq.GetInput()[2]); !slices.Equal(zp, make([]int32, channels)) {
					t.Errorf("%s bias zero points %v, want all 0", c.conv, zp)
				}
				for ch := range channels {
					if want := c.inScale * ws[ch]; math.Abs(float64(bs[ch]-want)) > 1e-6*float64(want) {
						t.Errorf("%s bias scale[%d] = %g, want %g × %g = %g", c.conv, ch, bs[ch], c.inScale, ws[ch], want)
					}
					if d := math.Abs(float64(qb[ch])*float64(bs[ch]) - float64(b[ch])); d > float64(bs[ch])/2*1.0001 {
						t.Errorf("%s bias[%d] = %g dequantizes to %d·%g", c.conv, ch, b[ch], qb[ch], bs[ch])
					}
				}
			}

			// conv1's output is quantized too (c1: 8/255, zp 96), and relu
			// reads its dequantized value.
			relu := qtNodeByName(out, "relu")
			dq := g.Producer(relu.GetInput()[0])
			if dq.GetOpType() != "DequantizeLinear" || producerOp(g, dq.GetInput()[0]) != "QuantizeLinear" {
				t.Fatalf("relu reads %q (from %s), want conv1's dequantized output", relu.GetInput()[0], dq.GetOpType())
			}
			q := g.Producer(dq.GetInput()[0])
			if q.GetInput()[0] != "c1" || qtFloats(t, g, q.GetInput()[1])[0] != 8.0/255 || qtUint8s(t, g, q.GetInput()[2])[0] != 96 {
				t.Errorf("c1 quantized with %v scale %v zp %v, want c1, 8/255, 96", q.GetInput()[0], qtFloats(t, g, q.GetInput()[1]), qtUint8s(t, g, q.GetInput()[2]))
			}
			// The float weights and biases are gone; the output is still y.
			for _, name := range []string{"W1", "B1", "W2", "B2"} {
				if g.Initializer(name) != nil {
					t.Errorf("float initializer %q still in the model", name)
				}
			}
			if got := out.GetGraph().GetOutput()[0].GetName(); got != "y" {
				t.Errorf("graph output %q, want y", got)
			}
			if ops := onnx.QuantOps(out); !slices.Equal(ops, []string{"DequantizeLinear", "QuantizeLinear"}) {
				t.Errorf("QuantOps = %v", ops)
			}

			// It runs, close to FP32 on an input whose activations stay
			// inside the ranges.
			x := make([]float32, 3*8*8)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range x {
				x[i] = 0.5*rng.Float32() - 0.25
			}
			fp, qd := runModel(t, orig, x, false), runModel(t, out, x, false)
			if e := relErr(qd, fp); e > 0.05 {
				t.Errorf("relative error vs FP32 %.4f > 0.05", e)
			} else {
				t.Logf("relative error vs FP32 %.4f", e)
			}
		})
	}
}

// Per-tensor weights: one scale (max |w| over the tensor / 127), no axis;
// the bias scale is still per channel (input scale × the one weight scale).
func TestBuildQDQPerTensor(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(13, 14)))
	p := analyseOK(t, m)
	plan := &Plan{
		Quantize: map[string]bool{"conv1": true},
		Ranges:   map[string][2]float32{"x": {-1, 3}, "c1": {-3, 5}},
		Profile:  ProfileCPU,
	}
	out, err := p.buildQDQ(plan)
	if err != nil {
		t.Fatal(err)
	}
	g := onnx.NewGraph(out)
	w := qtFloats(t, onnx.NewGraph(m), "W1")
	var maxAbs float32
	for _, v := range w {
		maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
	}
	conv := qtNodeByName(out, "conv1")
	wdq := g.Producer(conv.GetInput()[1])
	if a := nodeAttr(wdq, "axis"); a != nil {
		t.Errorf("per-tensor weight DequantizeLinear has axis %d", a.GetI())
	}
	ws := qtFloats(t, g, wdq.GetInput()[1])
	if len(ws) != 1 || ws[0] != maxAbs/127 || len(g.Initializer(wdq.GetInput()[1]).GetDims()) != 0 {
		t.Errorf("per-tensor weight scale %v (dims %v), want the scalar %g", ws, g.Initializer(wdq.GetInput()[1]).GetDims(), maxAbs/127)
	}
	bs := qtFloats(t, g, g.Producer(conv.GetInput()[2]).GetInput()[1])
	for ch, s := range bs {
		if want := float32(4.0/255) * ws[0]; math.Abs(float64(s-want)) > 1e-6*float64(want) {
			t.Errorf("bias scale[%d] = %g, want %g", ch, s, want)
		}
	}
	// conv2 is not in the plan: it reads relu's float output and its float weights.
	conv2 := qtNodeByName(out, "conv2")
	if producerOp(g, conv2.GetInput()[0]) != "Relu" || conv2.GetInput()[1] != "W2" || conv2.GetInput()[2] != "B2" {
		t.Errorf("float conv2 reads %v, want [r1 W2 B2]", conv2.GetInput())
	}
	x := make([]float32, 3*8*8)
	for i := range x {
		x[i] = float32(i%7)/3 - 1
	}
	if e := relErr(runModel(t, out, x, false), runModel(t, m, x, false)); e > 0.05 {
		t.Errorf("relative error vs FP32 %.4f > 0.05", e)
	}
}

// A range missing for a tensor the plan quantizes is an error naming it.
func TestBuildQDQMissingRange(t *testing.T) {
	p := analyseOK(t, convReluConv(rand.New(rand.NewPCG(1, 2))))
	_, err := p.buildQDQ(&Plan{Quantize: map[string]bool{"conv2": true}, Ranges: map[string][2]float32{"r1": {0, 1}}, Profile: ProfileCPU})
	if err == nil || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("buildQDQ without y's range: %v, want an error naming \"y\"", err)
	}
}

func nodeNames(nodes []*onnxpb.NodeProto) []string {
	var names []string
	for _, n := range nodes {
		names = append(names, n.GetName())
	}
	return names
}

// Quantize the tiny graph end to end on random calibration inputs, for
// every profile: both convs quantized, the model runs in ONNX Runtime close
// to FP32, and activations use the profile's encoding.
func TestQuantizeTinyProfiles(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(21, 22)))
	inputs := randomInputs{n: 16, seed: 3}
	x := make([]float32, 3*8*8)
	if err := (randomInputs{n: 1, seed: 99}).Input(context.Background(), 0, x); err != nil {
		t.Fatal(err)
	}
	qtInitORT(t)
	fp := runModel(t, m, x, false)
	for _, c := range []struct {
		profile Profile
		reduce  bool
		zpType  onnxpb.TensorProto_DataType
	}{
		{ProfileCPU, true, onnxpb.TensorProto_UINT8},
		{ProfileCPU, false, onnxpb.TensorProto_UINT8},
		{ProfileARM, false, onnxpb.TensorProto_INT8},
		{ProfileTensorRT, false, onnxpb.TensorProto_INT8},
	} {
		t.Run(string(c.profile)+map[bool]string{true: "_reduce", false: ""}[c.reduce], func(t *testing.T) {
			opt := DefaultOptions()
			opt.Profile, opt.ReduceRange, opt.MaxError = c.profile, c.reduce, -1
			out, rep, err := Quantize(context.Background(), m, inputs, opt)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Candidates != 2 || rep.Quantized != 2 || len(rep.Head) != 0 || rep.Opset != 13 || rep.CalibrationFrames != 16 {
				t.Errorf("report: candidates %d quantized %d head %v opset %d frames %d; want 2 2 [] 13 16",
					rep.Candidates, rep.Quantized, rep.Head, rep.Opset, rep.CalibrationFrames)
			}
			for _, l := range rep.Layers {
				if l.Float || l.Damage != -1 {
					t.Errorf("layer %+v: want quantized, damage not measured (-1)", l)
				}
			}
			g := onnx.NewGraph(out)
			var qs []string
			for _, n := range out.GetGraph().GetNode() {
				if n.GetOpType() != "QuantizeLinear" {
					continue
				}
				qs = append(qs, n.GetInput()[0])
				zp := g.Initializer(n.GetInput()[2])
				if zp.GetDataType() != int32(c.zpType) {
					t.Errorf("%s zero point is %s, want %s", n.GetName(), onnxpb.TensorProto_DataType(zp.GetDataType()), c.zpType)
				}
				if c.profile == ProfileTensorRT && zp.GetRawData()[0] != 0 {
					t.Errorf("%s tensorrt zero point %d, want 0", n.GetName(), zp.GetRawData()[0])
				}
			}
			// c1 feeds only the quantized Relu: r1's pair covers both, and
			// ONNX Runtime folds the Relu into r1's QuantizeLinear.
			slices.Sort(qs)
			if !slices.Equal(qs, []string{"r1", "x", "y"}) {
				t.Errorf("QuantizeLinear nodes read %q, want x, r1, y", qs)
			}
			qd := runModel(t, out, x, false)
			e := relErr(qd, fp)
			t.Logf("relative error vs FP32: %.4f", e)
			if e > 0.03 {
				t.Errorf("relative error vs FP32 %.4f > 0.03", e)
			}
			if c.reduce {
				// 7-bit weights: ONNX Runtime's fused integer kernels agree
				// with the literal QDQ arithmetic on any x86 CPU.
				if d := relErr(runModel(t, out, x, true), qd); d > 0.01 {
					t.Errorf("optimised ONNX Runtime differs from the QDQ reference by %.4f > 0.01", d)
				}
			}
			if !proto.Equal(m, convReluConv(rand.New(rand.NewPCG(21, 22)))) {
				t.Error("Quantize modified its input model")
			}
		})
	}
}

// An excluded node stays float on both sides: it reads the graph input
// itself (no DequantizeLinear), keeps its float weights, and its output
// feeds no QuantizeLinear. The next conv is quantized.
func TestQuantizeTinyExclude(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(31, 32)))
	opt := DefaultOptions()
	opt.MaxError, opt.Exclude = -1, []string{"conv1"}
	qtInitORT(t)
	out, rep, err := Quantize(context.Background(), m, randomInputs{n: 8, seed: 4}, opt)
	if err != nil {
		t.Fatal(err)
	}
	g := onnx.NewGraph(out)
	conv1 := qtNodeByName(out, "conv1")
	if !slices.Equal(conv1.GetInput(), []string{"x", "W1", "B1"}) {
		t.Errorf("excluded conv1 reads %v, want [x W1 B1]", conv1.GetInput())
	}
	if g.Initializer("W1").GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		t.Error("excluded conv1's weight is not float")
	}
	for _, c := range g.Consumers(conv1.GetOutput()[0]) {
		if c.GetOpType() == "QuantizeLinear" {
			t.Errorf("excluded conv1's output feeds %s", c.GetName())
		}
	}
	conv2 := qtNodeByName(out, "conv2")
	for i, in := range conv2.GetInput() {
		if producerOp(g, in) != "DequantizeLinear" {
			t.Errorf("conv2 input %d %q is not dequantized", i, in)
		}
	}
	if rep.Quantized != 1 || len(rep.Layers) == 0 || rep.Layers[len(rep.Layers)-1].Node != "conv2" {
		t.Errorf("report: quantized %d, layers %+v; want conv2 quantized", rep.Quantized, rep.Layers)
	}
	x := make([]float32, 3*8*8)
	if err := (randomInputs{n: 1, seed: 100}).Input(context.Background(), 0, x); err != nil {
		t.Fatal(err)
	}
	if e := relErr(runModel(t, out, x, true), runModel(t, m, x, false)); e > 0.05 {
		t.Errorf("relative error vs FP32 %.4f > 0.05", e)
	}
}

// A zero budget keeps every layer float (any quantization has some error):
// each is ranked by its own damage and the final model equals FP32. A huge
// budget quantizes everything without measuring layers.
func TestQuantizeTinySensitivity(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(41, 42)))
	qtInitORT(t)
	opt := DefaultOptions()
	opt.MaxError, opt.SensitivityFrames = 0, 4
	opt.FloatWeights = WeightsFloat32 // int8-stored weights would have some error too
	var search [][2]int
	opt.Progress = func(stage string, done, total int) {
		if stage == "search" {
			search = append(search, [2]int{done, total})
		}
	}
	out, rep, err := Quantize(context.Background(), m, randomInputs{n: 8, seed: 5}, opt)
	if err != nil {
		t.Fatal(err)
	}
	// The search's progress counts bisection steps and ends complete (a
	// progress bar left at 1/2 would say it stopped early).
	if len(search) == 0 || search[len(search)-1][0] != search[len(search)-1][1] {
		t.Errorf("search progress %v, want steps ending at done == total", search)
	}
	if rep.ErrorAll <= 0 || rep.Quantized != 0 || rep.ErrorFinal >= rep.ErrorAll {
		t.Errorf("budget 0: error all %g, quantized %d, final error %g; want > 0, 0, less than all", rep.ErrorAll, rep.Quantized, rep.ErrorFinal)
	}
	for _, l := range rep.Layers {
		if !l.Float || l.Damage <= 0 || !strings.HasPrefix(l.Reason, "sensitivity: rank ") {
			t.Errorf("budget 0: layer %+v, want float with a measured damage and a sensitivity reason", l)
		}
	}
	if fl := rep.FloatLayers(); len(fl) != 2 || fl[0].Damage < fl[1].Damage || !strings.HasPrefix(fl[0].Reason, "sensitivity: rank 1,") {
		t.Errorf("FloatLayers %+v, want both, most damaging (rank 1) first", fl)
	}
	// No activation is quantized; with no weight stored INT8 either the
	// model is FP32's and so is its output.
	for _, n := range out.GetGraph().GetNode() {
		if n.GetOpType() == "QuantizeLinear" {
			t.Errorf("budget 0: %s quantizes %s", n.GetName(), n.GetInput()[0])
		}
	}
	if onnx.QuantOps(out) == nil && rep.ErrorFinal != 0 {
		t.Errorf("budget 0: float model's error %g, want 0", rep.ErrorFinal)
	}

	opt.MaxError, opt.Progress = 1e9, nil
	out, rep, err = Quantize(context.Background(), m, randomInputs{n: 8, seed: 5}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Quantized != 2 || rep.ErrorAll <= 0 || math.Abs(rep.ErrorFinal-rep.ErrorAll) > 1e-6*rep.ErrorAll {
		t.Errorf("huge budget: quantized %d, error all %g, final %g; want 2, > 0, the same", rep.Quantized, rep.ErrorAll, rep.ErrorFinal)
	}
	for _, l := range rep.Layers {
		if l.Float || l.Damage != -1 {
			t.Errorf("huge budget: layer %+v, want quantized and not measured", l)
		}
	}
	if onnx.QuantOps(out) == nil {
		t.Error("huge budget: model is not quantized")
	}
}

func TestCloseFloatIslands(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, c := range []struct {
		name    string
		model   *onnxpb.ModelProto
		q       map[string]bool
		changed []string
		after   map[string]bool
	}{
		{
			"float conv between quantized convs",
			convChain(rng, 3),
			map[string]bool{"conv0": true, "conv1": false, "conv2": true},
			[]string{"conv2"},
			map[string]bool{"conv0": true, "conv1": false, "conv2": false},
		},
		{
			"only the consumer of the island",
			convChain(rng, 4),
			map[string]bool{"conv0": true, "conv1": false, "conv2": true, "conv3": true},
			[]string{"conv2"},
			map[string]bool{"conv0": true, "conv1": false, "conv2": false, "conv3": true},
		},
		{
			"two islands",
			convChain(rng, 6),
			map[string]bool{"conv0": true, "conv1": false, "conv2": true, "conv3": true, "conv4": false, "conv5": true},
			[]string{"conv2", "conv5"},
			map[string]bool{"conv0": true, "conv1": false, "conv2": false, "conv3": true, "conv4": false, "conv5": false},
		},
		{
			// conv2 turned float does not make conv3 → conv4 an island: conv3's producer is float.
			"no cascade",
			convChain(rng, 5),
			map[string]bool{"conv0": true, "conv1": false, "conv2": true, "conv3": false, "conv4": true},
			[]string{"conv2"},
			map[string]bool{"conv0": true, "conv1": false, "conv2": false, "conv3": false, "conv4": true},
		},
		{
			"float producer: no island",
			convChain(rng, 3),
			map[string]bool{"conv0": false, "conv1": true, "conv2": true},
			nil,
			map[string]bool{"conv0": false, "conv1": true, "conv2": true},
		},
		{
			"float conv reads a Relu, not a quantized conv",
			convReluConv(rng),
			map[string]bool{"conv1": true, "conv2": false},
			nil,
			map[string]bool{"conv1": true, "conv2": false},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := analyseOK(t, c.model)
			got := p.closeFloatIslands(c.q)
			if !slices.Equal(got, c.changed) {
				t.Errorf("changed %v, want %v", got, c.changed)
			}
			for n, want := range c.after {
				if c.q[n] != want {
					t.Errorf("q[%s] = %v, want %v", n, c.q[n], want)
				}
			}
		})
	}

	// Branching: a float conv feeding two quantized convs un-quantizes both.
	rng2 := rand.New(rand.NewPCG(53, 54))
	m := convChain(rng2, 3)
	gp := m.GetGraph()
	gp.Initializer = append(gp.Initializer, onnx.Float32Tensor("Wb", []int64{2, 2, 1, 1}, convWeights(rng2, 2, 2, 1)))
	gp.Node = append(gp.Node, qtNode("branch", "Conv", []string{"t1", "Wb"}, []string{"z"}))
	gp.Output = append(gp.Output, qtValueInfo("z", 1, 2, 4, 4))
	p := analyseOK(t, m)
	q := map[string]bool{"conv0": true, "conv1": false, "conv2": true, "branch": true}
	got := p.closeFloatIslands(q)
	slices.Sort(got)
	if !slices.Equal(got, []string{"branch", "conv2"}) || q["branch"] || q["conv2"] {
		t.Errorf("branching island: changed %v, q %v; want branch and conv2 float", got, q)
	}
}

// analyse: the head (nodes after the last compute op), candidates and
// element-wise nodes of a Conv → Sigmoid → Mul (SiLU) → Conv → Sigmoid graph.
func TestAnalyse(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("conv1", "Conv", []string{"x", "W1"}, []string{"c1"}),
		qtNode("sig1", "Sigmoid", []string{"c1"}, []string{"s1"}),
		qtNode("silu", "Mul", []string{"c1", "s1"}, []string{"a1"}),
		qtNode("conv2", "Conv", []string{"a1", "W2"}, []string{"c2"}),
		qtNode("sig2", "Sigmoid", []string{"c2"}, []string{"y"}),
	}, []*onnxpb.TensorProto{
		onnx.Float32Tensor("W1", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)),
		onnx.Float32Tensor("W2", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)),
	}, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
	p := analyseOK(t, m)
	if got := nodeNames(p.candidates); !slices.Equal(got, []string{"conv1", "conv2"}) {
		t.Errorf("candidates %v, want [conv1 conv2]", got)
	}
	if got := nodeNames(p.elementwise); !slices.Equal(got, []string{"sig1", "silu"}) {
		t.Errorf("element-wise %v, want [sig1 silu] (sig2 is in the head)", got)
	}
	if len(p.head) != 1 || !p.head["sig2"] {
		t.Errorf("head %v, want [sig2]", p.head)
	}
	if got := p.tensorsToCalibrate(); !slices.Equal(got, []string{"x", "c1", "a1", "c2", "s1"}) {
		t.Errorf("tensors to calibrate %v, want [x c1 a1 c2 s1]", got)
	}
	p = analyseOK(t, m, "Sigmoid", "conv2")
	if got := nodeNames(p.candidates); !slices.Equal(got, []string{"conv1", "conv2"}) || !p.excluded["conv2"] || p.excluded["conv1"] {
		t.Errorf("candidates excluding conv2 %v (excluded %v), want [conv1 conv2] with conv2 excluded", got, p.excluded)
	}
	if got := nodeNames(p.elementwise); !slices.Equal(got, []string{"silu"}) {
		t.Errorf("element-wise excluding Sigmoid %v, want [silu]", got)
	}
}

// Quantize reports a layer it turns float to close an island with the
// island reason, not as "excluded": here the user excludes conv1 of
// conv0 → conv1 → conv2, so conv2 (reading the float conv1, which reads
// INT8) must stay float.
func TestQuantizeIslandReason(t *testing.T) {
	m := convChain(rand.New(rand.NewPCG(71, 72)), 3)
	opt := DefaultOptions()
	opt.MaxError, opt.Exclude = -1, []string{"conv1"}
	qtInitORT(t)
	out, rep, err := Quantize(context.Background(), m, randomInputs{n: 4, seed: 6}, opt)
	if err != nil {
		t.Fatal(err)
	}
	g := onnx.NewGraph(out)
	conv2 := qtNodeByName(out, "conv2")
	if op := producerOp(g, conv2.GetInput()[0]); op == "DequantizeLinear" {
		t.Errorf("conv2 reads a dequantized input")
	}
	// Its weights are stored int8 but restored to float (Cast, Mul).
	if op := producerOp(g, conv2.GetInput()[1]); op != "Mul" {
		t.Errorf("conv2 reads weight %q from %q, want the float weight restored by Mul", conv2.GetInput()[1], op)
	}
	for _, l := range rep.Layers {
		if l.Node == "conv2" && (!l.Float || !strings.HasPrefix(l.Reason, "kept float: it reads a float layer")) {
			t.Errorf("conv2 reported %+v, want float with the island reason", l)
		}
	}
}

// A layer the user excludes is a quantizable layer kept float: the report
// (and so the CLI's float_layers metadata) lists it with reason "excluded".
func TestQuantizeExcludedLayerReported(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(31, 32)))
	opt := DefaultOptions()
	opt.MaxError, opt.Exclude = -1, []string{"conv1"}
	qtInitORT(t)
	_, rep, err := Quantize(context.Background(), m, randomInputs{n: 4, seed: 4}, opt)
	if err != nil {
		t.Fatal(err)
	}
	fl := rep.FloatLayers()
	if rep.Candidates != 2 || len(fl) != 1 || fl[0].Node != "conv1" || !strings.HasPrefix(fl[0].Reason, "excluded") {
		t.Errorf("candidates %d, float layers %+v; want 2 candidates and conv1 float, reason \"excluded\"", rep.Candidates, fl)
	}
}
