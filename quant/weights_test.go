package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Layers kept float store their weights as int8 (Cast, Mul by per-channel
// scales) or float16 (Cast); both run in ONNX Runtime, stay close to the
// float weights, and ONNX Runtime folds them back into float initializers
// when it loads the model (nothing of them is left to run per inference).
func TestFloatWeightStorage(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(21, 22)))
	orig := proto.Clone(m).(*onnxpb.ModelProto)
	og := onnx.NewGraph(orig)
	p := analyseOK(t, m)
	x := make([]float32, 3*8*8)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range x {
		x[i] = 2*rng.Float32() - 1
	}
	want := runModel(t, orig, x, false)

	for _, c := range []struct {
		storage WeightStorage
		maxErr  float64
	}{{WeightsInt8, 0.02}, {WeightsFloat16, 1e-3}, {WeightsFloat32, 0}} {
		t.Run(string(c.storage), func(t *testing.T) {
			plan := &Plan{Quantize: map[string]bool{}, Profile: ProfileCPU, PerChannel: true,
				FloatWeights: map[string]WeightStorage{"conv1": c.storage, "conv2": c.storage}}
			out, err := p.buildQDQ(plan)
			if err != nil {
				t.Fatal(err)
			}
			g := onnx.NewGraph(out)
			for _, conv := range []string{"conv1", "conv2"} {
				n := qtNodeByName(out, conv)
				w := qtFloats(t, og, qtNodeByName(orig, conv).GetInput()[1])
				dims := og.Initializer(qtNodeByName(orig, conv).GetInput()[1]).GetDims()
				switch c.storage {
				case WeightsFloat32:
					if got := n.GetInput()[1]; got != qtNodeByName(orig, conv).GetInput()[1] {
						t.Errorf("%s weight %q, want the original initializer", conv, got)
					}
				case WeightsFloat16:
					cast := g.Producer(n.GetInput()[1])
					if cast == nil || cast.GetOpType() != "Cast" || nodeAttr(cast, "to").GetI() != int64(onnxpb.TensorProto_FLOAT) {
						t.Fatalf("%s weight comes from %v, want Cast to FLOAT", conv, cast)
					}
					h := qtInit(t, g, cast.GetInput()[0], onnxpb.TensorProto_FLOAT16)
					if !slices.Equal(h.GetDims(), dims) {
						t.Errorf("%s fp16 weight dims %v, want %v", conv, h.GetDims(), dims)
					}
					raw := h.GetRawData()
					for i, v := range w {
						hv := onnx.Float16Value(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
						if d := math.Abs(float64(hv - v)); d > math.Abs(float64(v))/2048 {
							t.Errorf("%s weight[%d] %g stored as %g", conv, i, v, hv)
						}
					}
				case WeightsInt8:
					mul := g.Producer(n.GetInput()[1])
					if mul == nil || mul.GetOpType() != "Mul" {
						t.Fatalf("%s weight comes from %v, want Mul", conv, mul)
					}
					cast := g.Producer(mul.GetInput()[0])
					if cast == nil || cast.GetOpType() != "Cast" {
						t.Fatalf("%s weight Mul reads %v, want Cast", conv, cast)
					}
					qw := qtInt8s(t, g, cast.GetInput()[0])
					scale := g.Initializer(mul.GetInput()[1])
					wantDims := []int64{dims[0], 1, 1, 1}
					if !slices.Equal(scale.GetDims(), wantDims) {
						t.Errorf("%s scale dims %v, want %v (broadcast per output channel)", conv, scale.GetDims(), wantDims)
					}
					s := qtFloats(t, g, scale.GetName())
					per := len(w) / int(dims[0])
					for i, v := range w {
						step := float64(s[i/per])
						if d := math.Abs(float64(qw[i])*step - float64(v)); d > step/2*1.0001 {
							t.Errorf("%s weight[%d] %g restored as %d·%g, off by more than half a step", conv, i, v, qw[i], step)
						}
					}
				}
			}
			if c.storage != WeightsFloat32 {
				if ops := onnx.QuantOps(out); len(ops) != 0 {
					t.Errorf("float layers with stored weights show quantized ops %v", ops)
				}
			}
			got := runModel(t, out, x, false)
			if e := relErr(got, want); e > c.maxErr {
				t.Errorf("relative error vs FP32 %.5f > %g", e, c.maxErr)
			}

			// ONNX Runtime's basic optimisations fold the weight nodes.
			if c.storage == WeightsFloat32 {
				return
			}
			folded := optimisedModel(t, out)
			var ops []string
			for _, n := range folded.GetGraph().GetNode() {
				ops = append(ops, n.GetOpType())
			}
			if !slices.Equal(ops, []string{"Conv", "Relu", "Conv"}) {
				t.Errorf("optimised model runs %v, want [Conv Relu Conv] (weight nodes folded)", ops)
			}
		})
	}
}

// Bias correction: with int8 weights and the input's channel means, the
// Conv's bias absorbs the mean shift the rounding causes, so on an input at
// its means the output error drops (it is exact away from the padded border).
// A Conv without bias gets one.
func TestFloatWeightsBiasCorrection(t *testing.T) {
	for _, withBias := range []bool{true, false} {
		t.Run(map[bool]string{true: "bias", false: "no bias"}[withBias], func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			m := convReluConv(rng)
			if !withBias {
				c := qtNodeByName(m, "conv1")
				c.Input = c.Input[:2]
				removeUnusedInitializers(m.GetGraph())
			}
			orig := proto.Clone(m).(*onnxpb.ModelProto)
			p := analyseOK(t, m)
			means := []float32{3, -2, 5}
			x := constantChannels(means)
			want := interior(runModel(t, conv1Model(orig), x, false))
			build := func(inMeans map[string][]float32) []float32 {
				plan := &Plan{Quantize: map[string]bool{}, Profile: ProfileCPU, PerChannel: true,
					FloatWeights: map[string]WeightStorage{"conv1": WeightsInt8}, InputMeans: inMeans}
				out, err := p.buildQDQ(plan)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(qtNodeByName(out, "conv1").GetInput()); inMeans != nil && n != 3 {
					t.Errorf("corrected conv1 has %d inputs, want 3 (with a bias)", n)
				}
				return interior(runModel(t, conv1Model(out), x, false))
			}
			plain, corrected := relErr(build(nil), want), relErr(build(map[string][]float32{"x": means}), want)
			t.Logf("relative error of conv1 on its mean input: plain %.2e, bias-corrected %.2e", plain, corrected)
			if plain < 1e-4 {
				t.Fatalf("plain int8 weights give error %.2e: the test input does not show the rounding", plain)
			}
			if corrected > plain/100 {
				t.Errorf("bias-corrected error %.2e, want ≤ 1/100 of plain %.2e", corrected, plain)
			}
		})
	}
}

// Quantize with float16 storage keeps a layer whose weights overflow half
// precision in float32 (and says so), and the others in float16.
func TestQuantizeFloat16KeepsOutOfRangeWeights(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(51, 52)))
	g := onnx.NewGraph(m)
	w1, err := onnx.TensorFloats(g.Initializer("W1"))
	if err != nil {
		t.Fatal(err)
	}
	w1[0] = 1e6
	for i, init := range m.GetGraph().GetInitializer() {
		if init.GetName() == "W1" {
			m.Graph.Initializer[i] = onnx.Float32Tensor("W1", init.GetDims(), w1)
		}
	}
	qtInitORT(t)
	opt := DefaultOptions()
	opt.MaxError, opt.FloatWeights, opt.SensitivityFrames = 0, WeightsFloat16, 2 // everything float
	out, rep, err := Quantize(context.Background(), m, randomInputs{n: 4, seed: 9}, opt)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]WeightStorage{}
	for _, l := range rep.Layers {
		got[l.Node] = l.Weights
	}
	if got["conv1"] != WeightsFloat32 || got["conv2"] != WeightsFloat16 {
		t.Errorf("weights stored as %v, want conv1 fp32 (1e6 overflows half precision), conv2 fp16", got)
	}
	og := onnx.NewGraph(out)
	if w := qtNodeByName(out, "conv1").GetInput()[1]; og.Initializer(w) == nil {
		t.Errorf("conv1 reads %q, not its float32 initializer", w)
	}
}

func TestParseWeightStorage(t *testing.T) {
	for _, s := range []string{"int8", "fp16", "fp32"} {
		if w, err := ParseWeightStorage(s); err != nil || string(w) != s {
			t.Errorf("ParseWeightStorage(%q) = %q, %v", s, w, err)
		}
	}
	if _, err := ParseWeightStorage("int4"); err == nil {
		t.Error("ParseWeightStorage(int4) succeeded")
	}
}

// optimisedModel is m as ONNX Runtime's basic optimisations leave it.
func optimisedModel(t *testing.T, m *onnxpb.ModelProto) *onnxpb.ModelProto {
	t.Helper()
	qtInitORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableBasic); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "optimised.onnx")
	if err := opts.SetOptimizedModelFilePath(path); err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	gp := m.GetGraph()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{gp.GetInput()[0].GetName()}, []string{gp.GetOutput()[0].GetName()}, opts)
	if err != nil {
		t.Fatalf("ONNX Runtime session: %v", err)
	}
	s.Destroy()
	out, err := onnx.LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// channelMeans averages each channel over batch and positions, across calls,
// and ignores tensors that are not NCHW.
func TestChannelMeans(t *testing.T) {
	c := channelMeans{}
	// Batch 2, 2 channels, 1×2 plane: channel 0 holds 1,3 and 5,7; channel 1 holds 2,2 and 4,4.
	c.add("t", []int64{2, 2, 1, 2}, []float32{1, 3, 2, 2, 5, 7, 4, 4})
	c.add("t", []int64{1, 2, 1, 2}, []float32{4, 4, 0, 0})
	c.add("flat", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	got := c.means()
	if want := []float32{4, 2}; !slices.Equal(got["t"], want) {
		t.Errorf("means of t = %v, want %v", got["t"], want)
	}
	if _, ok := got["flat"]; ok {
		t.Errorf("a 2-D tensor got channel means %v", got["flat"])
	}
}

// ImageInput finds the one non-initializer input and refuses models with
// none or several, or whose input is not float.
func TestImageInput(t *testing.T) {
	m := convReluConv(rand.New(rand.NewPCG(1, 2)))
	m.Graph.Input = append(m.Graph.Input, qtValueInfo("W1", 4, 3, 3, 3)) // an initializer listed as input (IR < 4 style)
	if in, err := onnx.ImageInput(m); err != nil || in.GetName() != "x" {
		t.Fatalf("ImageInput = %v, %v; want x", in.GetName(), err)
	}
	two := proto.Clone(m).(*onnxpb.ModelProto)
	two.Graph.Input = append(two.Graph.Input, qtValueInfo("extra", 1, 3))
	if _, err := onnx.ImageInput(two); err == nil || !strings.Contains(err.Error(), "2 inputs") {
		t.Errorf("two inputs: err = %v, want one naming 2 inputs", err)
	}
	ints := proto.Clone(m).(*onnxpb.ModelProto)
	ints.Graph.Input[0].GetType().GetTensorType().ElemType = proto.Int32(int32(onnxpb.TensorProto_INT64))
	if _, err := onnx.ImageInput(ints); err == nil || !strings.Contains(err.Error(), `"x" is not a float tensor`) {
		t.Errorf("int64 input: err = %v, want one naming x", err)
	}
}

// constantChannels is a [1,3,8,8] input whose channel c is means[c]
// everywhere.
func constantChannels(means []float32) []float32 {
	x := make([]float32, 3*8*8)
	for i := range x {
		x[i] = means[i/64]
	}
	return x
}

// conv1Model is a copy of a convReluConv model whose output is conv1's.
func conv1Model(m *onnxpb.ModelProto) *onnxpb.ModelProto {
	c := proto.Clone(m).(*onnxpb.ModelProto)
	c.Graph.Output = []*onnxpb.ValueInfoProto{qtValueInfo("c1", 1, 4, 8, 8)}
	return c
}

// interior is conv1's [1,4,8,8] output inside its one-pixel border (where
// padding does not reach).
func interior(v []float32) []float32 {
	var out []float32
	for ch := range 4 {
		for y := 1; y < 7; y++ {
			out = append(out, v[ch*64+y*8+1:ch*64+y*8+7]...)
		}
	}
	return out
}
