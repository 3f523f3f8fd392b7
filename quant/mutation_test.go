package quant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A 1x1 plane (global pooling, a squeeze-excite branch) is still NCHW: its
// channels get means too. An empty plane or a length that does not match
// the shape is ignored.
func TestChannelMeansOnePixelPlane(t *testing.T) {
	c := channelMeans{}
	c.add("pool", []int64{2, 3, 1, 1}, []float32{1, 2, 3, 5, 6, 7})
	c.add("empty", []int64{1, 3, 0, 4}, nil)
	c.add("short", []int64{1, 2, 2, 2}, []float32{1, 2, 3})
	got := c.means()
	if want := []float32{3, 4, 5}; !slices.Equal(got["pool"], want) {
		t.Errorf("means of a 1x1 plane = %v, want %v", got["pool"], want)
	}
	for _, name := range []string{"empty", "short"} {
		if m, ok := got[name]; ok {
			t.Errorf("%s: got channel means %v, want none", name, m)
		}
	}
}

// A later tensor of the same name with another channel count is ignored:
// the means stay those of the first shape (no sums mixed, no index past
// the first count).
func TestChannelMeansChannelCountChange(t *testing.T) {
	c := channelMeans{}
	c.add("t", []int64{1, 2, 1, 1}, []float32{1, 3})
	c.add("t", []int64{1, 3, 1, 1}, []float32{10, 20, 30})
	c.add("t", []int64{1, 1, 1, 1}, []float32{50})
	if got, want := c.means()["t"], []float32{1, 3}; !slices.Equal(got, want) {
		t.Errorf("means of t = %v, want %v (the first shape's)", got, want)
	}
}

// A NaN among the prefix errors (a broken measurement) leaves no prefix
// near the best: the entry region is empty (k = 0, all INT8).
func TestShortestNearBestNaN(t *testing.T) {
	for _, errs := range [][]float64{{1, math.NaN(), 0.5}, {math.NaN(), 0.5, 0.2}} {
		if got := shortestNearBest(errs, entryTolerance); got != 0 {
			t.Errorf("shortestNearBest(%v) = %d, want 0", errs, got)
		}
	}
}

// A frame with 1024 output positions adds the patches of every second one
// (512 = hessianPositions); the next frame takes the others.
func TestHessianPositionsPerFrame(t *testing.T) {
	geo := convGeom{cin: 1, groups: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1}
	h := newHessian(geo)
	frame := make([]float32, 32*32)
	for i := range frame {
		frame[i] = float32(i%7) + 1
	}
	h.add([]int64{1, 1, 32, 32}, frame)
	if h.count != hessianPositions {
		t.Fatalf("one frame of 1024 positions: %g patches, want %d", h.count, hessianPositions)
	}
	var even float64
	for pos := 0; pos < 1024; pos += 2 {
		even += float64(frame[pos]) * float64(frame[pos])
	}
	if math.Abs(h.h[0][0]-even) > 1e-9 {
		t.Errorf("H = %g, want %g (the even positions' x²)", h.h[0][0], even)
	}
	h.add([]int64{1, 1, 32, 32}, frame)
	var all float64
	for _, x := range frame {
		all += float64(x) * float64(x)
	}
	if h.count != 1024 || math.Abs(h.h[0][0]-all) > 1e-9 {
		t.Errorf("two frames: %g patches, H = %g; want 1024 and %g (every position once)", h.count, h.h[0][0], all)
	}
}

// upperInverseFactor's U satisfies UᵀU = (H/n + damp)⁻¹, the damping being
// gptqDamp times the mean diagonal of H/n, which also stands in for a zero
// diagonal entry (an input that is always zero).
func TestUpperInverseFactorDamping(t *testing.T) {
	geo := convGeom{cin: 2, groups: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1}
	for _, c := range []struct {
		name  string
		upper []float64 // row-major upper triangle of H (count 2)
		want  []float64 // H/n with the zero diagonal filled and damped
	}{
		// H/n = [[2, -0.5], [-0.5, 1]]: mean diagonal 1.5, damping 0.015.
		{"damped", []float64{4, -1, 0, 2}, []float64{2.015, -0.5, -0.5, 1.015}},
		// H/n = [[2, 0.5], [0.5, 0]]: mean 1 fills the zero, damping 0.01.
		{"zero input", []float64{4, 1, 0, 0}, []float64{2.01, 0.5, 0.5, 1.01}},
	} {
		h := newHessian(geo)
		copy(h.h[0], c.upper)
		h.count = 2
		u := h.upperInverseFactor(0)
		if u == nil {
			t.Fatalf("%s: no factor", c.name)
		}
		// (UᵀU)·want must be the identity.
		for i := range 2 {
			for j := range 2 {
				var s float64
				for k := range 2 {
					var utu float64
					for r := range 2 {
						utu += u[r*2+i] * u[r*2+k]
					}
					s += utu * c.want[k*2+j]
				}
				if want := map[bool]float64{true: 1, false: 0}[i == j]; math.Abs(s-want) > 1e-12 {
					t.Errorf("%s: (UᵀU·M)[%d][%d] = %.15g, want %g", c.name, i, j, s, want)
				}
			}
		}
	}
}

// Statistics that counted no values have no range, whatever Min and Max
// hold (both fields are exported).
func TestRangesWithoutValues(t *testing.T) {
	s := &TensorStats{Min: -1, Max: 2}
	if lo, hi := s.MSERange(ProfileCPU, nil); lo != 0 || hi != 0 {
		t.Errorf("MSERange of no values = [%g, %g], want [0, 0]", lo, hi)
	}
	if lo, hi := s.Range(MethodMinMax, 0); lo != 0 || hi != 0 {
		t.Errorf("Range of no values = [%g, %g], want [0, 0]", lo, hi)
	}
}

// A damage ranking cancelled part way fails with the layer it was
// measuring, before any search step; the layers not measured keep -1.
func TestMeasureDamageCancelled(t *testing.T) {
	z, s, layers, ctx, cancel := cancellableBudgetSearch(t)
	defer cancel()
	var stages []string
	z.progress = func(stage string, done, total int) {
		stages = append(stages, stage)
		if stage == "sensitivity" && done == 1 {
			cancel()
		}
	}
	f, err := z.keepMostDamagingFloat(ctx, s, layers, map[string]bool{})
	second := z.p.candidates[1].GetName()
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), fmt.Sprintf("sensitivity of %q", second)) || f != nil {
		t.Errorf("float %v, err %v; want the sensitivity of %q cancelled", f, err, second)
	}
	if slices.Contains(stages, "search") {
		t.Errorf("progress %v: a search step after the ranking failed", stages)
	}
	for _, l := range layers[1:] {
		if l.Damage != -1 {
			t.Errorf("%s: damage %g after the cancellation, want -1 (not measured)", l.Node, l.Damage)
		}
	}
}

// A model ONNX Runtime refuses (here: an output it cannot find) is an
// error of the channel ranges, not a crash.
func TestTensorChannelRangesRefusedModel(t *testing.T) {
	qtInitORT(t)
	m := convChain(rand.New(rand.NewPCG(3, 4)), 2)
	r, err := tensorChannelRanges(context.Background(), m, "x", []int64{1, 2, 4, 4}, []string{"no_such_tensor"}, randomInputs{n: 2, seed: 1}, 1)
	if err == nil || !strings.Contains(err.Error(), "channel ranges") || r != nil {
		t.Errorf("ranges %v, err %v; want a channel ranges error", r, err)
	}
}

// With a Hessian, a Conv's stored int8 weights are GPTQ's rounding, not
// the nearest one.
func TestQuantizeWeightsUsesGPTQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	dims := []int64{4, 8, 1, 1}
	n := qtNode("c", "Conv", []string{"x", "W"}, []string{"y"})
	geo, ok := geometryOf(n, dims)
	if !ok {
		t.Fatal("geometry not understood")
	}
	h := newHessian(geo)
	for range 4 {
		h.add([]int64{1, 8, 12, 12}, smoothImage(rng, 8, 12))
	}
	wv := randFloats(rng, 4*8, -1, 1)
	nearest, scales, _ := symmetricWeights(wv, dims, 0, true, 127)
	want := slices.Clone(nearest)
	gptqWeights(wv, want, dims, scales, h, 127)
	if slices.Equal(want, nearest) {
		t.Fatal("test weights: GPTQ rounds them as nearest does")
	}
	gp := &onnxpb.GraphProto{}
	if _, err := quantizeWeights(gp, map[string]bool{}, n, onnx.Float32Tensor("W", dims, wv), nil, 0.1, true, false, nil, h); err != nil {
		t.Fatal(err)
	}
	raw := gp.GetInitializer()[0].GetRawData()
	got := make([]int8, len(raw))
	for i, b := range raw {
		got[i] = int8(b)
	}
	if !slices.Equal(got, want) {
		t.Errorf("stored weights %v, want GPTQ's %v (nearest: %v)", got, want, nearest)
	}
}

// The percentile bounds: just above 50 is a percentile, 50 is not.
func TestPercentileBoundary(t *testing.T) {
	m := convChain(rand.New(rand.NewPCG(1, 2)), 2)
	opt := DefaultOptions()
	opt.Method = MethodPercentile
	for _, c := range []struct {
		p  float64
		ok bool
	}{{50.5, true}, {51, true}, {100, true}, {50, false}, {100.5, false}} {
		opt.Percentile = c.p
		_, err := newQuantizer(m, randomInputs{n: 2, seed: 1}, opt)
		if (err == nil) != c.ok || !c.ok && !strings.Contains(err.Error(), "not in (50, 100]") {
			t.Errorf("percentile %g: err %v, want valid %t", c.p, err, c.ok)
		}
	}
}

// A model below opset 11 is refused with the reason, not quantized.
func TestQuantizeOldOpsetRefused(t *testing.T) {
	qtInitORT(t)
	m := convChain(rand.New(rand.NewPCG(1, 2)), 2)
	m.OpsetImport[0].Version = proto.Int64(10)
	out, rep, err := Quantize(context.Background(), m, randomInputs{n: 2, seed: 1}, DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "model opset 10") || out != nil || rep != nil {
		t.Errorf("err %v, want opset 10 refused", err)
	}
}

// Slicing a depthwise Conv to one channel gives a plain Conv (group 1),
// to two channels a depthwise Conv of group 2.
func TestSliceConvGroup(t *testing.T) {
	n := qtNode("dw", "Conv", []string{"x", "W"}, []string{"y"}, intAttr("group", 4))
	w := onnx.Float32Tensor("W", []int64{4, 1, 1, 1}, []float32{1, 2, 3, 4})
	for _, c := range []struct {
		chans []int
		group int64
	}{{[]int{2}, 1}, {[]int{0, 3}, 2}} {
		gp := &onnxpb.GraphProto{}
		s, err := sliceConv(gp, map[string]bool{}, n, w, nil, c.chans, "_s", c.group)
		if err != nil {
			t.Fatal(err)
		}
		if g := onnx.AttrInt(s, "group", 1); g != c.group {
			t.Errorf("channels %v: group %d, want %d", c.chans, g, c.group)
		}
	}
}
