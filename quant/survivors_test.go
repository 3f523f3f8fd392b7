package quant

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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
