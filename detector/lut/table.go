package lut

import (
	"fmt"
	"math"
)

// QParams is the per-tensor quantisation of an 8-bit tensor:
// real = Scale * (q - Zero), q in [0, 255] (uint8) or [-128, 127] (int8).
type QParams struct {
	Scale  float32
	Zero   int32
	Signed bool // int8 rather than uint8
}

func (q QParams) validate() error {
	if !(q.Scale > 0) || math.IsInf(float64(q.Scale), 0) {
		return fmt.Errorf("scale %v is not a positive finite number", q.Scale)
	}
	if lo, hi := q.limits(); q.Zero < lo || q.Zero > hi {
		return fmt.Errorf("zero point %d outside [%d, %d]", q.Zero, lo, hi)
	}
	return nil
}

func (q QParams) limits() (lo, hi int32) {
	if q.Signed {
		return -128, 127
	}
	return 0, 255
}

// value is the integer a raw byte stands for.
func (q QParams) value(b byte) int32 {
	if q.Signed {
		return int32(int8(b))
	}
	return int32(b)
}

// dequantize is the real number raw byte b stands for.
func (q QParams) dequantize(b byte) float64 {
	return float64(q.Scale) * float64(q.value(b)-q.Zero)
}

// quantize is ONNX QuantizeLinear: round half to even, add the zero point,
// saturate; the result as a raw byte.
func (q QParams) quantize(x float64) byte {
	lo, hi := q.limits()
	v := math.RoundToEven(x/float64(q.Scale)) + float64(q.Zero)
	if math.IsNaN(v) {
		v = float64(q.Zero)
	}
	v = math.Max(float64(lo), math.Min(float64(hi), v))
	return byte(int8(int32(v))) // int32 → int8 → byte keeps uint8 values too
}

// Table is the lookup table of f between quantised tensors:
// table[b] = quantize_out(f(dequantize_in(b))) for every raw input byte b.
func Table(f func(float64) float64, in, out QParams) (*[256]byte, error) {
	if err := in.validate(); err != nil {
		return nil, fmt.Errorf("lut table: input %w", err)
	}
	if err := out.validate(); err != nil {
		return nil, fmt.Errorf("lut table: output %w", err)
	}
	var t [256]byte
	for b := range 256 {
		t[b] = out.quantize(f(in.dequantize(byte(b))))
	}
	return &t, nil
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// SiLU is x·sigmoid(x) (YOLOX's and YOLOv5/8's activation).
func SiLU(x float64) float64 { return x * sigmoid(x) }

// SiLUQuantisedSigmoid is SiLU as an all-INT8 graph computes it: the
// sigmoid quantised with q and read back with dq (normally the same
// parameters) before the product, x·dq(q(sigmoid(x))).
func SiLUQuantisedSigmoid(q, dq QParams) func(float64) float64 {
	return func(x float64) float64 { return x * dq.dequantize(q.quantize(sigmoid(x))) }
}

// Sigmoid is 1/(1+e^-x).
func Sigmoid(x float64) float64 { return sigmoid(x) }

// HardSwish is ONNX HardSwish: x·max(0, min(1, x/6 + 1/2)).
func HardSwish(x float64) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) }

// LeakyReLU is ONNX LeakyRelu with slope alpha below zero.
func LeakyReLU(alpha float64) func(float64) float64 {
	return func(x float64) float64 {
		if x < 0 {
			return alpha * x
		}
		return x
	}
}

// QuickGelu is ONNX Runtime's com.microsoft QuickGelu: x·sigmoid(alpha·x).
func QuickGelu(alpha float64) func(float64) float64 {
	return func(x float64) float64 { return x * sigmoid(alpha*x) }
}
