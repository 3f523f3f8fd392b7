package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// sampleMSE is the mean of (f(x) − f(dq(q(x))))² over xs for the range
// [lo, hi] quantized for profile p.
func sampleMSE(xs []float32, lo, hi float32, p Profile, f func(float64) float64) float64 {
	qp := activationParams(lo, hi, p)
	var e float64
	for _, x := range xs {
		d := f(float64(x)) - f(float64(qp.fakeQuant(x)))
		e += d * d
	}
	return e / float64(len(xs))
}

func identity(x float64) float64 { return x }

// laplace returns n Laplace(0, 1) values skewed positive (×3 above zero):
// min-max spends steps on the sparse tails, a percentile clips too much or
// too little depending on the tail.
func laplace(n int) []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float32, n)
	for i := range xs {
		u := r.Float64() - 0.5
		x := -math.Copysign(math.Log(1-2*math.Abs(u)), u)
		if x > 0 {
			x *= 3
		}
		xs[i] = float32(x)
	}
	return xs
}

// The range MSERange picks from the histogram is (nearly) the best of a
// brute-force grid over the raw samples, and no worse than min-max or a
// percentile.
func TestMSERangeIsMSEOptimal(t *testing.T) {
	xs := laplace(20000)
	s := NewTensorStats()
	addValues(t, s, xs...)
	for _, p := range []Profile{ProfileCPU, ProfileARM, ProfileTensorRT} {
		lo, hi := s.MSERange(p, nil)
		got := sampleMSE(xs, lo, hi, p, identity)
		best := math.Inf(1)
		var bestLo, bestHi float32
		for i := 1; i <= 60; i++ {
			h := float32(i) * 0.5
			for j := 1; j <= 30; j++ {
				l := -float32(j) * 0.5
				if p == ProfileTensorRT {
					l = -h
				}
				if e := sampleMSE(xs, l, h, p, identity); e < best {
					best, bestLo, bestHi = e, l, h
				}
				if p == ProfileTensorRT {
					break
				}
			}
		}
		if got > best*1.02 {
			t.Errorf("%s: MSERange = [%g, %g], MSE %.4g; brute force [%g, %g] has %.4g", p, lo, hi, got, bestLo, bestHi, best)
		}
		if hi >= s.Max || (p != ProfileTensorRT && lo <= s.Min) {
			t.Errorf("%s: MSERange = [%g, %g] does not clip the sparse tails of [%g, %g]", p, lo, hi, s.Min, s.Max)
		}
		for _, pct := range []float64{100, 99.99, 99.9} {
			pLo, pHi := s.Range(MethodPercentile, pct)
			if pe := sampleMSE(xs, pLo, pHi, p, identity); got > pe*1.001 {
				t.Errorf("%s: MSE %.4g above percentile %g's %.4g", p, got, pct, pe)
			}
		}
	}
}

// Through a SiLU the large negative values all become about 0, so their
// precision hardly matters: the search clips the negative side much harder
// than it does for the identity, and the SiLU error is smaller than with
// the identity's range.
func TestMSERangeThroughSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float32, 100000)
	for i := range xs {
		xs[i] = float32(r.NormFloat64()*4 - 2)
	}
	s := NewTensorStats()
	addValues(t, s, xs...)
	idLo, idHi := s.MSERange(ProfileCPU, nil)
	siLo, siHi := s.MSERange(ProfileCPU, silu)
	if !(siLo > idLo*0.8) {
		t.Errorf("lower bound through SiLU %g, identity %g: want the SiLU one clipped harder", siLo, idLo)
	}
	eID := sampleMSE(xs, idLo, idHi, ProfileCPU, silu)
	eSi := sampleMSE(xs, siLo, siHi, ProfileCPU, silu)
	if eSi >= eID {
		t.Errorf("SiLU error with the SiLU range [%g, %g] = %.3g, with the identity's [%g, %g] = %.3g; want smaller",
			siLo, siHi, eSi, idLo, idHi, eID)
	}
}

func TestMSERangeDegenerate(t *testing.T) {
	s := NewTensorStats()
	if lo, hi := s.MSERange(ProfileCPU, nil); lo != 0 || hi != 0 {
		t.Errorf("empty: [%g, %g], want [0, 0]", lo, hi)
	}
	addValues(t, s, 0, 0, 0)
	if lo, hi := s.MSERange(ProfileCPU, nil); lo != 0 || hi != 0 {
		t.Errorf("all zero: [%g, %g], want [0, 0]", lo, hi)
	}
	s = NewTensorStats()
	addValues(t, s, 1, 2, 3)
	lo, hi := s.MSERange(ProfileCPU, nil)
	if lo != 0 || math.Abs(float64(hi)-3) > 0.05 {
		t.Errorf("three positives: [%g, %g], want [0, ≈3] (nothing to gain by clipping)", lo, hi)
	}
}

func TestActivationOf(t *testing.T) {
	p, err := analyse(siluModel(), map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if f := p.activationOf("c"); f == nil || math.Abs(f(2)-silu(2)) > 1e-12 {
		t.Errorf("conv output feeding Sigmoid and Mul: want SiLU")
	}
	if f := p.activationOf("m"); f != nil {
		t.Errorf("SiLU output feeding a Conv: want the identity (nil)")
	}
}

// siluModel: x ─conv1─c─Sigmoid─s; Mul(c, s)─m─conv2─y (random weights).
func siluModel() *onnxpb.ModelProto {
	rng := rand.New(rand.NewPCG(5, 6))
	inits := []*onnxpb.TensorProto{
		onnx.Float32Tensor("W1", []int64{4, 3, 1, 1}, convWeights(rng, 4, 3, 1)),
		onnx.Float32Tensor("W2", []int64{2, 4, 1, 1}, convWeights(rng, 2, 4, 1)),
	}
	return qtModel([]*onnxpb.NodeProto{
		qtNode("conv1", "Conv", []string{"x", "W1"}, []string{"c"}),
		qtNode("sig", "Sigmoid", []string{"c"}, []string{"s"}),
		qtNode("mul", "Mul", []string{"c", "s"}, []string{"m"}),
		qtNode("conv2", "Conv", []string{"m", "W2"}, []string{"y"}),
	}, inits, qtValueInfo("x", 1, 3, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
}

// With ExactSiLU the Sigmoid inside a SiLU reads the dequantized conv
// output and feeds the Mul in float; the SiLU's input and output are
// quantized. Without it the Sigmoid's output is quantized too.
func TestExactSiLU(t *testing.T) {
	for _, exact := range []bool{false, true} {
		p := analyseOK(t, siluModel())
		p.exactSiLU = exact
		q := map[string]bool{"conv1": true, "conv2": true}
		p.propagateElementwise(q)
		if !q["mul"] || q["sig"] == exact {
			t.Fatalf("exact %v: quantized mul %v, sig %v; want mul, and sig unless exact", exact, q["mul"], q["sig"])
		}
		ranges := map[string][2]float32{"x": {-1, 1}, "c": {-3, 3}, "s": {0, 1}, "m": {-0.3, 3}, "y": {-2, 2}}
		out, err := p.buildQDQ(&Plan{Quantize: q, Ranges: ranges, Profile: ProfileCPU, PerChannel: true})
		if err != nil {
			t.Fatal(err)
		}
		g := onnx.NewGraph(out)
		sigQuantized := false
		for _, c := range g.Consumers("s") {
			sigQuantized = sigQuantized || c.GetOpType() == "QuantizeLinear"
		}
		if sigQuantized == exact {
			t.Errorf("exact %v: Sigmoid output quantized %v", exact, sigQuantized)
		}
		sig, mul := qtNodeByName(out, "sig"), qtNodeByName(out, "mul")
		if producerOp(g, sig.GetInput()[0]) != "DequantizeLinear" {
			t.Errorf("exact %v: Sigmoid reads %s, want a DequantizeLinear", exact, producerOp(g, sig.GetInput()[0]))
		}
		if got := producerOp(g, mul.GetInput()[0]); got != "DequantizeLinear" {
			t.Errorf("exact %v: Mul's x comes from %s, want a DequantizeLinear", exact, got)
		}
		if c := g.Consumers("m"); len(c) != 1 || c[0].GetOpType() != "QuantizeLinear" {
			t.Errorf("exact %v: the SiLU output is not quantized", exact)
		}
	}
}
