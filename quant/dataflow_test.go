package quant

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// shuffleBlock builds, with random weights, a ShuffleNet-style block: a
// Conv+Relu, a channel shuffle (Reshape, Transpose, Reshape) and a Split
// into two Convs whose outputs are concatenated:
//
//	x[1,4,4,4] ─conv1─c1─relu─r1─reshape─s1[1,2,2,4,4]─transpose─s2─reshape─s3[1,4,4,4]
//	  ─split─(a, b)─conv2/conv3─(ya, yb)─concat─y[1,4,4,4]
//
// secondReader adds a second reader of c1 (a Sigmoid to a second graph
// output).
func shuffleBlock(rng *rand.Rand, secondReader bool) *onnxpb.ModelProto {
	int64s := func(name string, v ...int64) *onnxpb.TensorProto {
		raw := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
		}
		return onnx.NewInitializer(name, onnxpb.TensorProto_INT64, []int64{int64(len(v))}, raw)
	}
	inits := []*onnxpb.TensorProto{
		onnx.Float32Tensor("W1", []int64{4, 4, 1, 1}, convWeights(rng, 4, 4, 1)),
		onnx.Float32Vector("B1", randFloats(rng, 4, -0.5, 0.5)),
		onnx.Float32Tensor("W2", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)),
		onnx.Float32Vector("B2", randFloats(rng, 2, -0.5, 0.5)),
		onnx.Float32Tensor("W3", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1)),
		onnx.Float32Vector("B3", randFloats(rng, 2, -0.5, 0.5)),
		int64s("shape5", 1, 2, 2, 4, 4),
		int64s("shape4", 1, 4, 4, 4),
		int64s("halves", 2, 2),
	}
	perm := &onnxpb.AttributeProto{Name: proto.String("perm"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{0, 2, 1, 3, 4}}
	nodes := []*onnxpb.NodeProto{
		qtNode("conv1", "Conv", []string{"x", "W1", "B1"}, []string{"c1"}),
		qtNode("relu", "Relu", []string{"c1"}, []string{"r1"}),
		qtNode("reshape1", "Reshape", []string{"r1", "shape5"}, []string{"s1"}),
		qtNode("transpose", "Transpose", []string{"s1"}, []string{"s2"}, perm),
		qtNode("reshape2", "Reshape", []string{"s2", "shape4"}, []string{"s3"}),
		qtNode("split", "Split", []string{"s3", "halves"}, []string{"a", "b"}, onnx.IntAttr("axis", 1)),
		qtNode("conv2", "Conv", []string{"a", "W2", "B2"}, []string{"ya"}),
		qtNode("conv3", "Conv", []string{"b", "W3", "B3"}, []string{"yb"}),
		qtNode("concat", "Concat", []string{"ya", "yb"}, []string{"y"}, onnx.IntAttr("axis", 1)),
	}
	m := qtModel(nodes, inits, qtValueInfo("x", 1, 4, 4, 4), qtValueInfo("y", 1, 4, 4, 4))
	if secondReader {
		g := m.GetGraph()
		g.Node = append(g.Node, qtNode("tap", "Sigmoid", []string{"c1"}, []string{"z"}))
		g.Output = append(g.Output, qtValueInfo("z", 1, 4, 4, 4))
	}
	return m
}

// quantizeAllINT8 quantizes m with the default options, every layer INT8.
func quantizeAllINT8(t *testing.T, m *onnxpb.ModelProto) *onnxpb.ModelProto {
	t.Helper()
	qtInitORT(t)
	opt := DefaultOptions()
	opt.EntryFloat, opt.MaxError = false, -1
	out, _, err := Quantize(context.Background(), m, randomInputs{n: 16, seed: 5}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// quantParams maps every tensor a QuantizeLinear reads to its scale and
// zero point.
func quantParams(t *testing.T, m *onnxpb.ModelProto) map[string][2]float32 {
	t.Helper()
	g := onnx.NewGraph(m)
	qp := map[string][2]float32{}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() != "QuantizeLinear" {
			continue
		}
		scale := qtFloats(t, g, n.GetInput()[1])[0]
		zp := float32(qtUint8s(t, g, n.GetInput()[2])[0])
		qp[n.GetInput()[0]] = [2]float32{scale, zp}
	}
	return qp
}

// TestQuantizeDataMovementSharesParams: Reshape, Transpose and Split
// between two quantized convolutions run on the INT8 tensor (their outputs
// quantized with their input's scale and zero point, which is what ONNX
// Runtime needs to drop the Q/DQ pairs around them), and a Conv followed by
// a Relu gets one pair, after the Relu. The QDQ model stays close to FP32
// in ONNX Runtime, optimised or not.
func TestQuantizeDataMovementSharesParams(t *testing.T) {
	m := shuffleBlock(rand.New(rand.NewPCG(41, 42)), false)
	out := quantizeAllINT8(t, m)
	qp := quantParams(t, out)
	for _, tensor := range []string{"r1", "s1", "s2", "s3", "a", "b", "x"} {
		if _, ok := qp[tensor]; !ok {
			t.Errorf("no QuantizeLinear on %s (quantized: %v)", tensor, qp)
		}
	}
	if _, ok := qp["c1"]; ok {
		t.Errorf("c1 feeds only the quantized Relu, yet has a QuantizeLinear of its own")
	}
	for _, tensor := range []string{"s1", "s2", "s3", "a", "b"} {
		if qp[tensor] != qp["r1"] {
			t.Errorf("%s quantized with (scale, zp) %v, want r1's %v", tensor, qp[tensor], qp["r1"])
		}
	}
	if qp["r1"][1] != 0 {
		t.Errorf("r1 (after a Relu) has zero point %v, want 0 so ONNX Runtime can fold the Relu", qp["r1"][1])
	}
	x := make([]float32, 4*4*4)
	if err := (randomInputs{n: 1, seed: 77}).Input(context.Background(), 0, x); err != nil {
		t.Fatal(err)
	}
	fp := runModel(t, m, x, false)
	for _, optimise := range []bool{false, true} {
		if e := relErr(runModel(t, out, x, optimise), fp); e > 0.05 {
			t.Errorf("optimised %v: relative error vs FP32 %.4f > 0.05", optimise, e)
		}
	}
}

// TestQuantizeReluNotFusedWithSecondReader: a Conv output that something
// other than the Relu also reads keeps its own Q/DQ pair.
func TestQuantizeReluNotFusedWithSecondReader(t *testing.T) {
	out := quantizeAllINT8(t, shuffleBlock(rand.New(rand.NewPCG(43, 44)), true))
	qp := quantParams(t, out)
	if _, ok := qp["c1"]; !ok {
		t.Errorf("c1 is also read by a Sigmoid, yet has no QuantizeLinear (quantized: %v)", qp)
	}
	if _, ok := qp["r1"]; !ok {
		t.Errorf("no QuantizeLinear on r1")
	}
}
