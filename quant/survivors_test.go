package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Tests written against mutants that survived `make mutate PKG=quant`.

// TestActivationParamsSymmetricRange: a range centred on 0 (lo = -hi) is
// not the empty range: its scale spans it, its zero point sits mid-type.
func TestActivationParamsSymmetricRange(t *testing.T) {
	for _, c := range []struct {
		p      Profile
		zp     []int32 // round(±x.5) may land either side in float32
		dtype  onnxpb.TensorProto_DataType
		lo, hi float32
	}{
		{ProfileCPU, []int32{127, 128}, onnxpb.TensorProto_UINT8, -1, 1},
		{ProfileARM, []int32{-1, 0}, onnxpb.TensorProto_INT8, -1, 1},
		{ProfileCPU, []int32{127, 128}, onnxpb.TensorProto_UINT8, -4, 4},
		{ProfileARM, []int32{-1, 0}, onnxpb.TensorProto_INT8, -4, 4},
	} {
		q := activationParams(c.lo, c.hi, c.p)
		want := (c.hi - c.lo) / 255
		if math.Abs(float64(q.scale-want)) > 1e-7 || !slices.Contains(c.zp, q.zp) || q.dtype != c.dtype {
			t.Errorf("%s [%g, %g]: scale %g zp %d %s; want scale %g zp in %v %s", c.p, c.lo, c.hi, q.scale, q.zp, q.dtype, want, c.zp, c.dtype)
		}
	}
}

// TestAnalyseConv1D: a 1-D Conv (weight [M, C, k]) is quantizable; a
// "Conv" whose weight has fewer than three axes is not.
func TestAnalyseConv1D(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("conv1d", "Conv", []string{"x", "W1"}, []string{"c1"}),
		qtNode("conv2d", "Conv", []string{"c1", "W2"}, []string{"y"}),
	}, []*onnxpb.TensorProto{
		onnx.Float32Tensor("W1", []int64{2, 2, 1}, convWeights(rng, 2, 2, 1)),
		onnx.Float32Tensor("W2", []int64{2, 2}, convWeights(rng, 2, 2, 1)),
	}, qtValueInfo("x", 1, 2, 4), qtValueInfo("y", 1, 2, 4))
	if got := nodeNames(analyseOK(t, m).candidates); !slices.Equal(got, []string{"conv1d"}) {
		t.Errorf("candidates %v, want [conv1d]", got)
	}
}

// TestAnalyseUntypedActivation: a Conv whose input's element type is
// unknown is left float, even though its output is typed float from the
// weight.
func TestAnalyseUntypedActivation(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(73, 74)))
	m.Graph.Input[0].Type = nil
	if got := nodeNames(analyseOK(t, m).candidates); !slices.Equal(got, []string{"conv2"}) {
		t.Errorf("candidates %v, want [conv2] (conv1 reads the untyped x)", got)
	}
}

// TestBuildQDQBadBias: a bias that does not have one value per output
// channel fails the build, naming the node and the bias.
func TestBuildQDQBadBias(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(75, 76)))
	for _, in := range m.Graph.Initializer {
		if in.GetName() == "B1" {
			onnx.SetTensorFloats(in, []float32{0.1, 0.2, 0.3})
			in.Dims = []int64{3}
		}
	}
	p := analyseOK(t, m)
	_, err := p.buildQDQ(&Plan{
		Quantize: map[string]bool{"conv1": true, "conv2": true},
		Ranges:   map[string][2]float32{"x": {-1, 1}, "c1": {-1, 1}, "r1": {0, 1}, "y": {-1, 1}},
		Profile:  ProfileCPU, PerChannel: true,
	})
	if err == nil || !strings.Contains(err.Error(), `node "conv1"`) || !strings.Contains(err.Error(), `bias "B1" has 3 values for 4 output channels`) {
		t.Errorf("err %v, want the bad bias of conv1 named", err)
	}
}

// TestBuildQDQUnreadableBias: a bias whose raw data does not match its
// dims fails the build with the tensor's own error.
func TestBuildQDQUnreadableBias(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(77, 78)))
	for _, in := range m.Graph.Initializer {
		if in.GetName() == "B1" {
			in.RawData = make([]byte, 12) // 3 floats for dims [4]
			in.FloatData = nil
		}
	}
	p := analyseOK(t, m)
	_, err := p.buildQDQ(&Plan{
		Quantize: map[string]bool{"conv1": true, "conv2": true},
		Ranges:   map[string][2]float32{"x": {-1, 1}, "c1": {-1, 1}, "r1": {0, 1}, "y": {-1, 1}},
		Profile:  ProfileCPU, PerChannel: true,
	})
	if err == nil || !strings.Contains(err.Error(), `node "conv1"`) || !strings.Contains(err.Error(), `tensor "B1" (data_type FLOAT)`) {
		t.Errorf("err %v, want conv1's unreadable bias B1 named", err)
	}
}

// TestQuantizeFoldError: a BatchNormalization whose parameters cannot be
// read stops Quantize at folding, saying so.
func TestQuantizeFoldError(t *testing.T) {
	rng := rand.New(rand.NewPCG(79, 80))
	m := convReluConv(rng)
	bn := qtNode("bn", "BatchNormalization", []string{"c1", "g", "b", "mu", "var"}, []string{"c1bn"})
	m.Graph.Node = slices.Insert(m.Graph.Node, 1, bn)
	qtNodeByName(m, "relu").Input[0] = "c1bn"
	for _, name := range []string{"g", "b", "mu", "var"} {
		m.Graph.Initializer = append(m.Graph.Initializer, onnx.Float32Vector(name, []float32{1, 1, 1, 1}))
	}
	m.Graph.Initializer[len(m.Graph.Initializer)-1].RawData = make([]byte, 15)
	qtInitORT(t)
	opt := DefaultOptions()
	opt.MaxError = -1
	_, _, err := Quantize(context.Background(), m, randomInputs{n: 2, seed: 1}, opt)
	if err == nil || !strings.Contains(err.Error(), "fold batch normalization") {
		t.Errorf("err %v, want a folding error", err)
	}
}

// TestQuantizeCalibrationModelError: a model ONNX Runtime cannot load
// fails at building the calibration model, before any input is read.
func TestQuantizeCalibrationModelError(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(81, 82)))
	conv2 := qtNodeByName(m, "conv2")
	conv2.Output[0] = "c2"
	m.Graph.Node = append(m.Graph.Node, qtNode("odd", "NoSuchOperator", []string{"c2"}, []string{"y"}))
	qtInitORT(t)
	opt := DefaultOptions()
	opt.MaxError = -1
	_, _, err := Quantize(context.Background(), m, randomInputs{n: 2, seed: 1}, opt)
	if err == nil || !strings.Contains(err.Error(), "calibration model") {
		t.Errorf("err %v, want the calibration model refused", err)
	}
}

// meanInputs are calibration inputs whose channel c is the constant
// means[c] everywhere.
type meanInputs struct {
	n     int
	means []float32
}

func (r meanInputs) Len() int { return r.n }

func (r meanInputs) Input(_ context.Context, _ int, dst []float32) error {
	plane := len(dst) / len(r.means)
	for i := range dst {
		dst[i] = r.means[i/plane]
	}
	return nil
}

// TestQuantizeBiasCorrectionUsesConvInputMeans: Quantize measures the
// channel means of every Conv's input during calibration and hands them to
// int8 weight storage, so a layer kept float with int8 weights is exact
// (inside the padded border) on an input at those means.
func TestQuantizeBiasCorrectionUsesConvInputMeans(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(83, 84)))
	means := []float32{3, -2, 5}
	in := meanInputs{n: 2, means: means}
	qtInitORT(t)
	opt := DefaultOptions()
	opt.MaxError, opt.FloatWeights, opt.SensitivityFrames = 0, WeightsInt8, 2 // everything float, int8 weights
	out, _, err := Quantize(context.Background(), m, in, opt)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*8*8)
	if err := in.Input(context.Background(), 0, x); err != nil {
		t.Fatal(err)
	}
	conv1 := func(mm *onnxpb.ModelProto) []float32 {
		c := proto.Clone(mm).(*onnxpb.ModelProto)
		c.Graph.Output = []*onnxpb.ValueInfoProto{qtValueInfo("c1", 1, 4, 8, 8)}
		v := runModel(t, c, x, false)
		var interior []float32
		for ch := range 4 {
			for y := 1; y < 7; y++ {
				interior = append(interior, v[ch*64+y*8+1:ch*64+y*8+7]...)
			}
		}
		return interior
	}
	if e := relErr(conv1(out), conv1(m)); e > 1e-5 {
		t.Errorf("conv1 with corrected int8 weights: relative error %.2e on its mean input, want ≤ 1e-5", e)
	}
}
