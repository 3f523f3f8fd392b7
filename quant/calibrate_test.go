package quant

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

func intsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// TestGeometryOf: a 2-D Conv's attributes become its geometry (defaults
// where absent); what the Hessian cannot handle is refused.
func TestGeometryOf(t *testing.T) {
	conv := func(attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return qtNode("c", "Conv", []string{"x", "W"}, []string{"y"}, attrs...)
	}
	geo, ok := geometryOf(conv(), []int64{4, 3, 3, 5})
	if want := (convGeom{cin: 3, groups: 1, kh: 3, kw: 5, sh: 1, sw: 1, dh: 1, dw: 1}); !ok || geo != want {
		t.Errorf("defaults: %+v %t, want %+v", geo, ok, want)
	}
	geo, ok = geometryOf(conv(intsAttr("strides", 2, 3), intsAttr("pads", 1, 2, 1, 2), intsAttr("dilations", 2, 1), intAttr("group", 2),
		&onnxpb.AttributeProto{Name: proto.String("auto_pad"), S: []byte("NOTSET")}), []int64{4, 3, 3, 3})
	if want := (convGeom{cin: 6, groups: 2, kh: 3, kw: 3, sh: 2, sw: 3, pt: 1, pl: 2, dh: 2, dw: 1}); !ok || geo != want {
		t.Errorf("attributes: %+v %t, want %+v", geo, ok, want)
	}
	if want := 3 * 3 * 3; geo.patch() != want {
		t.Errorf("patch %d, want %d", geo.patch(), want)
	}
	for name, c := range map[string]struct {
		n    *onnxpb.NodeProto
		dims []int64
	}{
		"Gemm":              {qtNode("g", "Gemm", nil, nil), []int64{4, 3, 1, 1}},
		"1-D":               {conv(), []int64{4, 3, 3}},
		"auto_pad":          {conv(&onnxpb.AttributeProto{Name: proto.String("auto_pad"), S: []byte("SAME_UPPER")}), []int64{4, 3, 3, 3}},
		"strides 1":         {conv(intsAttr("strides", 1)), []int64{4, 3, 3, 3}},
		"dilations":         {conv(intsAttr("dilations", 1, 1, 1)), []int64{4, 3, 3, 3}},
		"pads 2":            {conv(intsAttr("pads", 1, 1)), []int64{4, 3, 3, 3}},
		"group 0":           {conv(intAttr("group", 0)), []int64{4, 3, 3, 3}},
		"no input":          {conv(), []int64{4, 0, 3, 3}},
		"stride 0":          {conv(intsAttr("strides", 1, 0)), []int64{4, 3, 3, 3}},
		"dilation 0":        {conv(intsAttr("dilations", 0, 1)), []int64{4, 3, 3, 3}},
		"kernel 0":          {conv(), []int64{4, 3, 3, 0}},
		"kernel 0 high":     {conv(), []int64{4, 3, 0, 3}},
		"stride 0 down":     {conv(intsAttr("strides", 0, 1)), []int64{4, 3, 3, 3}},
		"dilation 0 across": {conv(intsAttr("dilations", 1, 0)), []int64{4, 3, 3, 3}},
	} {
		if geo, ok := geometryOf(c.n, c.dims); ok {
			t.Errorf("%s: geometry %+v accepted", name, geo)
		}
	}
}

// TestGPTQHessiansPatchBound: with GPTQ, every candidate Conv whose weight
// rows are at most 256 long (maxGPTQPatch) gets an empty Hessian, keyed by
// its input tensor; a longer one, a Gemm and a run without GPTQ get none.
func TestGPTQHessiansPatchBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("fits", "Conv", []string{"x", "W1"}, []string{"a"}),
		qtNode("wide", "Conv", []string{"a", "W2"}, []string{"b"}),
		qtNode("gemm", "Gemm", []string{"f", "W3"}, []string{"y"}),
		qtNode("flat", "Flatten", []string{"b"}, []string{"f"}),
	}, []*onnxpb.TensorProto{
		onnx.Float32Tensor("W1", []int64{257, 256, 1, 1}, randFloats(rng, 257*256, -1, 1)),
		onnx.Float32Tensor("W2", []int64{2, 257, 1, 1}, randFloats(rng, 2*257, -1, 1)),
		onnx.Float32Tensor("W3", []int64{2, 2}, randFloats(rng, 4, -1, 1)),
	}, qtValueInfo("x", 1, 256, 1, 1), qtValueInfo("y", 1, 2))
	p := analyseOK(t, m)
	if got := nodeNames(p.candidates); !slices.Equal(got, []string{"fits", "wide", "gemm"}) {
		t.Fatalf("candidates %v", got)
	}
	z := &quantizer{p: p, opt: Options{GPTQ: true}}
	h := z.gptqHessians()
	if len(h) != 1 || len(h["x"]) != 1 || h["x"][0].node != "fits" || h["x"][0].h.geo.patch() != 256 || h["x"][0].h.count != 0 {
		t.Errorf("hessians %v, want one empty one for fits on x", h)
	}
	z.opt.GPTQ = false
	if h := z.gptqHessians(); len(h) != 0 {
		t.Errorf("without GPTQ: hessians %v", h)
	}
}

// TestChannelMeansNoChannels: a tensor without channels has no means, and
// a later tensor of the same name with channels gets them.
func TestChannelMeansNoChannels(t *testing.T) {
	c := channelMeans{}
	c.add("t", []int64{1, 0, 2, 2}, nil)
	if got := c.means(); len(got) != 0 {
		t.Fatalf("means of a channel-less tensor: %v", got)
	}
	c.add("t", []int64{1, 2, 1, 2}, []float32{1, 3, -2, -4})
	if got := c.means()["t"]; !slices.Equal(got, []float32{2, -3}) {
		t.Errorf("means %v, want [2 -3]", got)
	}
}

// cancellingInputs cancels the calibration at its first input.
type cancellingInputs struct {
	n      int
	cancel context.CancelFunc
	calls  *int
}

func (c cancellingInputs) Len() int { return c.n }

func (c cancellingInputs) Input(_ context.Context, _ int, dst []float32) error {
	*c.calls++
	c.cancel()
	for i := range dst {
		dst[i] = 0.5
	}
	return nil
}

// TestCalibrationStopsWhenCancelled: a cancelled calibration reads no
// further input and returns the context's error.
func TestCalibrationStopsWhenCancelled(t *testing.T) {
	qtInitORT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	opt := DefaultOptions()
	opt.MaxError = -1
	_, _, err := Quantize(ctx, convReluConv(rand.New(rand.NewPCG(93, 94))), cancellingInputs{n: 4, cancel: cancel, calls: &calls}, opt)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Errorf("%d inputs read after the cancel at the first, want 1", calls)
	}
}

// TestHessianAddPatches: the Hessian of a strided, padded, dilated Conv
// over a non-square input is the sum over output positions of x xᵀ (upper
// triangle), x the zero-padded input patch, computed here directly.
func TestHessianAddPatches(t *testing.T) {
	const H, W = 5, 7
	for _, geo := range []convGeom{
		{cin: 4, groups: 2, kh: 3, kw: 2, sh: 2, sw: 3, pt: 1, pl: 1, dh: 2, dw: 2},
		{cin: 2, groups: 1, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, dh: 1, dw: 1}, // reads row and column 0
	} {
		v := randFloats(rand.New(rand.NewPCG(95, 96)), geo.cin*H*W, -1, 1)
		h := newHessian(geo)
		h.add([]int64{1, int64(geo.cin), H, W}, v)
		oh := (H+2*geo.pt-geo.dh*(geo.kh-1)-1)/geo.sh + 1
		ow := (W+2*geo.pl-geo.dw*(geo.kw-1)-1)/geo.sw + 1
		if h.count != float64(oh*ow) || h.frame != 1 {
			t.Fatalf("%+v: count %g frame %d, want %d positions of frame 1", geo, h.count, h.frame, oh*ow)
		}
		d, cpg := geo.patch(), geo.cin/geo.groups
		for g := range geo.groups {
			want := make([]float64, d*d)
			for oy := range oh {
				for ox := range ow {
					var x []float64
					for c := g * cpg; c < (g+1)*cpg; c++ {
						for ky := range geo.kh {
							for kx := range geo.kw {
								iy, ix := oy*geo.sh-geo.pt+ky*geo.dh, ox*geo.sw-geo.pl+kx*geo.dw
								val := 0.0
								if iy >= 0 && iy < H && ix >= 0 && ix < W {
									val = float64(v[c*H*W+iy*W+ix])
								}
								x = append(x, val)
							}
						}
					}
					for i := range d {
						for j := i; j < d; j++ {
							want[i*d+j] += x[i] * x[j]
						}
					}
				}
			}
			for i := range want {
				if math.Abs(h.h[g][i]-want[i]) > 1e-9 {
					t.Fatalf("%+v group %d: H[%d][%d] = %g, want %g", geo, g, i/d, i%d, h.h[g][i], want[i])
				}
			}
		}
	}
	geo := convGeom{cin: 4, groups: 2, kh: 3, kw: 2, sh: 2, sw: 3, pt: 1, pl: 1, dh: 2, dw: 2}
	v := randFloats(rand.New(rand.NewPCG(95, 96)), geo.cin*H*W, -1, 1)
	h := newHessian(geo)
	h.add([]int64{1, int64(geo.cin), H, W}, v)
	oh := (H+2*geo.pt-geo.dh*(geo.kh-1)-1)/geo.sh + 1
	ow := (W+2*geo.pl-geo.dw*(geo.kw-1)-1)/geo.sw + 1
	// Inputs it cannot read are ignored: other channel counts, short
	// data, an output of no positions.
	before := slices.Clone(h.h[0])
	h.add([]int64{1, 3, H, W}, v[:3*H*W])
	h.add([]int64{1, 4, H, W}, v[:4*H*W-1])
	tall := newHessian(convGeom{cin: 1, groups: 1, kh: 4, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1})
	tall.add([]int64{1, 1, 3, 2}, v[:6]) // oh = 3-3-1+1 = 0
	tall.add([]int64{1, 1, 4, 2}, v[:8]) // oh = 1: two positions
	if !slices.Equal(h.h[0], before) || h.count != float64(oh*ow) || h.frame != 1 {
		t.Errorf("an unreadable input changed the Hessian (count %g, frame %d)", h.count, h.frame)
	}
	if tall.count != 2 || tall.frame != 1 {
		t.Errorf("kernel 4 over heights 3 and 4: count %g frame %d, want 2 positions of one frame", tall.count, tall.frame)
	}
}

// TestShortStem: stems count up from 1, skipping the names taken.
func TestShortStem(t *testing.T) {
	names := map[string]bool{"q2": true, "q4": true}
	var got []string
	for range 3 {
		got = append(got, shortStem(names, "q"))
	}
	if want := []string{"q1", "q3", "q5"}; !slices.Equal(got, want) {
		t.Errorf("stems %v, want %v", got, want)
	}
}

// TestChannelRangesAdd: per-channel ranges (always including 0, which
// quantization must represent) over every batch item and call; tensors
// that are not NCHW with that channel count and full data are ignored.
func TestChannelRangesAdd(t *testing.T) {
	var r channelRanges
	r.add([]int64{2, 2, 1, 2}, []float32{1, 3, -2, -1, 5, 2, -4, 6}) // items: ch0 {1,3} ch1 {-2,-1}; ch0 {5,2} ch1 {-4,6}
	r.add([]int64{1, 2, 2, 1}, []float32{-7, 0, 0, 0})
	r.add([]int64{1, 3, 1, 1}, []float32{100, 100, 100}) // other channel count
	r.add([]int64{1, 2, 1, 2}, []float32{100, 100, 100}) // short
	r.add([]int64{1, 2, 0, 2}, nil)                      // empty plane
	r.add([]int64{2, 8}, make([]float32, 16))            // not NCHW
	if want := (channelRanges{lo: []float32{-7, -4}, hi: []float32{5, 6}}); !slices.Equal(r.lo, want.lo) || !slices.Equal(r.hi, want.hi) {
		t.Errorf("ranges %v..%v, want %v..%v", r.lo, r.hi, want.lo, want.hi)
	}
	var none channelRanges
	none.add([]int64{1, 0, 2, 2}, nil)
	if none.lo != nil {
		t.Errorf("a tensor without channels started ranges %v", none.lo)
	}
}

// TestGPTQLeavesUnusableHessians: without samples, or with inputs that
// were always zero, a Hessian cannot be factored, and GPTQ leaves the
// nearest rounding as it is; so does a weight whose size does not fit.
func TestGPTQLeavesUnusableHessians(t *testing.T) {
	geo := convGeom{cin: 2, groups: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1}
	empty := newHessian(geo)
	if u := empty.upperInverseFactor(0); u != nil {
		t.Errorf("no samples: factor %v, want nil", u)
	}
	zeros := newHessian(geo)
	zeros.add([]int64{1, 2, 2, 2}, make([]float32, 8))
	if u := zeros.upperInverseFactor(0); zeros.count != 4 || u != nil {
		t.Errorf("all-zero inputs (%g samples): factor %v, want nil", zeros.count, u)
	}
	wv := []float32{0.3, -0.7, 0.11, 0.9}
	dims := []int64{2, 2, 1, 1}
	nearest, scales, _ := symmetricWeights(wv, dims, 0, true, 127)
	for name, h := range map[string]*hessian{"empty": empty, "zeros": zeros} {
		qw := slices.Clone(nearest)
		gptqWeights(wv, qw, dims, scales, h, 127)
		if !slices.Equal(qw, nearest) {
			t.Errorf("%s Hessian: codes %v, want the nearest %v", name, qw, nearest)
		}
	}
	// A usable Hessian but a weight of another size: unchanged too.
	used := newHessian(geo)
	used.add([]int64{1, 2, 2, 2}, []float32{1, 2, 3, 4, 4, -3, 2, 1})
	qw := slices.Clone(nearest)
	gptqWeights(wv[:3], qw, []int64{3, 1, 1, 1}, scales, used, 127)
	if !slices.Equal(qw, nearest) {
		t.Errorf("mis-sized weight: codes %v, want %v", qw, nearest)
	}
	if u := used.upperInverseFactor(0); len(u) != 4 || u[2] != 0 || u[0] <= 0 || u[3] <= 0 {
		t.Errorf("usable Hessian: factor %v, want upper triangular with a positive diagonal", u)
	}
}
