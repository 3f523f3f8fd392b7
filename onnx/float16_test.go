package onnx_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/edgedet/edgedet/onnx"
)

func TestFloat16Bits(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{0, 0x0000}, {float32(math.Copysign(0, -1)), 0x8000}, {1, 0x3c00}, {-2, 0xc000}, {0.5, 0x3800},
		{65504, 0x7bff}, {65520, 0x7c00}, {1e6, 0x7c00}, {-1e6, 0xfc00},
		{0.1, 0x2e66},                         // 0.0999755859375
		{1 + 1.0/2048, 0x3c00},                // tie: to even (down)
		{1 + 3.0/2048, 0x3c02},                // tie: to even (up)
		{float32(math.Ldexp(1, -14)), 0x0400}, // smallest normal
		{float32(math.Ldexp(1, -24)), 0x0001}, // smallest subnormal
		{float32(math.Ldexp(3, -25)), 0x0002}, // 1.5 × smallest subnormal: tie to even
		{float32(math.Ldexp(1, -26)), 0x0000}, // below half the smallest subnormal
		{float32(math.Inf(1)), 0x7c00}, {float32(math.Inf(-1)), 0xfc00},
	} {
		if got := onnx.Float16Bits(c.f); got != c.h {
			t.Errorf("Float16Bits(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := onnx.Float16Bits(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("Float16Bits(NaN) = %#04x, not a NaN", h)
	}
	// Every finite half value survives the round trip.
	for h := range uint16(0x7c00) {
		for _, sign := range []uint16{0, 0x8000} {
			if got := onnx.Float16Bits(onnx.Float16Value(h | sign)); got != h|sign {
				t.Fatalf("Float16Bits(onnx.Float16Value(%#04x)) = %#04x", h|sign, got)
			}
		}
	}
}

func TestFloat16Value(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x0001, float32(math.Ldexp(1, -24))}, {0x8001, -float32(math.Ldexp(1, -24))},
		{0x03ff, float32(math.Ldexp(1023, -24))}, {0x0400, float32(math.Ldexp(1, -14))},
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := onnx.Float16Value(c.h); got != c.want {
			t.Errorf("Float16Value(%#04x) = %g, want %g", c.h, got, c.want)
		}
	}
	if v := onnx.Float16Value(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("Float16Value(0x7e00) = %g, want NaN", v)
	}
}

func TestFloat16Tensor(t *testing.T) {
	tt := onnx.Float16Tensor("h", []int64{3}, []float32{1, -2, 65520})
	raw := tt.GetRawData()
	if len(raw) != 6 || tt.GetDataType() != 10 {
		t.Fatalf("tensor %v", tt)
	}
	for i, want := range []uint16{0x3c00, 0xc000, 0x7c00} {
		if got := binary.LittleEndian.Uint16(raw[2*i:]); got != want {
			t.Errorf("value %d: %#04x, want %#04x", i, got, want)
		}
	}
}
