package quant

import (
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// fuzzSeedModels are tiny float models (no model files in the repository):
// Conv-Relu-Conv, a Conv chain, the same with a huge names id in its
// metadata, and one whose weight claims 2^40 elements it does not hold.
func fuzzSeedModels(f *testing.F) [][]byte {
	f.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	huge := convReluConv(rng)
	onnx.SetMetadata(huge, "names", "{4611686018427387903: 'x'}")
	onnx.SetMetadata(huge, "imgsz", "[8, 8]")
	claims := convChain(rng, 2)
	claims.GetGraph().GetInitializer()[0].Dims = []int64{1 << 20, 1 << 20, 1, 1}
	gemm := qtModel([]*onnxpb.NodeProto{
		qtNode("gemm", "Gemm", []string{"x", "W", "B"}, []string{"y"}),
	}, []*onnxpb.TensorProto{
		onnx.Float32Tensor("W", []int64{4, 3}, randFloats(rng, 12, -1, 1)),
		onnx.Float32Vector("B", randFloats(rng, 3, -1, 1)),
	}, qtValueInfo("x", 1, 4), qtValueInfo("y", 1, 3))
	var out [][]byte
	for _, m := range []*onnxpb.ModelProto{convReluConv(rng), convChain(rng, 3), huge, claims, gemm} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	// A model that is only a header with a length prefix far beyond the
	// input (protobuf must not trust it).
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 8)
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendVarint(b, 1<<40)
	return append(out, b)
}

// FuzzQuantizeOffline runs everything quantize does to a model before and
// after calibration that needs no ONNX Runtime — decode, metadata, quant-op
// detection, BatchNorm folding, opset upgrade, analysis, and building the
// QDQ model with made-up ranges (all layers quantized, or half of them kept
// float with int8 or fp16 weight storage) — on fuzzed model bytes. Any
// input must give an error or a model that encodes, decodes and is
// recognised as quantised when a layer was.
func FuzzQuantizeOffline(f *testing.F) {
	for _, m := range fuzzSeedModels(f) {
		f.Add(m, uint8(0))
		f.Add(m, uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		m, err := onnx.DecodeModel(data)
		if err != nil {
			return
		}
		_ = onnx.Metadata(m)
		if len(onnx.QuantOps(m)) > 0 {
			return // quantize refuses these
		}
		if _, err := onnx.FoldBatchNorm(m); err != nil {
			return
		}
		if _, err := onnx.UpgradeOpset(m); err != nil {
			return
		}
		nameNodes(m)
		_, _, _ = modelInput(m, []int64{1, 3, 8, 8})
		p, err := analyse(m, nil)
		if err != nil || len(p.candidates) == 0 {
			return
		}
		ranges := map[string][2]float32{}
		for _, tn := range p.tensorsToCalibrate() {
			ranges[tn] = [2]float32{-1, 1}
		}
		q := map[string]bool{}
		for i, n := range p.candidates {
			q[n.GetName()] = mode&1 == 0 || i%2 == 0
		}
		p.closeFloatIslands(q)
		storage := []WeightStorage{WeightsFloat32, WeightsInt8, WeightsFloat16}[int(mode>>1)%3]
		plan := &Plan{Quantize: q, Ranges: ranges, Profile: ProfileCPU, PerChannel: mode&8 == 0, ReduceRange: mode&16 != 0,
			FloatWeights: p.floatWeights(q, storage)}
		out, err := p.buildQDQ(plan)
		if err != nil {
			return
		}
		b, err := proto.Marshal(out)
		if err != nil {
			t.Fatalf("quantized model does not encode: %v", err)
		}
		again, err := onnx.DecodeModel(b)
		if err != nil {
			t.Fatalf("quantized model does not decode: %v", err)
		}
		anyQ := false
		for _, v := range q {
			anyQ = anyQ || v
		}
		if anyQ && len(onnx.QuantOps(again)) == 0 {
			t.Fatalf("layers %v quantized but the model has no quantization op", q)
		}
	})
}

// TestAnalyseRejectsMalformedNodes: a Conv without outputs (found by
// FuzzQuantizeOffline) made analyse index past the end; it must be an error
// naming the node.
func TestAnalyseRejectsMalformedNodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, edit := range []func(n *onnxpb.NodeProto){
		func(n *onnxpb.NodeProto) { n.Output = nil },
		func(n *onnxpb.NodeProto) { n.Input = n.Input[:1] },
	} {
		m := convReluConv(rng)
		edit(m.GetGraph().GetNode()[0])
		if _, err := analyse(m, nil); err == nil || !strings.Contains(err.Error(), `node "conv1": Conv with`) {
			t.Errorf("want an error naming conv1, got %v", err)
		}
	}
}

// TestModelInputBounded: a model declaring a 100000x100000 input must not
// make calibration allocate a 120 GB input tensor.
func TestModelInputBounded(t *testing.T) {
	m := qtModel(nil, nil, qtValueInfo("x", 1, 3, 100000, 100000), qtValueInfo("y", 1))
	if _, _, err := modelInput(m, nil); err == nil || !strings.Contains(err.Error(), "[1 3 100000 100000]") {
		t.Fatalf("want an error naming the shape, got %v", err)
	}
	m = qtModel(nil, nil, qtValueInfo("x", 1, 3, -1, -1), qtValueInfo("y", 1))
	if _, _, err := modelInput(m, []int64{1, 3, 1 << 40, 1 << 40}); err == nil {
		t.Fatal("an overflowing override was accepted")
	}
	if _, shape, err := modelInput(m, []int64{1, 3, 4096, 4096}); err != nil || shape[3] != 4096 {
		t.Fatalf("3x4096x4096: %v, %v", shape, err)
	}
}

func TestHoldsFloats(t *testing.T) {
	ok := onnx.Float32Tensor("w", []int64{2, 2}, []float32{1, 2, 3, 4})
	claims := onnx.Float32Tensor("w", []int64{2, 2}, []float32{1, 2, 3, 4})
	claims.Dims = []int64{1 << 40, 2}
	listed := &onnxpb.TensorProto{DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{3}, FloatData: []float32{1, 2, 3}}
	short := &onnxpb.TensorProto{DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{4}, FloatData: []float32{1, 2, 3}}
	external := onnx.Float32Tensor("w", []int64{1}, []float32{1})
	external.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	for _, tc := range []struct {
		name string
		t    *onnxpb.TensorProto
		want bool
	}{{"raw", ok, true}, {"float_data", listed, true}, {"claims 2^41", claims, false}, {"short float_data", short, false},
		{"external", external, false}, {"int8", onnx.Int8Vector("q", []int8{1}), false}, {"nil", nil, false}} {
		if got := onnx.HoldsFloats(tc.t); got != tc.want {
			t.Errorf("%s: onnx.HoldsFloats = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLoadModelNotRegularFile(t *testing.T) {
	if _, err := onnx.LoadModel("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("want a not-a-regular-file error, got %v", err)
	}
}
