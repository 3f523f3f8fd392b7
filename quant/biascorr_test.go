package quant

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// A quantized Conv's bias absorbs the mean output shift of its weights'
// rounding: on an input equal to the calibration means (exact in the input
// scale), the corrected conv's output is far closer to FP32's than the
// plain one's.
func TestQuantizedBiasCorrection(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m := convReluConv(rng)
	orig := proto.Clone(m).(*onnxpb.ModelProto)
	p := analyseOK(t, m)
	means := []float32{3, -2, 5} // multiples of the input scale 0.04 (zero point 64)
	x := constantChannels(means)
	want := interior(runModel(t, conv1Model(orig), x, false))
	build := func(correct bool) []float32 {
		plan := &Plan{Quantize: map[string]bool{"conv1": true}, Profile: ProfileCPU, PerChannel: true, ReduceRange: true,
			Ranges:     map[string][2]float32{"x": {-2.56, 7.64}, "c1": {-100, 100}},
			InputMeans: map[string][]float32{"x": means}, BiasCorrection: correct}
		out, err := p.buildQDQ(plan)
		if err != nil {
			t.Fatal(err)
		}
		return interior(runModel(t, conv1Model(out), x, false))
	}
	plain, corrected := relErr(build(false), want), relErr(build(true), want)
	t.Logf("relative error of quantized conv1 on its mean input: plain %.2e, bias-corrected %.2e", plain, corrected)
	if plain < 1e-4 {
		t.Fatalf("plain error %.2e: the test input does not show the rounding", plain)
	}
	if corrected > plain/20 {
		t.Errorf("bias-corrected error %.2e, want ≤ 1/20 of plain %.2e", corrected, plain)
	}
}
