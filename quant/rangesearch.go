package quant

import (
	"math"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Range search: MethodMSE picks each activation's quantization range by the
// error it causes rather than by a percentile. The calibration histogram
// stands for the tensor's values; for a candidate range the error is the
// mean over those values of (f(x) − f(dq(q(x))))², the rounding error inside
// the range plus the clipping error outside it, where f is the element-wise
// function the tensor feeds (SiLU for a convolution's output that goes into
// a SiLU, Sigmoid for a score logit, else the identity). Clipping a long tail
// buys finer steps for the bulk of the values; the search finds where that
// trade is best for this tensor, which no fixed percentile does for every
// tensor of a network.

// rangeSteps is how many candidate bounds per side the search tries, as
// fractions k/rangeSteps of the observed extreme.
const rangeSteps = 128

// subSamples is how many points stand for each histogram bin (spread evenly
// over it), so that rounding errors are not aliased when a quantization step
// is only a few bins wide.
const subSamples = 4

// weightedPoint is a value and how many calibration values it stands for.
type weightedPoint struct {
	x, w float64
}

// points returns the histogram as weighted points, negative values first.
func (s *TensorStats) points() []weightedPoint {
	var pts []weightedPoint
	add := func(sign float64, i int, c uint64) {
		if c == 0 {
			return
		}
		w := float64(c) / subSamples
		for k := range subSamples {
			x := (float64(i) + (float64(k)+0.5)/subSamples) * s.width
			pts = append(pts, weightedPoint{x: sign * x, w: w})
		}
	}
	for i := histBins - 1; i >= 0; i-- {
		add(-1, i, s.neg[i])
	}
	for i := range histBins {
		add(1, i, s.pos[i])
	}
	return pts
}

// MSERange returns the range [lo, hi] (containing 0) whose quantization for
// profile p gives the least mean squared error of f over the calibration
// values (f nil: the identity). It searches each bound over fractions of the
// observed extreme, alternating between the two bounds.
func (s *TensorStats) MSERange(p Profile, f func(float64) float64) (lo, hi float32) {
	if s.Count == 0 || s.Min > s.Max {
		return 0, 0
	}
	lo, hi = min(s.Min, 0), max(s.Max, 0)
	if s.pos == nil {
		return lo, hi
	}
	if f == nil {
		f = func(x float64) float64 { return x }
	}
	pts := s.points()
	fx := make([]float64, len(pts))
	for i, pt := range pts {
		fx[i] = f(pt.x)
	}
	var table [256]float64
	cost := func(lo, hi float32) float64 {
		qp := activationParams(lo, hi, p)
		qmin, qmax := qp.codes()
		// f of every code's dequantized value: one evaluation per code.
		for c := qmin; c <= qmax; c++ {
			table[c-qmin] = f(float64(float32(c-qp.zp) * qp.scale))
		}
		inv := 1 / float64(qp.scale)
		var e float64
		for i, pt := range pts {
			c := int32(math.RoundToEven(pt.x*inv)) + qp.zp
			c = min(max(c, qmin), qmax)
			d := fx[i] - table[c-qmin]
			e += pt.w * d * d
		}
		return e
	}
	if p == ProfileTensorRT {
		t := searchBound(max(-lo, hi), func(t float32) float64 { return cost(-t, t) })
		return -t, t
	}
	minV, maxV := lo, hi
	for range 2 {
		if maxV > 0 {
			hi = searchBound(maxV, func(h float32) float64 { return cost(lo, h) })
		}
		if minV < 0 {
			lo = -searchBound(-minV, func(l float32) float64 { return cost(-l, hi) })
		}
	}
	return lo, hi
}

// searchBound returns the bound k/rangeSteps·extreme (k = 1…rangeSteps)
// with the least cost; ties go to the larger bound.
func searchBound(extreme float32, cost func(float32) float64) float32 {
	best, bestCost := extreme, cost(extreme)
	for k := rangeSteps - 1; k >= 1; k-- {
		b := extreme * float32(k) / rangeSteps
		if c := cost(b); c < bestCost {
			best, bestCost = b, c
		}
	}
	return best
}

// codes is the smallest and largest code of q's type.
func (q qparams) codes() (int32, int32) {
	if q.dtype == onnxpb.TensorProto_INT8 {
		return -128, 127
	}
	return 0, 255
}

// fakeQuant is x quantized with q and dequantized again, as a
// QuantizeLinear → DequantizeLinear pair computes it (round half to even,
// saturating).
func (q qparams) fakeQuant(x float32) float32 {
	qmin, qmax := q.codes()
	c := int32(math.RoundToEven(float64(x/q.scale))) + q.zp
	c = min(max(c, qmin), qmax)
	return float32(c-q.zp) * q.scale
}

// silu is x·sigmoid(x).
func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// sigmoid is 1/(1+e^-x).
func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// activationOf returns the element-wise function through which tensor t's
// quantization error reaches the rest of the network: SiLU when t feeds
// only a SiLU (Sigmoid(t) and Mul(t, Sigmoid(t))), Sigmoid when it feeds
// only Sigmoids, else nil (the identity).
func (p *prepared) activationOf(t string) func(float64) float64 {
	cons := p.g.Consumers(t)
	if len(cons) == 0 {
		return nil
	}
	sigmoids := 0
	for _, c := range cons {
		if c.GetOpType() == "Sigmoid" {
			sigmoids++
		}
	}
	switch {
	case sigmoids == len(cons):
		return sigmoid
	case sigmoids == 1 && len(cons) == 2:
		var sig, mul *onnxpb.NodeProto
		for _, c := range cons {
			switch c.GetOpType() {
			case "Sigmoid":
				sig = c
			case "Mul":
				mul = c
			}
		}
		if sig != nil && mul != nil && isSiLU(sig, mul) {
			return silu
		}
	}
	return nil
}

// isSiLU reports whether mul multiplies sig's input by sig's output.
func isSiLU(sig, mul *onnxpb.NodeProto) bool {
	in := mul.GetInput()
	if len(in) != 2 || len(sig.GetInput()) < 1 || len(sig.GetOutput()) < 1 {
		return false
	}
	x, s := sig.GetInput()[0], sig.GetOutput()[0]
	return (in[0] == x && in[1] == s) || (in[0] == s && in[1] == x)
}
