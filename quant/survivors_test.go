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

// TestQuantizeProgress: each stage reports every step once, in order, out
// of its total; an excluded layer still counts in the sensitivity stage.
func TestQuantizeProgress(t *testing.T) {
	m := convChain(rand.New(rand.NewPCG(85, 86)), 3)
	qtInitORT(t)
	opt := DefaultOptions()
	opt.MaxError, opt.SensitivityFrames, opt.Exclude = 0, 2, []string{"conv1"}
	steps := map[string][]int{}
	totals := map[string]int{}
	opt.Progress = func(stage string, done, total int) {
		steps[stage] = append(steps[stage], done)
		totals[stage] = total
	}
	if _, _, err := Quantize(context.Background(), m, randomInputs{n: 3, seed: 2}, opt); err != nil {
		t.Fatal(err)
	}
	for stage, total := range map[string]int{"calibrate": 3, "sensitivity": 3} {
		want := []int{}
		for i := 1; i <= total; i++ {
			want = append(want, i)
		}
		if !slices.Equal(steps[stage], want) || totals[stage] != total {
			t.Errorf("%s: steps %v of %d, want %v of %d", stage, steps[stage], totals[stage], want, total)
		}
	}
}

// TestModelInputSizeBound: the calibration input may hold one 3×4096×4096
// image and not a value more.
func TestModelInputSizeBound(t *testing.T) {
	for _, c := range []struct {
		w  int64
		ok bool
	}{{4096, true}, {4097, false}} {
		m := qtModel(nil, nil, qtValueInfo("x", 1, 3, 4096, c.w), qtValueInfo("y", 1))
		_, _, err := modelInput(m, nil)
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), "more than")) {
			t.Errorf("input 1x3x4096x%d: err %v, want ok %t", c.w, err, c.ok)
		}
	}
}

// TestGuessLayout: an output of two non-trivial axes is rows × features,
// the features being the smaller axis (first when channel-major); any
// other output is one feature per value. Axes of 2 count.
func TestGuessLayout(t *testing.T) {
	for _, c := range []struct {
		dims []int64
		n    int
		want outLayout
	}{
		{[]int64{1, 2, 50}, 100, outLayout{feat: 2, rows: 50, channelMajor: true}},
		{[]int64{1, 50, 2}, 100, outLayout{feat: 2, rows: 50}},
		{[]int64{1, 3549, 85}, 3549 * 85, outLayout{feat: 85, rows: 3549}},
		{[]int64{1, 84, 2100}, 84 * 2100, outLayout{feat: 84, rows: 2100, channelMajor: true}},
		{[]int64{1, 4, 4}, 16, outLayout{feat: 4, rows: 4}},
		{[]int64{1, 2, 8, 8}, 128, outLayout{feat: 1, rows: 128}},
		{[]int64{1, 2, 50}, 99, outLayout{feat: 1, rows: 99}},
	} {
		m := qtModel(nil, nil, qtValueInfo("x", 1, 3, 8, 8), qtValueInfo("y", c.dims...))
		p := &prepared{g: onnx.NewGraph(m)}
		if got := guessLayout(c.n, p, "y"); got != c.want {
			t.Errorf("%v (%d values): %+v, want %+v", c.dims, c.n, got, c.want)
		}
	}
}

// TestErrorOfModelRefused: a candidate model ONNX Runtime refuses is an
// error of the sensitivity measure, not a crash.
func TestErrorOfModelRefused(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(87, 88)))
	qtInitORT(t)
	p := analyseOK(t, m)
	opt := DefaultOptions()
	opt.SensitivityFrames = 1
	s, err := newSensitivity(context.Background(), p, "x", []int64{1, 3, 8, 8}, randomInputs{n: 1, seed: 3}, opt)
	if err != nil {
		t.Fatal(err)
	}
	bad := proto.Clone(m).(*onnxpb.ModelProto)
	bad.Graph.Node[1].OpType = proto.String("NoSuchOperator")
	if e, err := s.errorOfModel(context.Background(), bad); err == nil {
		t.Errorf("refused model: error %g, nil err", e)
	}
	if e, err := s.errorOfModel(context.Background(), m); err != nil || e != 0 {
		t.Errorf("FP32 model itself: error %g, %v; want 0", e, err)
	}
}

// TestErrorOfModelConstantOutput: an output that does not vary over the
// frames has no error to normalise: the measure is 0, not NaN.
func TestErrorOfModelConstantOutput(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(89, 90)))
	for _, in := range m.Graph.Initializer {
		switch in.GetName() {
		case "W2":
			onnx.SetTensorFloats(in, make([]float32, 2*4))
		case "B2": // the same value in both channels: the output is one constant
			onnx.SetTensorFloats(in, []float32{0.25, 0.25})
		}
	}
	qtInitORT(t)
	opt := DefaultOptions()
	opt.SensitivityFrames = 2
	s, err := newSensitivity(context.Background(), analyseOK(t, m), "x", []int64{1, 3, 8, 8}, randomInputs{n: 2, seed: 4}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := s.errorOfModel(context.Background(), m); err != nil || e != 0 {
		t.Errorf("constant output: error %g, %v; want 0, nil", e, err)
	}
}

// TestTensorStatsCountsZeros: all-zero batches (a dead ReLU) count their
// values like any other.
func TestTensorStatsCountsZeros(t *testing.T) {
	s := NewTensorStats()
	for _, batch := range [][]float32{{0, 0, 0}, {}, {0}, {1, -1}, {0, 0}} {
		if err := s.Add(batch); err != nil {
			t.Fatal(err)
		}
	}
	if s.Count != 8 || s.Min != -1 || s.Max != 1 {
		t.Errorf("count %d, range [%g, %g]; want 8, [-1, 1]", s.Count, s.Min, s.Max)
	}
}

// TestTensorStatsCoversPeak: the bins cover [0, width·histBins), open at
// the top, so a value landing exactly on the top edge grows the range.
// 10000 sets width = 10000/histBins·1.0001, which makes the edge exactly
// 10001 in float64.
func TestTensorStatsCoversPeak(t *testing.T) {
	s := NewTensorStats()
	if err := s.Add([]float32{10000}); err != nil {
		t.Fatal(err)
	}
	if edge := s.width * histBins; edge != 10001 {
		t.Fatalf("top edge %v, want exactly 10001 for this test", edge)
	}
	for _, v := range []float32{10001, -10001, 30000} {
		if err := s.Add([]float32{v}); err != nil {
			t.Fatal(err)
		}
		if top := s.width * histBins; float64(max(v, -v)) >= top {
			t.Errorf("after adding %g the bins end at %g: the value is not covered", v, top)
		}
	}
}
