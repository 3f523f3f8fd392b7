package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// smoothImage is a [1, c, n, n] input whose neighbouring pixels are
// strongly correlated (as in images and feature maps), plus noise.
func smoothImage(rng *rand.Rand, c, n int) []float32 {
	v := make([]float32, c*n*n)
	for ch := range c {
		fx, fy, ph := rng.Float64()*0.3, rng.Float64()*0.3, rng.Float64()*6
		for y := range n {
			for x := range n {
				v[(ch*n+y)*n+x] = float32(2 + math.Sin(fx*float64(x)+fy*float64(y)+ph) + 0.05*rng.NormFloat64())
			}
		}
	}
	return v
}

// outputError is the mean of δᵀHδ over the rows, δ the rounding error of
// each row in weight units, with the Hessian h of group 0.
func outputError(h *hessian, wv []float32, qw []int8, scales []float32, d int) float64 {
	var e float64
	rows := len(wv) / d
	for o := range rows {
		g := o * h.geo.groups / rows
		delta := make([]float64, d)
		for i := range d {
			delta[i] = float64(wv[o*d+i]) - float64(qw[o*d+i])*float64(scales[o])
		}
		for i := range d {
			for j := range d {
				hij := h.h[g][min(i, j)*d+max(i, j)] / h.count
				e += delta[i] * hij * delta[j]
			}
		}
	}
	return e / float64(rows)
}

// GPTQ's rounding gives a 3×3 depthwise conv and a 1×1 conv a smaller
// output error on correlated inputs than rounding to the nearest step,
// while keeping every weight within the step range.
func TestGPTQLowersOutputError(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		name       string
		dims       []int64
		group, cin int
		qmax       float64
	}{
		{"depthwise 3x3", []int64{8, 1, 3, 3}, 8, 8, 127},
		{"depthwise 3x3 7-bit", []int64{8, 1, 3, 3}, 8, 8, 63},
		{"1x1", []int64{16, 32, 1, 1}, 1, 32, 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pads := int64(tc.dims[2] / 2)
			n := &onnxpb.NodeProto{Name: proto.String("c"), OpType: proto.String("Conv"), Attribute: []*onnxpb.AttributeProto{
				onnx.IntAttr("group", int64(tc.group)),
				{Name: proto.String("pads"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{pads, pads, pads, pads}},
			}}
			geo, ok := geometryOf(n, tc.dims)
			if !ok {
				t.Fatal("geometry not understood")
			}
			h := newHessian(geo)
			for range 4 {
				h.add([]int64{1, int64(tc.cin), 24, 24}, smoothImage(rng, tc.cin, 24))
			}
			wv := randFloats(rng, int(tc.dims[0])*geo.patch(), -1, 1)
			nearest, scales, _ := symmetricWeights(wv, tc.dims, 0, true, tc.qmax)
			rounded := append([]int8(nil), nearest...)
			gptqWeights(wv, rounded, tc.dims, scales, h, tc.qmax)
			en := outputError(h, wv, nearest, scales, geo.patch())
			eg := outputError(h, wv, rounded, scales, geo.patch())
			t.Logf("output error: nearest %.3g, GPTQ %.3g", en, eg)
			if eg > 0.7*en {
				t.Errorf("GPTQ output error %.3g, want ≤ 0.7 × nearest's %.3g", eg, en)
			}
			for i, q := range rounded {
				if math.Abs(float64(q)) > tc.qmax {
					t.Fatalf("weight %d = %d beyond ±%g", i, q, tc.qmax)
				}
			}
		})
	}
}

func TestCholeskyInverse(t *testing.T) {
	a := []float64{4, 2, 0.4, 2, 5, 1, 0.4, 1, 3}
	l := cholesky(a, 3)
	if l == nil {
		t.Fatal("cholesky of a positive definite matrix failed")
	}
	inv := choleskyInverse(l, 3)
	for i := range 3 {
		for j := range 3 {
			var s float64
			for k := range 3 {
				s += a[i*3+k] * inv[k*3+j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-12 {
				t.Errorf("(A·A⁻¹)[%d][%d] = %g, want %g", i, j, s, want)
			}
		}
	}
	if cholesky([]float64{1, 2, 2, 1}, 2) != nil {
		t.Error("cholesky of an indefinite matrix succeeded")
	}
}
